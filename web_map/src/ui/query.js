// Spatial query tools: draw a polygon or circle or pick a commune, run a preset
// (within, radius, nearest, per-commune indicators, gaps), list results that highlight
// on the map, and export them. Presets run on the server (/api/query/...) when it offers
// them and in the browser over the loaded layers otherwise.

import { fmtNumber, layerTitle, t } from '../i18n.js';
import { circleRing, distanceM, pointInGeometry, representativePoint } from '../geo.js';
import { isPoint } from '../style.js';
import { download, el } from '../util.js';
import { runServerPreset } from './queryServer.js';

const PRESETS = ['within', 'radius', 'nearest', 'per_commune', 'gaps'];

/** Default query settings. */
export function initQuery(app) {
  const { state } = app;
  state.query = state.query || {
    preset: 'within',
    target: state.bySlug.schools ? 'schools' : (state.catalog.find(isPoint) || {}).slug,
    radius: 1000,
    nearest: 5,
    message: null,
    source: null,
  };
}

function setMode(app, mode) {
  const d = app.state.draw;
  d.mode = d.mode === mode ? null : mode;
  d.points = [];
  if (d.mode) {
    d.area = null;
    d.circle = false;
    d.center = null;
    d.areaLabel = null;
    d.communeCode = null;
  }
  app.map.getCanvas().style.cursor = d.mode ? 'crosshair' : '';
  app.redraw();
  renderQuery(app);
}

/** The drawn circle around its centre at the query's radius, and its label. */
function drawCircle(state) {
  const d = state.draw;
  d.area = { type: 'Polygon', coordinates: [circleRing(d.center, state.query.radius)] };
  d.areaLabel = t('query.radius_label', { r: fmtNumber(state.query.radius) });
}

/** A radius typed by the planner: the drawn circle (if any) is redrawn to it at once. */
function setRadius(app, value) {
  const { state } = app;
  const r = Number(value);
  if (!Number.isFinite(r) || r < 10) return;
  state.query.radius = r;
  const d = state.draw;
  if (!d.circle || !d.center) return;
  drawCircle(state);
  // the label in place: re-rendering the panel would take the focus from the field being typed in
  const label = document.getElementById('query-area-label');
  if (label) label.textContent = `◉ ${d.areaLabel}`;
  app.redraw();
}

/** A map click while a drawing tool is active. */
export function handleQueryClick(app, lonlat) {
  const { state } = app;
  const d = state.draw;
  if (d.mode === 'polygon') {
    d.points.push(lonlat);
  } else if (d.mode === 'circle') {
    if (!d.center) {
      d.center = lonlat;
      d.points = [lonlat];
    } else {
      state.query.radius = Math.max(10, Math.round(distanceM(d.center, lonlat)));
      d.circle = true;
      drawCircle(state);
      d.points = [];
      d.mode = null;
      state.query.preset = 'radius';
    }
  } else if (d.mode === 'commune') {
    const hit = (state.data.admin_communes || []).find((f) => pointInGeometry(lonlat, f.geometry));
    if (hit) {
      d.area = hit.geometry;
      d.circle = false;
      d.areaLabel = hit.properties.name;
      d.communeCode = hit.properties.code;
      d.center = representativePoint(hit.geometry);
      d.mode = null;
      state.selectedCommune = hit;
    }
  }
  if (!d.mode) app.map.getCanvas().style.cursor = '';
  app.redraw();
  app.renderPanels();
}

/** Double-click closes the polygon being drawn. */
export function handleQueryDblClick(app) {
  finishPolygon(app);
}

function finishPolygon(app) {
  const d = app.state.draw;
  if (d.mode !== 'polygon') return;
  // a double-click also fired a click: drop the duplicate vertex
  const pts = d.points.filter((p, i) => i === 0 || p[0] !== d.points[i - 1][0] || p[1] !== d.points[i - 1][1]);
  if (pts.length >= 3) {
    d.area = { type: 'Polygon', coordinates: [[...pts, pts[0]]] };
    d.circle = false;
    d.center = representativePoint(d.area);
    d.areaLabel = null;
  }
  d.points = [];
  d.mode = null;
  app.map.getCanvas().style.cursor = '';
  app.redraw();
  renderQuery(app);
}

/** Set the query area programmatically (used by tests and deep links). */
export function setArea(app, geometry, label = null) {
  const d = app.state.draw;
  d.area = geometry;
  d.circle = false;
  d.communeCode = null;
  d.center = representativePoint(geometry);
  d.areaLabel = label;
  d.mode = null;
  app.redraw();
  renderQuery(app);
}

