// Dense polygon and line layers (the million land parcels above all) drawn by maplibre itself
// from our vector tiles, in the map's own WebGL context: no second canvas to composite, tiles
// decoded and triangulated once in maplibre's workers, and only a fill (plus, close in, an
// outline) per layer. deck.gl keeps the points, cones, H3 and overlays. Picking goes through
// maplibre's queryRenderedFeatures into the same tooltip and details panel.

import { minZoomOf, styleOf, tileUrlOf, tilesOf } from './style.js';

// Source maxzoom: deeper zooms reuse (overzoom) these tiles instead of asking for more.
const MAX_TILE_ZOOM = 15;
// Below this zoom dense polygons are a few pixels wide: their outlines would only be noise,
// and the fill alone is half the rasterising.
const OUTLINE_MIN_ZOOM = 15.5;
// Layers drawn natively sit above the wards and below the province outline.
const BEFORE = 'province-line';
const HOVER_SOURCE = 'native-hover';
// Dense polygon layers (more features than this, not time-enabled) are drawn from the server's
// PNG overview tiles below RASTER_UNTIL_ZOOM: one textured quad per tile instead of thousands
// of few-pixel triangles. From that zoom on, the vector fill (and picking) takes over.
const DENSE_FEATURES = 100_000;
const RASTER_UNTIL_ZOOM = 15;
const RASTER_MAX_TILE_ZOOM = RASTER_UNTIL_ZOOM - 1;

const css = (c, alpha) => `rgba(${c[0]},${c[1]},${c[2]},${(alpha ?? (c.length > 3 ? c[3] / 255 : 1)).toFixed(3)})`;
const src = (slug) => `native-${slug}`;
const fillId = (slug) => `native-${slug}-fill`;
const lineId = (slug) => `native-${slug}-line`;
const rasterId = (slug) => `native-${slug}-raster`;

/** True when a polygon layer is dense enough to be drawn from PNG overview tiles at low zooms. */
export function isDense(layer) {
  // ?raster=0 keeps the vector tiles at every zoom (the web map bench compares both)
  if (typeof location !== 'undefined' && new URLSearchParams(location.search).get('raster') === '0') return false;
  return /polygon/i.test(layer.geometry_type || '') && !layer.time_field && (layer.feature_count ?? 0) > DENSE_FEATURES;
}

/** The PNG overview tile template of a layer, from its vector one (same z/x/y, no query). */
function rasterTemplate(template) {
  return template.replace(/\.mvt(\?.*)?$/, '.png');
}

/** True when the app draws this layer with maplibre rather than deck.gl. */
export function isNative(state, layer) {
  if (state.renderer === 'deck' || !state.useTiles || !/polygon|line/i.test(layer.geometry_type || '')) return false;
  // a time-enabled layer stays native while the slider narrows: its tile URL carries datetime=
  return !!tilesOf(state, layer);
}

/** maplibre colour expression of a layer's fill: its palette on color_property, or one colour. */
function fillColour(layer) {
  const s = styleOf(layer);
  const entries = Object.entries(s.palette || {});
  if (!s.color_property || !entries.length) return css(s.fill_color);
  return ['match', ['to-string', ['get', s.color_property]], ...entries.flatMap(([k, c]) => [k, css(c)]), css(s.fill_color)];
}

/** Absolute tile template (maplibre fetches tiles in its worker, which has no base URL). */
function tileTemplate(url) {
  return /^https?:/.test(url) ? url : `${location.origin}${url}`;
}

function addLayerOnce(map, spec) {
  if (!map.getLayer(spec.id)) map.addLayer(spec, map.getLayer(BEFORE) ? BEFORE : undefined);
}

/**
 * Create the sources and style layers of a native layer (hidden until syncNative shows it), or
 * point its existing source at the slider's current time window.
 */
function ensure(map, state, layer) {
  const slug = layer.slug;
  const existing = map.getSource(src(slug));
  const template = tileTemplate(tileUrlOf(state, layer));
  map.__nativeTiles = map.__nativeTiles || {};
  if (existing) {
    // the time slider moved: same source, tiles of the new window
    if (map.__nativeTiles[slug] !== template) {
      map.__nativeTiles[slug] = template;
      existing.setTiles([template]);
    }
    return;
  }
  map.__nativeTiles[slug] = template;
  const tiles = state.tileUrls[slug];
  map.addSource(src(slug), {
    type: 'vector',
    tiles: [template],
    minzoom: Math.min(tiles.minzoom ?? 0, MAX_TILE_ZOOM),
    maxzoom: Math.min(tiles.maxzoom ?? 14, MAX_TILE_ZOOM),
  });
  const s = styleOf(layer);
  const polygon = /polygon/i.test(layer.geometry_type || '');
  const dense = isDense(layer);
  const base = { source: src(slug), 'source-layer': slug, layout: { visibility: 'none' }, minzoom: minZoomOf(layer) };
  if (dense) {
    const bbox = Array.isArray(layer.bbox) && layer.bbox.length === 4 ? { bounds: layer.bbox } : {};
    map.addSource(rasterId(slug), {
      type: 'raster',
      tiles: [rasterTemplate(template)],
      tileSize: 512,
      minzoom: Math.min(minZoomOf(layer), RASTER_MAX_TILE_ZOOM),
      maxzoom: RASTER_MAX_TILE_ZOOM,
      ...bbox,
    });
    addLayerOnce(map, {
      id: rasterId(slug),
      type: 'raster',
      source: rasterId(slug),
      layout: { visibility: 'none' },
      minzoom: minZoomOf(layer),
      maxzoom: RASTER_UNTIL_ZOOM,
      paint: { 'raster-fade-duration': 0 },
    });
    // the vector tiles are fetched only from the zoom where a layer of theirs shows
    base.minzoom = Math.max(minZoomOf(layer), RASTER_UNTIL_ZOOM);
  }
  if (polygon) {
    // no fill-antialias: it draws every polygon's outline a second time
    addLayerOnce(map, { ...base, id: fillId(slug), type: 'fill', paint: { 'fill-color': fillColour(layer), 'fill-antialias': false } });
    addLayerOnce(map, {
      ...base,
      id: lineId(slug),
      type: 'line',
      minzoom: Math.max(base.minzoom, OUTLINE_MIN_ZOOM),
      paint: { 'line-color': css(s.line_color), 'line-width': Math.max(0.5, s.line_width) },
    });
  } else {
    addLayerOnce(map, { ...base, id: lineId(slug), type: 'line', paint: { 'line-color': fillColour(layer), 'line-width': Math.max(1, s.line_width) } });
  }
}

