// The usage chart of the web console, drawn as SVG (no library): the chosen range is cut
// into BUCKETS windows, each asked of GET /v1/usage?bundle=B&from=MS&to=MS (the billing
// ledger's per-bundle metrics: {bundles: [{bundle, metrics: {NAME: {quantity, unit}}}]}),
// and one metric is drawn as a bar per window; the whole range's figure is printed beside.
// Exposed as window.envrunChart for app.js.
'use strict';

(function () {
  const SVG = 'http://www.w3.org/2000/svg';
  const BUCKETS = 12;
  const W = 760, H = 220, LEFT = 70, RIGHT = 10, TOP = 14, BOTTOM = 34;
  const PREFERRED = ['cpu_user_seconds', 'memory_peak_bytes', 'cpu_system_seconds'];
  let apiFn = null;
  let busy = false;
  let last = null;          // {bundle, buckets: [{from, to, metrics}], whole, units}

  const $ = (id) => document.getElementById(id);
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // {metrics: {NAME: number}, units: {NAME: unit}} of one bundle in a /v1/usage answer.
  function metricsOf(data, bundle) {
    const out = { metrics: {}, units: {} };
    const list = (data && Array.isArray(data.bundles)) ? data.bundles : [];
    const entry = list.find((b) => b && b.bundle === bundle);
    if (!entry || !entry.metrics || typeof entry.metrics !== 'object') return out;
    for (const [name, v] of Object.entries(entry.metrics)) {
      const q = (v && typeof v === 'object') ? v.quantity : v;
      if (typeof q !== 'number' || !isFinite(q)) continue;
      out.metrics[name] = q;
      if (v && typeof v.unit === 'string') out.units[name] = v.unit;
    }
    return out;
  }

  function fmt(v, unit) {
    if (unit === 'byte' || unit === 'byte-s') {
      const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let i = 0;
      while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
      return (i ? v.toFixed(1) : String(Math.round(v))) + ' ' + u[i] + (unit === 'byte-s' ? '·s' : '');
    }
    const s = v === 0 ? '0' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
    return unit ? s + ' ' + unit : s;
  }
  function timeLabel(ms, spanMs) {
    const d = new Date(ms);
    const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return spanMs > 86400000 ? d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + hm : hm;
  }

  // Puts `names` as the options of select `id`; returns the value it had before, or null
  // when the options were these already (nothing changed).
  function fillSelect(id, names) {
    const sel = $(id);
    const key = JSON.stringify(names);
    if (sel.dataset.values === key) return null;
    const keep = sel.value;
    sel.replaceChildren(...names.map((n) => {
      const o = document.createElement('option');
      o.value = n; o.textContent = n;
      return o;
    }));
    sel.dataset.values = key;
    return keep;
  }

  function setMetricOptions(names) {
    const sel = $('usage-metric');
    const keep = fillSelect('usage-metric', names);
    if (keep === null) return;
    sel.hidden = names.length === 0;
    if (names.includes(keep)) sel.value = keep;
    else sel.value = PREFERRED.find((p) => names.includes(p)) || names[0] || '';
  }

  function draw() {
    const chart = $('usage-chart');
    chart.replaceChildren();
    const metric = $('usage-metric').value;
    if (!last || !metric) {
      chart.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', 'data-test': 'usage-empty' },
        'no usage recorded for this bundle in this range'));
      return;
    }
    const unit = last.units[metric] || '';
    const values = last.buckets.map((b) => b.metrics[metric] || 0);
    const max = Math.max(...values);
    const plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;
    const bw = plotW / values.length;
    chart.append(svg('line', { x1: LEFT, y1: TOP + plotH, x2: W - RIGHT, y2: TOP + plotH, stroke: '#888' }));
    chart.append(svg('line', { x1: LEFT, y1: TOP, x2: LEFT, y2: TOP + plotH, stroke: '#888' }));
    chart.append(svg('text', { x: LEFT - 6, y: TOP + 10, 'text-anchor': 'end', 'font-size': 10 }, fmt(max, unit)));
    chart.append(svg('text', { x: LEFT - 6, y: TOP + plotH, 'text-anchor': 'end', 'font-size': 10 }, fmt(0, unit)));
    const span = last.buckets.length ? last.buckets[last.buckets.length - 1].to - last.buckets[0].from : 0;
    values.forEach((v, i) => {
      const b = last.buckets[i];
      const h = max > 0 ? Math.max(v > 0 ? 1 : 0, (v / max) * plotH) : 0;
      const bar = svg('rect', { x: LEFT + i * bw + 2, y: TOP + plotH - h, width: Math.max(1, bw - 4), height: h,
        fill: '#2f6db5', 'data-test': 'usage-bar', 'data-value': v });
      bar.append(svg('title', {}, `${timeLabel(b.from, span)} - ${timeLabel(b.to, span)}: ${metric} ${fmt(v, unit)}`));
      chart.append(bar);
      if (i % 2 === 0)
        chart.append(svg('text', { x: LEFT + i * bw + bw / 2, y: H - BOTTOM + 14, 'font-size': 10,
          'text-anchor': 'middle' }, timeLabel(b.from, span)));
    });
    const whole = last.whole.metrics[metric];
    $('usage-note').textContent = `${last.bundle}: ${metric} over the range: ` +
      (whole === undefined ? '-' : fmt(whole, last.whole.units[metric] || unit));
  }

  async function refresh(api) {
    apiFn = api || apiFn;
    const bundle = $('usage-bundle').value;
    if (!bundle || busy || !apiFn) return;
    const to = Date.now();
    const from = to - Number($('usage-range').value) * 1000;
    const step = (to - from) / BUCKETS;
    const q = (a, b) => `/v1/usage?bundle=${encodeURIComponent(bundle)}&from=${Math.floor(a)}&to=${Math.floor(b)}`;
    busy = true;
    try {
      const windows = Array.from({ length: BUCKETS }, (_, i) => [from + i * step, from + (i + 1) * step]);
      const answers = await Promise.all([q(from, to), ...windows.map(([a, b]) => q(a, b))]
        .map((path) => apiFn('GET', path)));
      const whole = metricsOf(answers[0], bundle);
      const buckets = windows.map(([a, b], i) => Object.assign({ from: a, to: b }, metricsOf(answers[i + 1], bundle)));
      const names = Object.keys(whole.metrics).sort();
      setMetricOptions(names);
      last = names.length ? { bundle, buckets, whole, units: whole.units } : null;
      if (!names.length) $('usage-note').textContent = '';
      draw();
    } catch (e) {
      last = null;
      $('usage-chart').replaceChildren();
      $('usage-note').textContent = e.status === 403 ? 'this token may not read usage (403)' : e.message;
    } finally {
      busy = false;
    }
  }

  function setBundles(names) {
    const sel = $('usage-bundle');
    const keep = fillSelect('usage-bundle', names);
    if (keep === null) return;
    if (names.includes(keep)) sel.value = keep;
    if (sel.value !== keep) refresh();
  }

  function reset() {
    last = null;
    for (const id of ['usage-bundle', 'usage-metric']) {
      $(id).replaceChildren();
      delete $(id).dataset.values;
    }
    $('usage-chart').replaceChildren();
    $('usage-note').textContent = '';
  }

  function init(api) {
    apiFn = api;
    $('usage-bundle').addEventListener('change', () => refresh());
    $('usage-range').addEventListener('change', () => refresh());
    $('usage-metric').addEventListener('change', draw);
  }

  window.envrunChart = { init, refresh, setBundles, reset, metricsOf };
})();
