// The envrun web console: login, the bundle and instance tables (refreshed every 2 s), the
// forms that act on them, and the usage chart (chart.js). Plain JS, no framework; every
// value from the API reaches the page through textContent or attributes, never as HTML.
'use strict';

const TOKEN_KEY = 'envrun.token';
const REFRESH_MS = 2000;
const USAGE_EVERY = 5;           // the usage chart refreshes every 5th tick (10 s)
const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ messages
let noticeTimer = null;
function showError(text) {
  $('error-text').textContent = text;
  $('error').hidden = false;
}
function clearError() { $('error').hidden = true; $('error-text').textContent = ''; }
function showNotice(text) {
  const n = $('notice');
  n.textContent = text;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, 8000);
}

// ------------------------------------------------------------------ the API
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

// api(METHOD, PATH[, BODY]): the parsed JSON answer; throws ApiError naming the request and
// the server's {"error"} text. A 401 ends the session (back to the login form).
async function api(method, path, body) {
  const opts = { method, headers: { Authorization: 'Bearer ' + token() }, cache: 'no-store' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, `${method} ${path}: the agent cannot be reached (${e.message})`);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (res.ok) return data;
  const reason = (data && typeof data.error === 'string') ? data.error
    : (data && typeof data.message === 'string') ? data.message : (text || res.statusText);
  const err = new ApiError(res.status, `${method} ${path}: ${res.status} ${reason}`);
  if (res.status === 401) endSession(`The token was refused (401): ${reason}`);
  throw err;
}

// ------------------------------------------------------------------ session
function showLogin() {
  $('main-view').hidden = true;
  $('login-view').hidden = false;
  $('logout-btn').hidden = true;
  $('session-info').textContent = '';
  $('token-input').focus();
}
function showMain() {
  $('login-view').hidden = true;
  $('main-view').hidden = false;
  $('logout-btn').hidden = false;
  $('session-info').textContent = 'logged in';
}
function endSession(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopRefresh();
  resetTables();
  showLogin();
  if (message) showError(message);
}

async function login(ev) {
  ev.preventDefault();
  clearError();
  const t = $('token-input').value.trim();
  if (!t) { showError('Enter a token.'); return; }
  sessionStorage.setItem(TOKEN_KEY, t);
  try {
    await api('GET', '/v1/instances');
  } catch (e) {
    if (e.status === 401) return;          // endSession showed why
    if (e.status !== 403) { showError(e.message); sessionStorage.removeItem(TOKEN_KEY); return; }
  }
  $('token-input').value = '';
  startSession();
}

function startSession() {
  showMain();
  startRefresh();
}

// ------------------------------------------------------------------ refresh loop
let timer = null;
let ticks = 0;
let refreshing = false;
function startRefresh() {
  stopRefresh();
  ticks = 0;
  refresh(true);
  timer = setInterval(() => refresh(false), REFRESH_MS);
}
function stopRefresh() { if (timer) clearInterval(timer); timer = null; }

// One tick: bundles and instances (and the usage chart every USAGE_EVERY ticks). A failed
// read shows its error; the next good refresh clears it only if it came from a refresh.
let refreshError = false;
async function refresh(withUsage) {
  if (refreshing || !token()) return;
  refreshing = true;
  try {
    const [bundles, instances] = await Promise.allSettled([
      api('GET', '/v1/bundles'), api('GET', '/v1/instances')]);
    if (!token()) return;                      // a 401 ended the session meanwhile
    const failed = [bundles, instances].filter((r) => r.status === 'rejected');
    if (bundles.status === 'fulfilled') renderBundles(listOf(bundles.value, 'bundles'));
    if (instances.status === 'fulfilled') renderInstances(listOf(instances.value, 'instances'));
    if (failed.length) {
      showError(failed.map((r) => r.reason.message).join('; '));
      refreshError = true;
    } else if (refreshError) {
      clearError();
      refreshError = false;
    }
    if (withUsage || ++ticks % USAGE_EVERY === 0) window.envrunChart.refresh(api);
  } finally {
    refreshing = false;
  }
}

// A list answer: an array, or an object holding one under KEY.
function listOf(v, key) {
  if (Array.isArray(v)) return v;
  if (v && Array.isArray(v[key])) return v[key];
  return [];
}

