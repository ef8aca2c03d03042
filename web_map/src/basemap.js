// The basemap: province and ward boundaries drawn by maplibre itself from our vector tiles.
// It is part of the small entry bundle, so the map paints before deck.gl and the sector
// layers have even been downloaded; tiles are decoded in maplibre's worker.

export const COMMUNES = 'admin_communes';
export const PROVINCE = 'admin_province';
export const BASEMAP_SLUGS = new Set([COMMUNES, PROVINCE]);

const FILL = [38, 50, 72, 200];
const LINE = [120, 144, 180, 255];
const PROVINCE_LINE = [255, 193, 7, 255];
const HOVER = 'rgba(255,193,7,0.24)';

const css = (c, a) => `rgba(${c[0]},${c[1]},${c[2]},${(a ?? c[3] / 255).toFixed(3)})`;
const BACKGROUND = [7, 13, 26];

/**
 * A translucent colour over the (constant) background, as the opaque colour it shows: the same
 * pixels, but maplibre draws an opaque fill in its opaque pass, without blending.
 */
function overBackground(c) {
  const a = (c[3] ?? 255) / 255;
  return `rgb(${[0, 1, 2].map((i) => Math.round(c[i] * a + BACKGROUND[i] * (1 - a))).join(',')})`;
}

/** Colours of the basemap from the catalog's default_style (the built-in ones until it arrives). */
function colours(catalog) {
  const bySlug = Object.fromEntries((catalog || []).map((l) => [l.slug, l.default_style || {}]));
  const c = bySlug[COMMUNES] || {};
  const p = bySlug[PROVINCE] || {};
  return {
    fill: c.fill_color || FILL,
    line: c.line_color || LINE,
    lineWidth: c.line_width ?? 1,
    province: p.line_color || PROVINCE_LINE,
    provinceWidth: p.line_width ?? 3,
  };
}

/** The maplibre style: a dark background, the wards (fill, hover, outline) and the province outline. */
export function basemapStyle(origin) {
  const tiles = (slug) => [`${origin}/tiles/${slug}/{z}/{x}/{y}.mvt`];
  const c = colours(null);
  return {
    version: 8,
    name: 'iocmap-basemap',
    sources: {
      [COMMUNES]: { type: 'vector', tiles: tiles(COMMUNES), minzoom: 0, maxzoom: 14 },
      [PROVINCE]: { type: 'vector', tiles: tiles(PROVINCE), minzoom: 0, maxzoom: 14 },
    },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': css(BACKGROUND, 1) } },
      { id: 'communes-fill', type: 'fill', source: COMMUNES, 'source-layer': COMMUNES, paint: { 'fill-color': overBackground(c.fill), 'fill-antialias': false } },
      {
        id: 'communes-hover',
        type: 'fill',
        source: COMMUNES,
        'source-layer': COMMUNES,
        // constant 0 (not drawn at all) until a ward is hovered: see hoverWard
        paint: { 'fill-color': HOVER, 'fill-opacity': 0 },
      },
      { id: 'communes-line', type: 'line', source: COMMUNES, 'source-layer': COMMUNES, paint: { 'line-color': css(c.line), 'line-width': c.lineWidth } },
      { id: 'province-line', type: 'line', source: PROVINCE, 'source-layer': PROVINCE, paint: { 'line-color': css(c.province), 'line-width': c.provinceWidth } },
    ],
  };
}

/** Resolves (with performance.now()) once both boundary sources are loaded and a frame with them is drawn. */
export function basemapDrawn(map) {
  return new Promise((resolve) => {
    const check = () => {
      if (!map.getSource(COMMUNES) || !map.isSourceLoaded(COMMUNES) || !map.isSourceLoaded(PROVINCE)) return;
      map.off('sourcedata', check);
      // the next render draws the loaded tiles
      map.once('render', () => resolve(performance.now()));
      map.triggerRepaint();
    };
    map.on('sourcedata', check);
  });
}

const FILL_LAYERS = ['communes-fill', 'communes-hover'];
const WARD_LAYERS = ['communes-fill', 'communes-hover', 'communes-line'];

/**
 * Keep the basemap in step with the app state: visibility and opacity from the layer panel,
 * the catalog's colours, and the indicator choropleth (values joined on the ward code).
 */
export function syncBasemap(map, state) {
  if (!map || !map.getLayer('communes-fill')) return;
  const c = colours(state.catalog);
  const show = (id, on) => map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
  const tiles = state.basemapTiles !== false;
  const wardsOn = tiles && state.visible[COMMUNES] !== false;
  for (const id of WARD_LAYERS) show(id, wardsOn);
  show('province-line', tiles && state.visible[PROVINCE] !== false);
  const op = state.opacity[COMMUNES] ?? 1;
  const ch = state.choropleth;
  const fill = ch && ch.colors && Object.keys(ch.colors).length ? ['match', ['to-string', ['get', 'code']], ...Object.entries(ch.colors).flat(), ch.noData || css(c.fill)] : op >= 1 ? overBackground(c.fill) : css(c.fill);
  setPaint(map, 'communes-fill', 'fill-color', fill);
  setPaint(map, 'communes-fill', 'fill-opacity', op);
  setPaint(map, 'communes-line', 'line-color', css(c.line));
  setPaint(map, 'communes-line', 'line-opacity', op);
  setPaint(map, 'province-line', 'line-color', css(c.province));
  setPaint(map, 'province-line', 'line-opacity', state.opacity[PROVINCE] ?? 1);
}

function setPaint(map, id, prop, value) {
  const key = `${id}|${prop}`;
  const json = JSON.stringify(value);
  map.__paintCache = map.__paintCache || {};
  if (map.__paintCache[key] === json) return;
  map.__paintCache[key] = json;
  map.setPaintProperty(id, prop, value);
}

/** The ward under a screen point (map container pixels), as a GeoJSON-like feature, or null. */
export function wardAt(map, x, y) {
  if (!map || !map.getLayer('communes-fill') || map.getLayoutProperty('communes-fill', 'visibility') === 'none') return null;
  const hits = map.queryRenderedFeatures([x, y], { layers: FILL_LAYERS.slice(0, 1) });
  if (!hits.length) return null;
  const f = hits[0];
  return { type: 'Feature', id: f.id, geometry: f.geometry, properties: { ...f.properties } };
}

let hovered = null;

/** Light the ward under the pointer (feature-state, no re-tiling). */
export function hoverWard(map, feature) {
  const id = feature ? feature.id : null;
  if (hovered === id) return;
  if (hovered !== null && hovered !== undefined) map.setFeatureState({ source: COMMUNES, sourceLayer: COMMUNES, id: hovered }, { hover: false });
  hovered = id;
  const on = id !== null && id !== undefined;
  if (on) map.setFeatureState({ source: COMMUNES, sourceLayer: COMMUNES, id }, { hover: true });
  // a data-driven opacity draws every ward each frame (a full-screen pass); a constant 0 is skipped
  setPaint(map, 'communes-hover', 'fill-opacity', on ? ['case', ['boolean', ['feature-state', 'hover'], false], 1, 0] : 0);
}
