// Hot spots (Getis-Ord Gi*) as a map mode: the server's /api/h3/{layer}/hotspots cells drawn by
// maplibre as hexagons, coloured by hot or cold and by confidence (90, 95, 99 %), with a legend
// that says what the colours mean and how many cells each class has.

import { cellToBoundary } from 'h3-js';

import { fillPath, getJSON } from '../api.js';
import { fmtNumber, t } from '../i18n.js';
import { el } from '../util.js';

const SOURCE = 'hotspots';
// class → colour (ColorBrewer RdBu); "ns" cells are drawn faintly so the covered area shows
export const CLASSES = [
  ['hot99', '#b2182b'],
  ['hot95', '#ef8a62'],
  ['hot90', '#fddbc7'],
  ['ns', '#8a94a6'],
  ['cold90', '#d1e5f0'],
  ['cold95', '#67a9cf'],
  ['cold99', '#2166ac'],
];

/** The class of a cell from its Gi* z-score and p-value. */
export function classOf(z, p) {
  if (p === null || p === undefined || z === null || z === undefined || p >= 0.1) return 'ns';
  const side = z > 0 ? 'hot' : 'cold';
  return `${side}${p < 0.01 ? 99 : p < 0.05 ? 95 : 90}`;
}

function resFor(zoom) {
  if (zoom < 8.5) return 6;
  if (zoom < 11) return 7;
  return 8;
}

let seq = 0;

/** Fetch and draw the hot spots of the chosen layer. */
export async function showHotspots(app) {
  const { state, map } = app;
  const slug = state.h3.slug;
  if (!slug || !state.caps || !state.caps.h3) return;
  const res = resFor(state.zoom);
  const mine = ++seq;
  state.hotspots = { slug, res, loading: true, counts: {}, error: null };
  app.renderLeft();
  let body;
  try {
    const url = `${fillPath(state.caps.h3, { layer: slug, slug })}/hotspots?res=${res}&alpha=0.1`;
    body = await getJSON(url);
  } catch (err) {
    if (mine === seq) {
      state.hotspots = { slug, res, loading: false, counts: {}, error: err.message };
      app.renderLeft();
    }
    return;
  }
  if (mine !== seq || state.view !== 'hotspots') return;
  const counts = {};
  const features = body.cells.map((cell, i) => {
    const cls = classOf(body.z[i], body.p[i]);
    counts[cls] = (counts[cls] || 0) + 1;
    const ring = cellToBoundary(cell, true);
    return { type: 'Feature', properties: { cls, z: body.z[i], p: body.p[i], value: body.values[i] }, geometry: { type: 'Polygon', coordinates: [ring] } };
  });
  draw(map, { type: 'FeatureCollection', features });
  state.hotspots = { slug, res, loading: false, counts, error: null, total: features.length };
  app.renderLeft();
}

function draw(map, data) {
  if (map.getSource(SOURCE)) {
    map.getSource(SOURCE).setData(data);
    for (const id of [`${SOURCE}-fill`, `${SOURCE}-line`]) map.setLayoutProperty(id, 'visibility', 'visible');
    return;
  }
  map.addSource(SOURCE, { type: 'geojson', data });
  const colour = ['match', ['get', 'cls'], ...CLASSES.flat(), '#8a94a6'];
  map.addLayer({ id: `${SOURCE}-fill`, type: 'fill', source: SOURCE, paint: { 'fill-color': colour, 'fill-opacity': ['case', ['==', ['get', 'cls'], 'ns'], 0.12, 0.72] } });
  map.addLayer({ id: `${SOURCE}-line`, type: 'line', source: SOURCE, paint: { 'line-color': colour, 'line-width': 0.6, 'line-opacity': 0.8 } });
}

/** Take the hot spots off the map (another mode was chosen). */
export function hideHotspots(app) {
  seq++;
  const { map } = app;
  for (const id of [`${SOURCE}-fill`, `${SOURCE}-line`]) if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', 'none');
}

/** The legend: hot/cold by confidence, with the number of cells in each class. */
export function hotspotLegend(app) {
  const h = app.state.hotspots || {};
  const box = el('div', { class: 'h3legend hs-legend', id: 'hotspot-legend' }, el('div', { class: 'small' }, `${t('hs.title')} · ${t('h3.resolution')} ${h.res ?? '—'}`));
  if (h.loading) box.append(el('div', { class: 'muted small' }, t('layer.loading')));
  if (h.error) box.append(el('div', { class: 'warn small' }, h.error));
  for (const [cls, colour] of CLASSES) {
    box.append(el('div', { class: 'hs-row', 'data-class': cls }, el('span', { class: 'hs-swatch', style: `background:${colour}${cls === 'ns' ? ';opacity:.35' : ''}` }), el('span', { class: 'small' }, t(`hs.${cls}`)), el('span', { class: 'muted small hs-n' }, fmtNumber((h.counts || {})[cls] || 0))));
  }
  box.append(el('div', { class: 'muted small' }, t('hs.explain')));
  return box;
}