function featurePoint(f) {
  return representativePoint(f.geometry);
}

function row(slug, f, extra = {}) {
  const p = f.properties || {};
  return {
    slug,
    feature: f,
    point: featurePoint(f),
    name: p.name || p.title || p.report_code || p.camera_id || `#${f.id ?? ''}`,
    commune: p.commune_name || p.name || '',
    value: extra.value ?? null,
    valueLabel: extra.valueLabel || '',
  };
}

/** Run the chosen preset in the browser over the loaded features. */
export function runClientPreset(state) {
  const q = state.query;
  const d = state.draw;
  const target = state.data[q.target] || [];
  const communes = state.data.admin_communes || [];
  switch (q.preset) {
    case 'within': {
      if (!d.area) return { error: t('query.need_area') };
      return { rows: target.filter((f) => pointIn(f, d.area)).map((f) => row(q.target, f)) };
    }
    case 'radius': {
      if (!d.center) return { error: t('query.need_area') };
      return {
        rows: target
          .map((f) => ({ f, m: distanceM(d.center, featurePoint(f)) }))
          .filter((x) => x.m <= q.radius)
          .sort((a, b) => a.m - b.m)
          .map((x) => row(q.target, x.f, { value: x.m, valueLabel: `${fmtNumber(x.m)} m` })),
      };
    }
    case 'nearest': {
      if (!d.center) return { error: t('query.need_area') };
      return {
        rows: target
          .map((f) => ({ f, m: distanceM(d.center, featurePoint(f)) }))
          .sort((a, b) => a.m - b.m)
          .slice(0, q.nearest)
          .map((x) => row(q.target, x.f, { value: x.m, valueLabel: `${fmtNumber(x.m)} m` })),
      };
    }
    case 'per_commune':
    case 'gaps': {
      const counts = new Map();
      for (const f of target) {
        const code = f.properties && f.properties.commune_code;
        if (code !== undefined) counts.set(String(code), (counts.get(String(code)) || 0) + 1);
      }
      const scope = d.area ? communes.filter((c) => pointIn(c, d.area) || pointInGeometry(d.center || [0, 0], c.geometry)) : communes;
      let rows = scope.map((c) => {
        const n = counts.get(String(c.properties.code)) || 0;
        return row('admin_communes', c, { value: n, valueLabel: fmtNumber(n) });
      });
      if (q.preset === 'gaps') rows = rows.filter((r) => r.value === 0);
      rows.sort((a, b) => b.value - a.value || a.name.localeCompare(b.name));
      return { rows };
    }
    default:
      return { rows: [] };
  }
}

function pointIn(f, area) {
  const p = featurePoint(f);
  return p ? pointInGeometry(p, area) : false;
}

async function run(app) {
  const { state } = app;
  const layer = state.bySlug[state.query.target];
  if (layer) await app.loadLayer(layer);
  if (!state.data.admin_communes && state.bySlug.admin_communes) await app.loadLayer(state.bySlug.admin_communes);
  let out = await runServerPreset(app).catch(() => null);
  state.query.source = out ? 'server' : 'client';
  if (!out) out = runClientPreset(state);
  state.query.message = out.error || null;
  state.results = out.rows || [];
  state.highlight = null;
  state.rightTab = 'query';
  app.update();
}

function exportCsv(state) {
  const head = ['layer', 'id', 'name', 'commune', 'value', 'lon', 'lat'];
  const lines = [head.join(',')];
  for (const r of state.results) {
    const cells = [r.slug, r.feature.id ?? '', r.name, r.commune, r.value ?? '', r.point ? r.point[0] : '', r.point ? r.point[1] : ''];
    lines.push(cells.map((c) => `"${String(c).replaceAll('"', '""')}"`).join(','));
  }
  download('iocmap-query.csv', `\ufeff${lines.join('\n')}`, 'text/csv;charset=utf-8');
}

function exportGeoJSON(state) {
  const fc = {
    type: 'FeatureCollection',
    features: state.results.map((r) => ({ ...r.feature, properties: { ...r.feature.properties, _layer: r.slug, _value: r.value } })),
  };
  download('iocmap-query.geojson', JSON.stringify(fc), 'application/geo+json');
}

