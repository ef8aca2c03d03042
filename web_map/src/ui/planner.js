// The planner's page (#/planner): every spatial query the API offers (/api/query/...), asked as
// a question whose parameters are inputs inside the sentence ("Trường học trong bán kính [2] km
// quanh [Bệnh viện]"). The answer is drawn on a map and listed in a table with the server's own
// figures (distance, nearest_m, population, count per 10 000), and exported as CSV, GeoJSON or
// GeoPackage by the server.

import * as maplibregl from 'maplibre-gl';

import { basemapStyle } from '../basemap.js';
import { circleRing, geometryBBox, representativePoint } from '../geo.js';
import { NGHE_AN_BOUNDS } from '../shell.js';
import { fmtNumber, lang, layerTitle, propLabel, t, valueLabel } from '../i18n.js';
import { el } from '../util.js';

// each preset: its endpoint, its parameters (in the order the sentence names them) and defaults
const PRESETS = {
  near_layer: { path: '/api/query/near-layer', params: { layer: 'schools', radius_km: 2, other: 'hospitals', other_filter: '' } },
  gaps: { path: '/api/query/gaps', params: { radius_km: 5, layer: 'hospitals', filter: 'health_station' } },
  per_commune: { path: '/api/query/per-commune', params: { layer: 'schools', filter: '', per: 10000 } },
  radius: { path: '/api/query/radius', params: { layer: 'schools', filter: '', radius_km: 1 }, point: true },
  nearest: { path: '/api/query/nearest', params: { k: 5, layer: 'hospitals', filter: '' }, point: true },
  within: { path: '/api/query/within', params: { layer: 'schools', filter: '', commune: '' } },
  buffer: { path: '/api/query/buffer', params: { radius_km: 0.5, layer: 'hospitals', filter: '', dissolve: false } },
  intersection: { path: '/api/query/intersection', params: { layer: 'land_parcels', other: 'field_reports', buffer_km: 0.2 } },
};
const NUMBER_PARAMS = { radius_km: [0.05, 100, 0.05], buffer_km: [0, 50, 0.05], per: [100, 1000000, 100], k: [1, 100, 1] };
// properties the server adds to a result: shown first, with units
const FIGURES = ['distance_m', 'nearest_m', 'population', 'count', 'sum'];
const HIDDEN = new Set(['nearest_id', 'id', 'point_lon', 'point_lat', 'source', 'source_key']);
const MAX_ROWS = 500;

const P = { preset: 'near_layer', params: null, point: null, result: null, busy: false, message: null, communes: null };
let view = null;

function params() {
  if (!P.params) P.params = {};
  if (!P.params[P.preset]) P.params[P.preset] = { ...PRESETS[P.preset].params };
  return P.params[P.preset];
}

/** The categorical property of a layer (its style's colour property) and its values. */
function filterOf(app, slug) {
  const layer = app.state.bySlug[slug];
  const style = (layer && layer.default_style) || {};
  if (!style.color_property || !style.palette) return null;
  return { property: style.color_property, values: Object.keys(style.palette) };
}

function layerOptions(app, kinds) {
  return app.state.catalog.filter((l) => !kinds || kinds.includes(l.geometry_type.replace('Multi', ''))).filter((l) => !['admin_communes', 'admin_province'].includes(l.slug));
}

/** The request body of the current question. */
function body(app) {
  const p = params();
  const where = (slug, value) => {
    const f = filterOf(app, slug);
    return f && value ? { [f.property]: value } : {};
  };
  switch (P.preset) {
    case 'near_layer':
      return { layer: p.layer, other_layer: p.other, radius_m: p.radius_km * 1000, where: {}, other_where: where(p.other, p.other_filter), limit: 5000 };
    case 'gaps':
      return { layer: p.layer, radius_m: p.radius_km * 1000, where: where(p.layer, p.filter) };
    case 'per_commune':
      return { layer: p.layer, per: p.per, where: where(p.layer, p.filter) };
    case 'radius':
      return P.point ? { layer: p.layer, lon: P.point[0], lat: P.point[1], radius_m: p.radius_km * 1000, where: where(p.layer, p.filter), limit: 5000 } : null;
    case 'nearest':
      return P.point ? { layer: p.layer, lon: P.point[0], lat: P.point[1], k: p.k, where: where(p.layer, p.filter) } : null;
    case 'within':
      return p.commune ? { layer: p.layer, admin_code: p.commune, where: where(p.layer, p.filter), limit: 5000 } : null;
    case 'buffer':
      return { layer: p.layer, radius_m: p.radius_km * 1000, dissolve: !!p.dissolve, where: where(p.layer, p.filter), limit: 5000 };
    case 'intersection':
      return { layer: p.layer, other_layer: p.other, buffer_m: p.buffer_km ? p.buffer_km * 1000 : null, limit: 5000 };
    default:
      return null;
  }
}

