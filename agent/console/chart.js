// The usage chart of the web console: GET /v1/usage?bundle=B&from=&to= drawn as an SVG bar
// chart (no library). Each group of bars is one row of the answer (an interval, a window or
// an instance life), one bar per metric; each metric is scaled to its own maximum, which the
// legend prints with its unit. Exposed as window.envrunChart for app.js.
'use strict';

(function () {
  const SVG = 'http://www.w3.org/2000/svg';
  const COLORS = ['#2f6db5', '#d9822b', '#3a9a5b', '#b0413e', '#7a5cb8', '#6b7280'];
  const W = 760, H = 220, LEFT = 10, TOP = 34, BOTTOM = 36;
  const TIME_KEYS = ['from_ms', 'start_ms', 'from', 'start', 'time', 't', 'window_start'];
  const LABEL_KEYS = ['instance', 'id', 'window', 'period', 'bundle'];
  const SKIP = new Set([...TIME_KEYS, 'to_ms', 'end_ms', 'to', 'end', 'pid', 'version', 'row', 'ended']);
  let apiFn = null;
  let busy = false;

  const $ = (id) => document.getElementById(id);
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The rows of an answer: an array, or the first array among the usual keys, or the
  // answer itself as one row of totals.
  function rowsOf(data) {
    if (Array.isArray(data)) return data;
    if (!data || typeof data !== 'object') return [];
    for (const k of ['series', 'points', 'intervals', 'windows', 'usage', 'rows', 'instances', 'bundles'])
      if (Array.isArray(data[k])) return data[k];
    return [data];
  }
  // {metric: number} of one row: a metrics list/object, a usage object, or its numbers.
  function metricsOf(row) {
    const out = {};
    if (!row || typeof row !== 'object') return out;
    const m = row.metrics;
    if (Array.isArray(m)) {
      for (const x of m) {
        const name = x && (x.metric ?? x.name);
        const q = x && (x.quantity ?? x.value);
        if (typeof name === 'string' && typeof q === 'number') out[name] = q;
      }
      return out;
    }
    const src = (m && typeof m === 'object') ? m : (row.usage && typeof row.usage === 'object') ? row.usage : row;
    for (const [k, v] of Object.entries(src)) if (typeof v === 'number' && !SKIP.has(k)) out[k] = v;
    return out;
  }
  function labelOf(row, i) {
    for (const k of TIME_KEYS) {
      const v = row && row[k];
      if (typeof v === 'number') return new Date(v > 1e11 ? v : v * 1000).toLocaleString();
      if (typeof v === 'string' && v) return v.replace('T', ' ').replace(/\.\d+Z?$/, '');
    }
    for (const k of LABEL_KEYS) if (row && typeof row[k] === 'string') return row[k];
    return '#' + (i + 1);
  }
  function unitOf(metric) {
    if (/bytes|mem/.test(metric)) return 'bytes';
    if (/_s$|seconds|cpu/.test(metric)) return 's';
    return '';
  }
  function fmt(v, unit) {
    if (unit === 'bytes') {
      const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let i = 0;
      while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
      return (i ? v.toFixed(1) : String(Math.round(v))) + ' ' + u[i];
    }
    const s = Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
    return unit ? s + ' ' + unit : s;
  }

  function draw(rows) {
    const chart = $('usage-chart');
    chart.replaceChildren();
    const groups = rows.slice(-40).map((r, i) => ({ label: labelOf(r, i), m: metricsOf(r) }));
    const metrics = [...new Set(groups.flatMap((g) => Object.keys(g.m)))].slice(0, COLORS.length);
    if (!groups.length || !metrics.length) {
      chart.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', 'data-test': 'usage-empty' },
        'no usage recorded for this bundle in this window'));
      return 0;
    }
    const max = Object.fromEntries(metrics.map((k) => [k, Math.max(...groups.map((g) => g.m[k] || 0))]));
    metrics.forEach((k, j) => {    // legend
      const x = LEFT + j * (W / metrics.length);
      chart.append(svg('rect', { x, y: 6, width: 10, height: 10, fill: COLORS[j] }));
      chart.append(svg('text', { x: x + 14, y: 15, 'font-size': 11, 'data-test': 'usage-legend' },
        `${k} (max ${fmt(max[k], unitOf(k))})`));
    });
    const plotH = H - TOP - BOTTOM;
    const gw = (W - LEFT * 2) / groups.length;
    const bw = Math.max(2, Math.min(24, (gw - 6) / metrics.length));
    chart.append(svg('line', { x1: LEFT, y1: TOP + plotH, x2: W - LEFT, y2: TOP + plotH, stroke: '#888' }));
    groups.forEach((g, i) => {
      const x0 = LEFT + i * gw + (gw - bw * metrics.length) / 2;
      metrics.forEach((k, j) => {
        const v = g.m[k] || 0;
        const h = max[k] > 0 ? Math.max(v > 0 ? 1 : 0, (v / max[k]) * plotH) : 0;
        const bar = svg('rect', { x: x0 + j * bw, y: TOP + plotH - h, width: bw - 1, height: h, fill: COLORS[j],
          'data-test': 'usage-bar', 'data-metric': k, 'data-value': v });
        bar.append(svg('title', {}, `${g.label}: ${k} = ${fmt(v, unitOf(k))}`));
        chart.append(bar);
      });
      if (groups.length <= 12 || i % Math.ceil(groups.length / 12) === 0)
        chart.append(svg('text', { x: LEFT + i * gw + gw / 2, y: H - BOTTOM + 14, 'font-size': 10,
          'text-anchor': 'middle' }, g.label.length > 22 ? g.label.slice(-22) : g.label));
    });
    return groups.length;
  }

  async function refresh(api) {
    apiFn = api || apiFn;
    const sel = $('usage-bundle');
    const bundle = sel.value;
    if (!bundle || busy || !apiFn) return;
    const to = new Date();
    const from = new Date(to.getTime() - Number($('usage-range').value) * 1000);
    const q = `bundle=${encodeURIComponent(bundle)}&from=${encodeURIComponent(from.toISOString())}` +
              `&to=${encodeURIComponent(to.toISOString())}`;
    busy = true;
    try {
      const data = await apiFn('GET', '/v1/usage?' + q);
      const n = draw(rowsOf(data));
      $('usage-note').textContent = n ? `${bundle}: ${n} row(s), ${from.toLocaleString()} - ${to.toLocaleString()}` : '';
    } catch (e) {
      $('usage-chart').replaceChildren();
      $('usage-note').textContent = e.status === 403 ? 'this token may not read usage (403)' : e.message;
    } finally {
      busy = false;
    }
  }

  function setBundles(names) {
    const sel = $('usage-bundle');
    const key = JSON.stringify(names);
    if (sel.dataset.values === key) return;
    const keep = sel.value;
    sel.replaceChildren(...names.map((n) => {
      const o = document.createElement('option');
      o.value = n; o.textContent = n;
      return o;
    }));
    sel.dataset.values = key;
    if (names.includes(keep)) sel.value = keep;
    if (sel.value !== keep) refresh();
  }

  function reset() {
    $('usage-bundle').replaceChildren();
    delete $('usage-bundle').dataset.values;
    $('usage-chart').replaceChildren();
    $('usage-note').textContent = '';
  }

  function init(api) {
    apiFn = api;
    $('usage-bundle').addEventListener('change', () => refresh());
    $('usage-range').addEventListener('change', () => refresh());
  }

  window.envrunChart = { init, refresh, setBundles, reset, rowsOf, metricsOf };
})();
