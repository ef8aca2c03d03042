// Measure distance and area on the map: click to add points; the running total shows in
// metres/kilometres or square metres/hectares. Geodesic on the sphere (haversine and the
// spherical polygon area), well within 1% over a province.

import { fmtNumber, t } from '../i18n.js';
import { el } from '../util.js';

const R = 6371008.8; // mean Earth radius (m)
const R_AREA = 6378137; // as turf/area: the spherical excess on the equatorial radius
const SRC = 'measure';
const rad = (d) => (d * Math.PI) / 180;

/** Great-circle distance in metres between two [lon, lat] points. */
export function distance(a, b) {
  const dLat = rad(b[1] - a[1]);
  const dLon = rad(b[0] - a[0]);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a[1])) * Math.cos(rad(b[1])) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Length in metres of a [lon, lat] path. */
export function pathLength(points) {
  let sum = 0;
  for (let i = 1; i < points.length; i++) sum += distance(points[i - 1], points[i]);
  return sum;
}

/** Area in m² of a ring of [lon, lat] points (closed or not). */
export function ringArea(points) {
  if (points.length < 3) return 0;
  let sum = 0;
  for (let i = 0; i < points.length; i++) {
    const p1 = points[i];
    const p2 = points[(i + 1) % points.length];
    sum += rad(p2[0] - p1[0]) * (2 + Math.sin(rad(p1[1])) + Math.sin(rad(p2[1])));
  }
  return Math.abs((sum * R_AREA * R_AREA) / 2);
}

/** "850 m" / "12,35 km". */
export function fmtLength(m) {
  return m < 1000 ? `${fmtNumber(m, 1)} m` : `${fmtNumber(m / 1000, 3)} km`;
}

/** "5.300 m² · 0,53 ha". */
export function fmtArea(m2) {
  return `${fmtNumber(m2, 0)} m² · ${fmtNumber(m2 / 10000, m2 < 100000 ? 3 : 1)} ha`;
}

function data(m) {
  const feats = m.points.map((p) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: p }, properties: {} }));
  if (m.points.length > 1) {
    const ring = m.mode === 'area' && m.points.length > 2 ? [...m.points, m.points[0]] : m.points;
    feats.push({ type: 'Feature', geometry: { type: 'LineString', coordinates: ring }, properties: {} });
    if (m.mode === 'area' && m.points.length > 2) feats.push({ type: 'Feature', geometry: { type: 'Polygon', coordinates: [ring] }, properties: {} });
  }
  return { type: 'FeatureCollection', features: feats };
}

function ensure(map) {
  if (map.getSource(SRC)) return;
  map.addSource(SRC, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({ id: 'measure-fill', type: 'fill', source: SRC, filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': '#00e5ff', 'fill-opacity': 0.15 } });
  map.addLayer({ id: 'measure-line', type: 'line', source: SRC, filter: ['==', ['geometry-type'], 'LineString'], paint: { 'line-color': '#00e5ff', 'line-width': 2.5, 'line-dasharray': [2, 1] } });
  map.addLayer({ id: 'measure-pt', type: 'circle', source: SRC, filter: ['==', ['geometry-type'], 'Point'], paint: { 'circle-radius': 5, 'circle-color': '#fff', 'circle-stroke-color': '#00e5ff', 'circle-stroke-width': 2 } });
}

/** The result text of the current measurement. */
export function measureText(m) {
  if (m.mode === 'area') return m.points.length > 2 ? `${t('measure.area')}: ${fmtArea(ringArea(m.points))} · ${t('measure.perimeter')}: ${fmtLength(pathLength([...m.points, m.points[0]]))}` : t('measure.hint');
  return m.points.length > 1 ? `${t('measure.distance')}: ${fmtLength(pathLength(m.points))}` : t('measure.hint');
}

/** Start (or switch) measuring; returns the floating panel. */
export function startMeasure(app, mode = 'distance') {
  const { map } = app;
  ensure(map);
  stopMeasure(app);
  const m = { mode, points: [] };
  app.measuring = m;
  map.getCanvas().style.cursor = 'crosshair';
  const out = el('div', { id: 'measure-out', class: 'measure-out', role: 'status', 'aria-live': 'polite' });
  const seg = el(
    'div',
    { class: 'seg' },
    ['distance', 'area'].map((id) =>
      el('button', { type: 'button', class: `segbtn${id === mode ? ' active' : ''}`, 'data-measure': id, onclick: () => startMeasure(app, id) }, t(`measure.${id}`)),
    ),
  );
  const panel = el(
    'div',
    { id: 'measure-panel', class: 'panel measure-panel' },
    el('div', { class: 'row between' }, el('strong', {}, t('measure.title')), el('button', { type: 'button', class: 'btn ghost small', id: 'measure-close', 'aria-label': t('panel.close'), onclick: () => stopMeasure(app) }, '×')),
    seg,
    out,
    el('div', { class: 'row' }, el('button', { type: 'button', class: 'btn small', id: 'measure-undo', onclick: () => { m.points.pop(); update(); } }, t('measure.undo')), el('button', { type: 'button', class: 'btn small', id: 'measure-clear', onclick: () => { m.points = []; update(); } }, t('measure.clear'))),
  );
  const update = () => {
    map.getSource(SRC).setData(data(m));
    out.textContent = measureText(m);
    out.dataset.meters = m.mode === 'area' ? String(ringArea(m.points)) : String(pathLength(m.points));
  };
  m.onClick = (e) => {
    m.points.push([e.lngLat.lng, e.lngLat.lat]);
    update();
  };
  map.on('click', m.onClick);
  document.getElementById('mapview').append(panel);
  update();
  return panel;
}

/** Stop measuring and clear the drawing. */
export function stopMeasure(app) {
  const m = app.measuring;
  if (!m) return;
  app.map.off('click', m.onClick);
  app.map.getCanvas().style.cursor = '';
  app.map.getSource(SRC)?.setData({ type: 'FeatureCollection', features: [] });
  document.getElementById('measure-panel')?.remove();
  app.measuring = null;
  document.getElementById('tool-measure')?.classList.remove('active');
}