/** Draw the query tab. */
export function renderQuery(app) {
  const box = document.getElementById('tab-query');
  if (!box || !app.state.query) return;
  const { state } = app;
  const q = state.query;
  const d = state.draw;
  box.innerHTML = '';
  const tool = (mode, label) => el('button', { class: `btn small${d.mode === mode ? ' active' : ''}`, 'data-tool': mode, onclick: () => setMode(app, mode) }, label);
  box.append(
    el(
      'div',
      { class: 'row wrap' },
      tool('polygon', t('query.polygon')),
      tool('circle', t('query.circle')),
      tool('commune', t('query.commune')),
      d.mode === 'polygon' ? el('button', { class: 'btn small', id: 'query-finish', onclick: () => finishPolygon(app) }, t('query.finish')) : null,
      el(
        'button',
        {
          class: 'btn small ghost',
          onclick: () => {
            Object.assign(d, { mode: null, points: [], center: null, area: null, areaLabel: null, communeCode: null, circle: false });
            state.results = [];
            state.highlight = null;
            app.update();
          },
        },
        t('query.clear'),
      ),
    ),
  );
  if (d.mode) box.append(el('p', { class: 'hint' }, t(`query.hint_${d.mode}`)));
  // a circle's label is written in the page's language each time (the language may have changed)
  const areaLabel = d.circle && d.area ? t('query.radius_label', { r: fmtNumber(q.radius) }) : d.areaLabel;
  if (areaLabel) box.append(el('p', { class: 'small', id: 'query-area-label' }, `◉ ${areaLabel}`));
  const form = el(
    'div',
    { class: 'qform' },
    el(
      'label',
      {},
      t('query.preset'),
      el(
        'select',
        {
          id: 'query-preset',
          onchange: (e) => {
            q.preset = e.target.value;
            renderQuery(app);
          },
        },
        PRESETS.map((p) => el('option', { value: p, selected: q.preset === p }, t(`query.preset_${p}`))),
      ),
    ),
    el(
      'label',
      {},
      t('query.target'),
      el(
        'select',
        {
          id: 'query-target',
          onchange: (e) => {
            q.target = e.target.value;
          },
        },
        state.catalog.filter((l) => isPoint(l)).map((l) => el('option', { value: l.slug, selected: q.target === l.slug }, layerTitle(l))),
      ),
    ),
    q.preset === 'radius'
      ? el('label', {}, t('query.radius_m'), el('input', { type: 'number', id: 'query-radius', min: '10', step: '50', value: String(q.radius), oninput: (e) => setRadius(app, e.target.value), onchange: (e) => setRadius(app, e.target.value) }))
      : null,
    q.preset === 'nearest'
      ? el('label', {}, t('query.nearest_n'), el('input', { type: 'number', min: '1', max: '100', value: String(q.nearest), onchange: (e) => (q.nearest = Number(e.target.value) || 5) }))
      : null,
    el('button', { class: 'btn primary', id: 'query-run', onclick: () => run(app) }, t('query.run')),
  );
  box.append(form);
  if (q.message) box.append(el('p', { class: 'warn' }, q.message));
  if (!state.results.length && q.source) box.append(el('p', { class: 'muted' }, t('query.no_results')));
  if (!state.results.length) return;
  box.append(
    el(
      'div',
      { class: 'row between' },
      el('b', { id: 'query-count' }, t('query.count', { n: fmtNumber(state.results.length) })),
      el('span', {}, el('button', { class: 'btn tiny', onclick: () => exportCsv(state) }, t('query.export_csv')), ' ', el('button', { class: 'btn tiny', onclick: () => exportGeoJSON(state) }, t('query.export_geojson'))),
    ),
  );
  const table = el('table', { class: 'results', id: 'query-results' });
  const valueHead = q.preset === 'radius' || q.preset === 'nearest' ? t('query.distance_m') : q.preset === 'gaps' ? t('plan.col.nearest_m') : q.preset === 'per_commune' ? layerTitle(state.bySlug[q.target] || { title_vi: '', title_en: '' }) : '';
  table.append(el('tr', {}, el('th', {}, t('prop.name')), el('th', {}, t('prop.commune_name')), valueHead ? el('th', {}, valueHead) : null));
  for (const r of state.results.slice(0, 500)) {
    table.append(
      el(
        'tr',
        {
          class: r === state.highlight ? 'hl' : '',
          onclick: () => {
            state.highlight = r;
            if (r.point) app.flyTo(r.point, r.slug === 'admin_communes' ? 11 : 15);
            app.redraw();
            renderQuery(app);
          },
        },
        el('td', {}, r.name),
        el('td', {}, r.slug === 'admin_communes' ? '' : r.commune),
        valueHead ? el('td', { class: 'num' }, r.valueLabel) : null,
      ),
    );
  }
  box.append(el('div', { class: 'results-wrap' }, table));
}