// ------------------------------------------------------------------ helpers
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}
function versionNumber(v) {
  if (v && typeof v === 'object') return v.version;
  return v;
}
function fmtCpu(s) { return (typeof s === 'number') ? s.toFixed(2) + ' s' : '-'; }
function fmtBytes(n) {
  if (typeof n !== 'number') return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
}
function setText(row, test, text) {
  const c = row.querySelector(`[data-test="${test}"]`);
  if (c.textContent !== String(text)) c.textContent = String(text);
}
// Replace a select's options only when the list changed (an open choice survives refresh).
function setOptions(select, values, labelOf) {
  const key = JSON.stringify(values);
  if (select.dataset.values === key) return;
  const keep = select.value;
  select.replaceChildren(...values.map((v) => el('option', { value: String(v), text: labelOf(v) })));
  select.dataset.values = key;
  if (values.map(String).includes(keep)) select.value = keep;
}
function stamp(id) { $(id).textContent = 'updated ' + new Date().toLocaleTimeString(); }

// Run an action from a button: the button waits, the result goes to the message areas,
// and the tables refresh at once.
async function act(button, label, fn) {
  clearError();
  button.disabled = true;
  showNotice(label + ' ...');
  try {
    const r = await fn();
    showNotice(label + ': done' + (r && r.message ? ' (' + r.message + ')' : ''));
  } catch (e) {
    $('notice').hidden = true;
    if (e.status !== 401) showError(label + ' failed: ' + e.message);
  } finally {
    button.disabled = false;
    refresh(false);
  }
}
const enc = encodeURIComponent;

// ------------------------------------------------------------------ bundles
let knownBundles = [];
function bundleRow(name) {
  const startId = el('input', { 'data-test': 'start-id', placeholder: 'instance id', size: '12' });
  const startVer = el('select', { 'data-test': 'start-version' });
  const startBtn = el('button', { type: 'button', 'data-test': 'start-btn', text: 'Start' });
  startBtn.addEventListener('click', () => {
    const id = startId.value.trim();
    if (!id) { showError(`Start an instance of ${name}: enter an instance id.`); return; }
    const body = { id, bundle: name };
    if (startVer.value) body.version = Number(startVer.value);
    act(startBtn, `start ${id} from ${name}`, async () => {
      const r = await api('POST', '/v1/instances', body);
      startId.value = '';
      return r;
    });
  });
  const pubSrc = el('input', { 'data-test': 'publish-source', placeholder: '/dir or registry ref', size: '28' });
  const pubBtn = el('button', { type: 'button', 'data-test': 'publish-btn', text: 'Publish' });
  pubBtn.addEventListener('click', () => {
    const src = pubSrc.value.trim();
    if (!src) { showError(`Publish ${name}: enter a directory or a registry reference.`); return; }
    act(pubBtn, `publish a new version of ${name}`, async () => {
      const r = await api('POST', `/v1/bundles/${enc(name)}/versions`, sourceBody(src));
      pubSrc.value = '';
      return r;
    });
  });
  const editBtn = el('button', { type: 'button', 'data-test': 'edit-btn', text: 'Configure' });
  editBtn.addEventListener('click', () => openEditor(name));
  const delBtn = el('button', { type: 'button', 'data-test': 'bundle-delete-btn', text: 'Delete' });
  confirmTwice(delBtn, () => act(delBtn, `delete bundle ${name}`,
    () => api('DELETE', `/v1/bundles/${enc(name)}`)));
  return el('tr', { 'data-test': 'bundle-row', 'data-name': name },
    el('td', { 'data-test': 'bundle-name', text: name }),
    el('td', { 'data-test': 'bundle-version' }),
    el('td', { 'data-test': 'bundle-versions' }),
    el('td', { 'data-test': 'bundle-created' }),
    el('td', {}, startId, startVer, startBtn),
    el('td', {}, pubSrc, pubBtn),
    el('td', {}, editBtn, delBtn));
}