async function post(path, b, format) {
  const res = await fetch(`${path}?format=${format}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: format === 'geojson' ? 'application/geo+json' : '*/*', 'Accept-Language': lang() },
    body: JSON.stringify(b),
  });
  if (!res.ok) {
    const e = await res.json().catch(() => ({}));
    throw new Error(e.detail || `HTTP ${res.status}`);
  }
  return res;
}

async function run(app) {
  const b = body(app);
  if (!b) {
    P.message = { text: t(PRESETS[P.preset].point ? 'plan.need_point' : 'plan.need_commune'), kind: 'error' };
    return renderPlannerPage(app);
  }
  P.busy = true;
  P.message = null;
  renderPlannerPage(app);
  try {
    const res = await post(PRESETS[P.preset].path, b, 'geojson');
    const fc = await res.json();
    P.result = { preset: P.preset, fc, truncated: res.headers.get('X-Result-Truncated') === 'true' };
  } catch (e) {
    P.result = null;
    P.message = { text: t('plan.error', { detail: e.message }), kind: 'error' };
  } finally {
    P.busy = false;
  }
  renderPlannerPage(app);
  fitResult();
}

async function exportAs(app, format) {
  const b = body(app);
  if (!b) return;
  try {
    const res = await post(PRESETS[P.preset].path, b, format);
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: `${P.preset}.${format}` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 2000);
  } catch (e) {
    P.message = { text: t('plan.error', { detail: e.message }), kind: 'error' };
    renderPlannerPage(app);
  }
}

// --- the question sentence with its inputs ----------------------------------------------------

function input(app, name) {
  const p = params();
  const set = (v) => {
    p[name] = v;
    P.result = null;
    drawMap(app);
  };
  if (name in NUMBER_PARAMS) {
    const [min, max, step] = NUMBER_PARAMS[name];
    return el('input', { type: 'number', class: 'plan-num', 'data-param': name, min, max, step, value: p[name], oninput: (e) => { const v = Number(e.target.value); if (Number.isFinite(v) && v >= min && v <= max) set(v); } });
  }
  if (name === 'layer' || name === 'other') {
    const kinds = P.preset === 'intersection' || P.preset === 'within' ? null : ['Point'];
    return el('select', { 'data-param': name, onchange: (e) => { p[name] = e.target.value; if (name === 'layer') p.filter = ''; else p.other_filter = ''; P.result = null; renderPlannerPage(app); } }, layerOptions(app, kinds).map((l) => el('option', { value: l.slug, selected: l.slug === p[name] }, layerTitle(l))));
  }
  if (name === 'filter' || name === 'other_filter') {
    const f = filterOf(app, name === 'filter' ? p.layer : p.other);
    if (!f) return null;
    return el('select', { 'data-param': name, onchange: (e) => set(e.target.value) }, el('option', { value: '' }, t('plan.any_kind')), f.values.map((v) => el('option', { value: v, selected: v === p[name] }, valueLabel(v))));
  }
  if (name === 'commune') {
    const list = P.communes || [];
    return el('select', { 'data-param': name, onchange: (e) => set(e.target.value) }, el('option', { value: '' }, t('plan.pick_commune')), list.map((c) => el('option', { value: c.code, selected: c.code === p.commune }, c.name)));
  }
  if (name === 'dissolve') return el('label', { class: 'plan-check' }, el('input', { type: 'checkbox', 'data-param': name, checked: !!p.dissolve, onchange: (e) => set(e.target.checked) }), t('plan.dissolve'));
  return null;
}

/** The question as text with inputs where its {parameters} are. */
function sentence(app, preset, live) {
  const template = t(`plan.q.${preset}`);
  const out = [];
  let last = 0;
  for (const m of template.matchAll(/\{(\w+)\}/g)) {
    out.push(template.slice(last, m.index));
    if (live) out.push(input(app, m[1]));
    else {
      const text = defaultText(app, preset, m[1]);
      if (text) out.push(el('b', {}, text));
    }
    last = m.index + m[0].length;
  }
  out.push(template.slice(last));
  if (live) return out;
  // a label: single spaces, and a capital first letter even when it starts with a layer's name
  const parts = [];
  for (const part of out) {
    if (typeof part === 'string') parts.push(part.replace(/\s+/g, ' '));
    else parts.push(part);
  }
  const firstText = parts.find((x) => (typeof x === 'string' ? x.trim() : x.textContent));
  if (typeof firstText === 'string') parts[parts.indexOf(firstText)] = firstText.replace(/^\s*(\S)/, (c) => c.toUpperCase());
  else if (firstText) firstText.textContent = firstText.textContent.charAt(0).toUpperCase() + firstText.textContent.slice(1);
  return parts;
}

function defaultText(app, preset, name) {
  const all = PRESETS[preset].params;
  const v = all[name];
  // a preset filtered to one kind names that kind instead of the whole layer
  const kind = name === 'layer' ? all.filter : name === 'other' ? all.other_filter : '';
  if (kind) return valueLabel(kind).toLowerCase();
  if (name === 'layer' || name === 'other') return app.state.bySlug[v] ? layerTitle(app.state.bySlug[v]).toLowerCase() : v;
  if (name === 'filter' || name === 'other_filter') return '';
  if (name === 'commune') return t('plan.pick_commune').toLowerCase();
  if (name === 'dissolve') return '';
  return fmtNumber(v, 2);
}

// --- the page -------------------------------------------------------------------------------

/** Draw the planner page. */
export function renderPlannerPage(app) {
  const page = document.getElementById('plannerpage');
  if (!page) return;
  if (P.communes === null) {
    P.communes = [];
    fetch('/api/layers/admin_communes/features?limit=500', { headers: { Accept: 'application/geo+json' } })
      .then((r) => r.json())
      .then((fc) => {
        P.communes = (fc.features || []).map((f) => ({ code: String(f.properties.code), name: f.properties.name })).sort((a, b) => a.name.localeCompare(b.name, 'vi'));
        renderPlannerPage(app);
      })
      .catch(() => {});
  }
  page.innerHTML = '';
  const presets = el(
    'ol',
    { class: 'plan-presets', id: 'plan-presets' },
    Object.keys(PRESETS).map((k) =>
      el(
        'li',
        {},
        el('button', { class: `plan-preset${k === P.preset ? ' active' : ''}`, 'data-preset': k, onclick: () => { P.preset = k; P.result = null; P.message = null; renderPlannerPage(app); } }, sentence(app, k, false)),
      ),
    ),
  );
  const spec = PRESETS[P.preset];
  const question = el(
    'form',
    { class: 'imp-card plan-question', id: 'plan-question', onsubmit: (e) => { e.preventDefault(); run(app); } },
    el('h2', {}, t('plan.ask')),
    el('p', { class: 'plan-sentence', id: 'plan-sentence' }, sentence(app, P.preset, true), '?'),
    spec.point ? el('p', { class: 'muted small', id: 'plan-point' }, P.point ? t('plan.point_set', { lat: P.point[1].toFixed(5), lon: P.point[0].toFixed(5) }) : t('plan.click_map')) : null,
    el('div', { class: 'row wrap' }, el('button', { class: 'btn primary', type: 'submit', id: 'plan-run', disabled: P.busy }, P.busy ? t('plan.running') : t('plan.run'))),
    P.message ? el('div', { class: `rep-message ${P.message.kind}`, id: 'plan-message' }, P.message.text) : null,
  );
  const mapBox = el('div', { class: 'plan-map', id: 'plan-map' });
  const results = el('div', { class: 'imp-card plan-results', id: 'plan-results' });
  fillResults(app, results);
  page.append(
    el('h1', {}, t('nav.planner')),
    el('div', { class: 'plan-grid' }, el('div', { class: 'plan-side' }, el('div', { class: 'imp-card' }, el('h2', {}, t('plan.questions')), presets), question), el('div', { class: 'plan-main' }, mapBox, results)),
  );
  if (view) view.remove();
  view = new maplibregl.Map({ container: mapBox, style: basemapStyle(location.origin), bounds: NGHE_AN_BOUNDS, attributionControl: false, dragRotate: false, renderWorldCopies: false, fadeDuration: 0 });
  view.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  view.on('load', () => {
    view.addSource('plan-result', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    view.addSource('plan-area', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    view.addLayer({ id: 'plan-area-fill', type: 'fill', source: 'plan-area', paint: { 'fill-color': '#ffc107', 'fill-opacity': 0.12 } });
    view.addLayer({ id: 'plan-area-line', type: 'line', source: 'plan-area', paint: { 'line-color': '#ffc107', 'line-width': 2, 'line-dasharray': [2, 1] } });
    view.addLayer({ id: 'plan-fill', type: 'fill', source: 'plan-result', filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': ['case', ['==', ['get', 'count'], 0], '#ef5350', '#ff4081'], 'fill-opacity': 0.35 } });
    view.addLayer({ id: 'plan-line', type: 'line', source: 'plan-result', filter: ['!=', ['geometry-type'], 'Point'], paint: { 'line-color': '#ff4081', 'line-width': 1.5 } });
    view.addLayer({ id: 'plan-point', type: 'circle', source: 'plan-result', filter: ['==', ['geometry-type'], 'Point'], paint: { 'circle-color': '#ff4081', 'circle-radius': 5, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1 } });
    drawMap(app);
    fitResult();
  });
  view.on('click', (e) => {
    if (!PRESETS[P.preset].point) return;
    P.point = [e.lngLat.lng, e.lngLat.lat];
    P.result = null;
    const note = document.getElementById('plan-point');
    if (note) note.textContent = t('plan.point_set', { lat: P.point[1].toFixed(5), lon: P.point[0].toFixed(5) });
    drawMap(app);
  });
}

/** The drawn area (the circle follows the typed radius) and the answer's features. */
function drawMap(app) {
  if (!view || !view.getSource('plan-result')) return;
  const p = params();
  const area = [];
  if (PRESETS[P.preset].point && P.point) {
    area.push({ type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: P.point } });
    if (P.preset === 'radius') area.push({ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [circleRing(P.point, p.radius_km * 1000)] } });
  }
  view.getSource('plan-area').setData({ type: 'FeatureCollection', features: area });
  const fc = P.result && P.result.preset === P.preset ? P.result.fc : { type: 'FeatureCollection', features: [] };
  view.getSource('plan-result').setData(fc);
}

function fitResult() {
  if (!view || !P.result) return;
  const feats = P.result.fc.features || [];
  if (!feats.length) return;
  let b = null;
  for (const f of feats) {
    const g = geometryBBox(f.geometry);
    if (!Number.isFinite(g[0])) continue;
    b = b ? [Math.min(b[0], g[0]), Math.min(b[1], g[1]), Math.max(b[2], g[2]), Math.max(b[3], g[3])] : g;
  }
  if (b) view.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 40, maxZoom: 14, duration: 0 });
}

function columns(feats) {
  const keys = new Set();
  for (const f of feats.slice(0, 200)) for (const k of Object.keys(f.properties || {})) if (!HIDDEN.has(k)) keys.add(k);
  const first = ['name', 'title', 'code', 'commune_name'].filter((k) => keys.has(k));
  // the server's figures next to the name: distance, nearest_m, population, count, count per N
  const figures = [...FIGURES.filter((k) => keys.has(k)), ...[...keys].filter((k) => k.startsWith('count_per_') && !FIGURES.includes(k))];
  const rest = [...keys].filter((k) => !first.includes(k) && !figures.includes(k) && !k.endsWith('_vi') && k !== 'report_code').slice(0, 5);
  return [...first, ...figures, ...rest];
}

function header(k) {
  if (k.startsWith('count_per_')) return t('plan.col.count_per', { n: fmtNumber(Number(k.slice(10))) });
  const key = `plan.col.${k}`;
  const label = t(key);
  return label === key ? propLabel(k) : label;
}

function cell(k, v) {
  if (v === null || v === undefined) return '—';
  if (k === 'distance_m' || k === 'nearest_m') return v >= 1000 ? `${fmtNumber(v / 1000, 2)} km` : `${fmtNumber(v)} m`;
  if (typeof v === 'number') return fmtNumber(v, 2);
  if (typeof v === 'boolean') return valueLabel(v);
  return valueLabel(String(v));
}

function fillResults(app, box) {
  if (!P.result || P.result.preset !== P.preset) {
    box.append(el('p', { class: 'muted' }, t('plan.no_result')));
    return;
  }
  const feats = P.result.fc.features || [];
  const cols = columns(feats);
  box.append(
    el(
      'div',
      { class: 'plan-results-head' },
      el('h2', {}, t(feats.length === 1 ? 'plan.count_one' : 'plan.count', { n: fmtNumber(feats.length) }), P.result.truncated ? el('span', { class: 'rep-late' }, ` ${t('plan.truncated')}`) : null),
      el('div', { class: 'row wrap' }, ['csv', 'geojson', 'gpkg'].map((f) => el('button', { class: 'btn small', 'data-export': f, onclick: () => exportAs(app, f) }, t(`plan.export.${f}`)))),
    ),
  );
  if (!feats.length) return;
  const tbl = el('table', { class: 'imp-table plan-table', id: 'plan-table' });
  tbl.append(el('tr', {}, cols.map((k) => el('th', {}, header(k)))));
  for (const f of feats.slice(0, MAX_ROWS)) {
    tbl.append(
      el(
        'tr',
        {
          class: 'plan-row',
          onclick: () => {
            const pt = representativePoint(f.geometry);
            if (view && pt) view.flyTo({ center: pt, zoom: Math.max(view.getZoom(), 13) });
          },
        },
        cols.map((k) => el('td', { 'data-col': k }, cell(k, (f.properties || {})[k]))),
      ),
    );
  }
  box.append(el('div', { class: 'plan-table-wrap' }, tbl));
  if (feats.length > MAX_ROWS) box.append(el('p', { class: 'muted small' }, t('plan.more_rows', { n: fmtNumber(MAX_ROWS) })));
}