function setVisible(map, id, on) {
  if (!map.getLayer(id)) return;
  const want = on ? 'visible' : 'none';
  if (map.getLayoutProperty(id, 'visibility') !== want) map.setLayoutProperty(id, 'visibility', want);
}

function setPaint(map, id, prop, value) {
  if (!map.getLayer(id)) return;
  const key = `${id}|${prop}`;
  const json = JSON.stringify(value);
  map.__nativePaint = map.__nativePaint || {};
  if (map.__nativePaint[key] === json) return;
  map.__nativePaint[key] = json;
  map.setPaintProperty(id, prop, value);
}

/** Keep the native layers in step with the state: which exist, which show, their opacity. */
export function syncNative(map, state) {
  if (!map || !map.getLayer(BEFORE)) return;
  const analyticOn = state.view !== 'vector';
  for (const layer of state.catalog) {
    const slug = layer.slug;
    const native = isNative(state, layer);
    if (native) ensure(map, state, layer);
    if (!map.getSource(src(slug))) continue;
    const on = native && !!state.visible[slug] && !(analyticOn && slug === state.h3.slug);
    const op = state.opacity[slug] ?? 1;
    setVisible(map, fillId(slug), on);
    setVisible(map, lineId(slug), on);
    setVisible(map, rasterId(slug), on);
    setPaint(map, rasterId(slug), 'raster-opacity', op);
    setPaint(map, fillId(slug), 'fill-opacity', op);
    setPaint(map, lineId(slug), 'line-opacity', op);
  }
  syncHover(map, state);
}

/** The ids of the visible native fill/line layers, topmost first (for picking). */
function pickableIds(map, state) {
  const ids = [];
  for (const layer of state.catalog) {
    for (const id of [fillId(layer.slug), lineId(layer.slug)]) {
      if (map.getLayer(id) && map.getLayoutProperty(id, 'visibility') === 'visible') ids.push(id);
    }
  }
  return ids;
}

/**
 * The native feature under a screen point (map container pixels), as a deck-like pick:
 * { object, layer: { id: 'layer-<slug>' } } so the tooltip and details panel take it as is.
 */
export function nativePick(map, state, x, y) {
  if (!map || !state.catalog.length) return null;
  const layers = pickableIds(map, state);
  if (!layers.length) return null;
  // the feature right under the point (topmost first), else within a few pixels: parcels are
  // small and lines thin
  let hits = map.queryRenderedFeatures([x, y], { layers });
  if (!hits.length) {
    hits = map.queryRenderedFeatures(
      [
        [x - 2, y - 2],
        [x + 2, y + 2],
      ],
      { layers },
    );
  }
  if (!hits.length) return null;
  const f = hits[0];
  const slug = f.layer.id.replace(/^native-/, '').replace(/-(fill|line)$/, '');
  return {
    object: { type: 'Feature', id: f.id, geometry: f.geometry, properties: { ...f.properties } },
    layer: { id: `layer-${slug}` },
    native: true,
  };
}

let hovered = null;

/** Outline the hovered native feature (a one-feature GeoJSON source: no re-tiling). */
export function hoverNative(map, pick) {
  const feature = pick && pick.native ? pick.object : null;
  const key = feature ? `${pick.layer.id}|${feature.id}` : null;
  if (key === hovered) return;
  hovered = key;
  const data = { type: 'FeatureCollection', features: feature ? [feature] : [] };
  const source = map.getSource(HOVER_SOURCE);
  if (source) source.setData(data);
  else if (feature) {
    map.addSource(HOVER_SOURCE, { type: 'geojson', data });
    map.addLayer({ id: 'native-hover-line', type: 'line', source: HOVER_SOURCE, paint: { 'line-color': 'rgba(255,255,255,0.9)', 'line-width': 2 } });
  }
}

function syncHover(map, state) {
  // hide the hover outline with its layer
  if (hovered && map.getLayer('native-hover-line')) {
    const slug = hovered.split('|')[0].slice(6);
    const on = map.getLayer(fillId(slug)) ? map.getLayoutProperty(fillId(slug), 'visibility') === 'visible' : false;
    if (!on || !state.visible[slug]) hoverNative(map, null);
  }
}