// A destructive button asks once more: the first click arms it for 5 s.
function confirmTwice(button, fn) {
  const label = button.textContent;
  let armed = null;
  button.addEventListener('click', () => {
    if (!armed) {
      button.textContent = 'Confirm ' + label.toLowerCase();
      button.classList.add('armed');
      armed = setTimeout(() => { armed = null; button.textContent = label; button.classList.remove('armed'); }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    button.textContent = label;
    button.classList.remove('armed');
    fn();
  });
}

function sourceBody(src) { return src.startsWith('/') ? { dir: src } : { pull: src }; }

function renderBundles(list) {
  const body = $('bundles-body');
  const seen = new Set();
  for (const b of list) {
    if (!b || typeof b.name !== 'string') continue;
    seen.add(b.name);
    let row = body.querySelector(`tr[data-name="${CSS.escape(b.name)}"]`);
    if (!row) { row = bundleRow(b.name); body.append(row); }
    const versions = (b.versions || []).map(versionNumber).filter((v) => v !== undefined);
    setText(row, 'bundle-version', b.version ?? '-');
    setText(row, 'bundle-versions', versions.join(', '));
    setText(row, 'bundle-created', b.created ?? '');
    setOptions(row.querySelector('[data-test="start-version"]'), [''].concat(versions),
      (v) => (v === '' ? 'current' : 'v' + v));
  }
  for (const row of [...body.children]) if (!seen.has(row.dataset.name)) row.remove();
  $('bundles-empty').hidden = seen.size > 0;
  knownBundles = list.filter((b) => b && typeof b.name === 'string');
  window.envrunChart.setBundles(knownBundles.map((b) => b.name));
  stamp('bundles-updated');
}
function versionsOf(bundle) {
  const b = knownBundles.find((x) => x.name === bundle);
  return b ? (b.versions || []).map(versionNumber).filter((v) => v !== undefined) : [];
}

async function addBundle(ev) {
  ev.preventDefault();
  const name = $('add-bundle-name').value.trim();
  const src = $('add-bundle-source').value.trim();
  act($('add-bundle-btn'), `add bundle ${name}`, async () => {
    const r = await api('POST', '/v1/bundles', Object.assign({ name }, sourceBody(src)));
    $('add-bundle-name').value = '';
    $('add-bundle-source').value = '';
    return r;
  });
}

// ------------------------------------------------------------------ instances
function instanceRow(id) {
  const row = el('tr', { 'data-test': 'instance-row', 'data-id': id });
  const button = (test, text, fn) => {
    const b = el('button', { type: 'button', 'data-test': test, text });
    b.addEventListener('click', () => fn(b));
    return b;
  };
  const path = `/v1/instances/${enc(id)}`;
  const start = button('instance-start', 'Start', (b) => act(b, `start ${id}`, () => api('POST', path + '/start')));
  const stop = button('instance-stop', 'Stop', (b) => act(b, `stop ${id}`, () => api('POST', path + '/stop')));
  const ckpt = button('instance-checkpoint', 'Checkpoint',
    (b) => act(b, `checkpoint ${id}`, () => api('POST', path + '/checkpoint')));
  const del = el('button', { type: 'button', 'data-test': 'instance-delete', text: 'Delete' });
  confirmTwice(del, () => act(del, `delete ${id}`, () => api('DELETE', path)));
  const ver = el('select', { 'data-test': 'upgrade-version' });
  const mode = el('select', { 'data-test': 'upgrade-mode' },
    ...['auto', 'restart', 'checkpoint'].map((m) => el('option', { value: m, text: m })));
  const health = el('input', { 'data-test': 'upgrade-health', placeholder: 'health: http://... or command', size: '18' });
  const up = button('upgrade-btn', 'Upgrade', (b) => {
    if (!ver.value) { showError(`Upgrade ${id}: choose a version.`); return; }
    const body = { version: Number(ver.value), mode: mode.value };
    const h = health.value.trim();
    if (h) body.health = /^https?:\/\//.test(h) ? { http: h } : { exec: h.split(/\s+/) };
    act(b, `upgrade ${id} to version ${ver.value} (${mode.value})`, () => api('POST', path + '/upgrade', body));
  });
  row.append(
    el('td', { 'data-test': 'instance-id', text: id }),
    el('td', { 'data-test': 'instance-bundle' }),
    el('td', { 'data-test': 'instance-version' }),
    el('td', { 'data-test': 'instance-status' }),
    el('td', { 'data-test': 'instance-pid' }),
    el('td', { 'data-test': 'instance-cpu' }),
    el('td', { 'data-test': 'instance-mem' }),
    el('td', {}, start, stop, ckpt, del),
    el('td', {}, ver, mode, health, up));
  return row;
}

function renderInstances(list) {
  const body = $('instances-body');
  const seen = new Set();
  for (const i of list) {
    if (!i || typeof i.id !== 'string') continue;
    seen.add(i.id);
    let row = body.querySelector(`tr[data-id="${CSS.escape(i.id)}"]`);
    if (!row) { row = instanceRow(i.id); body.append(row); }
    const status = i.status || 'unknown';
    const usage = i.usage || {};
    row.dataset.status = status;
    setText(row, 'instance-bundle', i.bundle ?? '-');
    setText(row, 'instance-version', i.version ?? '-');
    setText(row, 'instance-status', status);
    setText(row, 'instance-pid', i.pid ? i.pid : '-');
    setText(row, 'instance-cpu', fmtCpu(usage.cpu_s));
    setText(row, 'instance-mem', fmtBytes(usage.mem_bytes));
    row.querySelector('[data-test="instance-status"]').className = 'status status-' + status;
    const running = status === 'running' || status === 'paused';
    row.querySelector('[data-test="instance-start"]').hidden = running;
    row.querySelector('[data-test="instance-stop"]').hidden = !running;
    row.querySelector('[data-test="instance-checkpoint"]').hidden = !running;
    const others = versionsOf(i.bundle).filter((v) => v !== i.version);
    setOptions(row.querySelector('[data-test="upgrade-version"]'), others, (v) => 'v' + v);
  }
  for (const row of [...body.children]) if (!seen.has(row.dataset.id)) row.remove();
  $('instances-empty').hidden = seen.size > 0;
  stamp('instances-updated');
}

function resetTables() {
  $('bundles-body').replaceChildren();
  $('instances-body').replaceChildren();
  $('bundles-updated').textContent = '';
  $('instances-updated').textContent = '';
  knownBundles = [];
  window.envrunChart.reset();
}

// ------------------------------------------------------------------ bundle editor
let editing = null;
async function openEditor(name) {
  clearError();
  try {
    const b = await api('GET', `/v1/bundles/${enc(name)}`);
    editing = { name, bundle: b || {} };
    $('edit-bundle-name').textContent = name;
    $('bundle-edit-section').hidden = false;
    fillEditor();
  } catch (e) {
    if (e.status !== 401) showError(`Configure ${name}: ${e.message}`);
  }
}
// What the editor shows for a field of GET /v1/bundles/NAME, and the body its PUT takes:
// config and intercept are the files' text, labels an object of strings, limits the OCI
// linux.resources object.
function fillEditor() {
  const field = $('edit-field').value;
  const v = editing.bundle[field];
  $('edit-text').value = (typeof v === 'string') ? v : JSON.stringify(v ?? {}, null, 2);
}
function editorBody(field, text) {
  if (field === 'config' || field === 'intercept') return { text };
  const v = JSON.parse(text);
  return field === 'labels' ? { labels: v } : { resources: v };
}
function saveEditor(ev) {
  ev.preventDefault();
  if (!editing) return;
  const field = $('edit-field').value;
  let body;
  try {
    body = editorBody(field, $('edit-text').value);
  } catch (e) {
    showError(`Configure ${editing.name}: ${field} is not valid JSON (${e.message})`);
    return;
  }
  const name = editing.name;
  act($('edit-save'), `change ${field} of ${name}`, async () => {
    const r = await api('PUT', `/v1/bundles/${enc(name)}/${field}`, body);
    editing.bundle = (await api('GET', `/v1/bundles/${enc(name)}`)) || editing.bundle;
    fillEditor();
    return r;
  });
}

// ------------------------------------------------------------------ start-up
document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', login);
  $('logout-btn').addEventListener('click', () => { endSession(''); clearError(); });
  $('error-close').addEventListener('click', clearError);
  $('add-bundle-form').addEventListener('submit', addBundle);
  $('edit-form').addEventListener('submit', saveEditor);
  $('edit-field').addEventListener('change', () => editing && fillEditor());
  $('edit-close').addEventListener('click', () => { editing = null; $('bundle-edit-section').hidden = true; });
  window.envrunChart.init(api);
  if (token()) startSession(); else showLogin();
});
