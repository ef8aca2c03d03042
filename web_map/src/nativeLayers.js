// Sector layers served as vector tiles drawn by maplibre itself, in the map's own WebGL context:
// the dense polygon layers (the million land parcels above all) as a fill (plus, close in, an
// outline), lines as lines and points as circles. Tiles are decoded and triangulated once in
// maplibre's workers, and there is no second canvas to draw, read back and composite each
// frame (on a software renderer deck's canvas of a few hundred points cost a quarter of every
// frame); the camera cones come along with the camera points. deck.gl keeps H3/heatmap,
// selection and query overlays, and layers without tiles. Picking goes through maplibre's
// queryRenderedFeatures into the same tooltip and details panel.

import { getJSON } from './api.js';
import { pointInGeometry, viewCone } from './geo.js';
import { cameraStatus } from './cameraStatus.js';
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
// A click on a dense layer's PNG overview asks the API for the features within this many pixels
// of the point (then keeps the polygon containing it): a few parcels, never a page of them.
const DENSE_PICK_PX = 1;
const DENSE_PICK_LIMIT = 100;

const css = (c, alpha) => `rgba(${c[0]},${c[1]},${c[2]},${(alpha ?? (c.length > 3 ? c[3] / 255 : 1)).toFixed(3)})`;
const src = (slug) => `native-${slug}`;
const fillId = (slug) => `native-${slug}-fill`;
const lineId = (slug) => `native-${slug}-line`;
const rasterId = (slug) => `native-${slug}-raster`;
const circleId = (slug) => `native-${slug}-circle`;
const isPoint = (layer) => /point/i.test(layer.geometry_type || '');
// deck.gl's point look, kept: radius scaled by zoom (half size at province scale, 1.3x from
// city zoom on; at least 2 px) and a thin dark outline
const POINT_STROKE = 'rgba(10,16,32,0.863)';
// The cameras' view cones, under their points when maplibre draws those (deck's look: cyan,
// grey for a camera that is down), from the loaded cameras with their live status.
const CONES = 'native-camera-cones';
const CAMERAS = 'cameras';
const CAMERA_DOWN = new Set(['offline', 'stale', 'stopped', 'error']);

/** True when a polygon layer is dense enough to be drawn from PNG overview tiles at low zooms. */
export function isDense(layer) {
  if (!/polygon/i.test(layer.geometry_type || '') || layer.time_field) return false;
  // ?raster=0 keeps the vector tiles at every zoom (the web map bench compares both); ?raster=1
  // takes the overview tiles whatever the size (the browser tests' demo has 3,000 parcels)
  const param = typeof location !== 'undefined' ? new URLSearchParams(location.search).get('raster') : null;
  if (param === '0' || param === '1') return param === '1';
  return (layer.feature_count ?? 0) > DENSE_FEATURES;
}

/**
 * The dense layers shown as PNG overview tiles at the map's zoom (below RASTER_UNTIL_ZOOM, where
 * a feature is a few pixels and cannot be picked from tiles), topmost first.
 */
export function denseRasterLayers(map, state) {
  if (!map || map.getZoom() >= RASTER_UNTIL_ZOOM) return [];
  const z = map.getZoom();
  return state.catalog
    .filter((l) => map.getLayer(rasterId(l.slug)) && z >= minZoomOf(l) && map.getLayoutProperty(rasterId(l.slug), 'visibility') === 'visible')
    .reverse();
}

/**
 * The feature of a dense layer under a point where it is drawn from its PNG overview: the
 * features API is asked for those within a pixel or so of the point, and the polygon containing
 * it is the one. A deck-like pick (as nativePick), or null where there is none (a gap between
 * parcels), so the caller falls back to the ward.
 */
export async function pickDense(map, layers, lngLat, signal) {
  const [lng, lat] = lngLat;
  const p = map.project([lng, lat]);
  const sw = map.unproject([p.x - DENSE_PICK_PX, p.y + DENSE_PICK_PX]);
  const ne = map.unproject([p.x + DENSE_PICK_PX, p.y - DENSE_PICK_PX]);
  const bbox = [sw.lng, sw.lat, ne.lng, ne.lat].map((v) => v.toFixed(7)).join(',');
  for (const layer of layers) {
    const page = await getJSON(`/api/layers/${encodeURIComponent(layer.slug)}/features?bbox=${bbox}&limit=${DENSE_PICK_LIMIT}`, { signal });
    const hit = (page.features || []).find((f) => pointInGeometry([lng, lat], f.geometry));
    if (hit) {
      return {
        object: { type: 'Feature', id: hit.id, geometry: hit.geometry, properties: { ...(hit.properties || {}) } },
        layer: { id: `layer-${layer.slug}` },
        native: true,
      };
    }
  }
  return null;
}

/** The PNG overview tile template of a layer, from its vector one (same z/x/y, no query). */
function rasterTemplate(template) {
  return template.replace(/\.mvt(\?.*)?$/, '.png');
}

/** True when the app draws this layer with maplibre rather than deck.gl. */
export function isNative(state, layer) {
  if (state.renderer === 'deck' || !state.useTiles || !/polygon|line|point/i.test(layer.geometry_type || '')) return false;
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

function addLayerOnce(map, spec, onTop = false) {
  if (!map.getLayer(spec.id)) map.addLayer(spec, !onTop && map.getLayer(BEFORE) ? BEFORE : undefined);
}

/** maplibre radius expression of a point layer: deck's pointRadiusScale, (zoom - 5) / 7 in [0.5, 1.3]. */
function pointRadius(layer) {
  const r = styleOf(layer).point_radius;
  return ['interpolate', ['linear'], ['zoom'], 8.5, Math.max(2, r * 0.5), 14.1, Math.max(2, r * 1.3)];
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
  if (isPoint(layer)) {
    // points sit above every polygon and line, as deck's overlay did
    addLayerOnce(
      map,
      {
        ...base,
        id: circleId(slug),
        type: 'circle',
        paint: { 'circle-color': fillColour(layer), 'circle-radius': pointRadius(layer), 'circle-stroke-color': POINT_STROKE, 'circle-stroke-width': 1 },
      },
      true,
    );
  } else if (polygon) {
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

/**
 * The camera cones of a camera layer drawn natively: a GeoJSON source rebuilt only when the
 * cameras (or their live status) change, a fill and an outline just under the camera points.
 */
function syncCones(map, state, on, opacity, minzoom) {
  const cams = state.data[CAMERAS];
  if (!cams && !map.getSource(CONES)) return;
  const version = `${state.dataVersion[CAMERAS] || 0}|${cams ? cams.length : 0}`;
  const data = () => ({
    type: 'FeatureCollection',
    features: (cams || [])
      .filter((f) => f.geometry && f.geometry.type === 'Point')
      .map((f) => {
        const p = f.properties || {};
        return {
          type: 'Feature',
          properties: { down: CAMERA_DOWN.has(cameraStatus(state, p)) },
          geometry: { type: 'Polygon', coordinates: [viewCone(f.geometry.coordinates, p.heading_deg, p.fov_deg, p.range_m)] },
        };
      }),
  });
  if (!map.getSource(CONES)) {
    map.addSource(CONES, { type: 'geojson', data: data() });
    const before = map.getLayer(circleId(CAMERAS)) ? circleId(CAMERAS) : undefined;
    map.addLayer(
      { id: `${CONES}-fill`, type: 'fill', source: CONES, minzoom, layout: { visibility: 'none' }, paint: { 'fill-color': ['case', ['get', 'down'], 'rgba(158,158,158,0.157)', 'rgba(0,229,255,0.18)'], 'fill-antialias': false } },
      before,
    );
    map.addLayer({ id: `${CONES}-line`, type: 'line', source: CONES, minzoom, layout: { visibility: 'none' }, paint: { 'line-color': 'rgba(0,229,255,0.588)', 'line-width': 1 } }, before);
  } else if (map.__conesVersion !== version) {
    map.getSource(CONES).setData(data());
  }
  map.__conesVersion = version;
  for (const id of [`${CONES}-fill`, `${CONES}-line`]) setVisible(map, id, on);
  setPaint(map, `${CONES}-fill`, 'fill-opacity', opacity);
  setPaint(map, `${CONES}-line`, 'line-opacity', opacity);
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
    setVisible(map, circleId(slug), on);
    setPaint(map, rasterId(slug), 'raster-opacity', op);
    setPaint(map, circleId(slug), 'circle-opacity', op);
    setPaint(map, circleId(slug), 'circle-stroke-opacity', op);
    setPaint(map, fillId(slug), 'fill-opacity', op);
    setPaint(map, lineId(slug), 'line-opacity', op);
    if (slug === CAMERAS) syncCones(map, state, on, op, minZoomOf(layer));
  }
  syncHover(map, state);
}

/** The ids of the visible native fill/line layers, topmost first (for picking). */
function pickableIds(map, state) {
  const ids = [];
  for (const layer of state.catalog) {
    for (const id of [circleId(layer.slug), fillId(layer.slug), lineId(layer.slug)]) {
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
  const slug = f.layer.id.replace(/^native-/, '').replace(/-(fill|line|circle)$/, '');
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
    // a hovered point: a white ring around it (a circle layer would ring every polygon vertex)
    map.addLayer({
      id: 'native-hover-circle',
      type: 'circle',
      source: HOVER_SOURCE,
      filter: ['==', ['geometry-type'], 'Point'],
      paint: { 'circle-color': 'rgba(255,255,255,0.35)', 'circle-radius': 9, 'circle-stroke-color': 'rgba(255,255,255,0.95)', 'circle-stroke-width': 2 },
    });
  }
}

function syncHover(map, state) {
  // hide the hover outline with its layer
  if (hovered && map.getLayer('native-hover-line')) {
    const slug = hovered.split('|')[0].slice(6);
    const on = [circleId(slug), fillId(slug), lineId(slug)].some((id) => map.getLayer(id) && map.getLayoutProperty(id, 'visibility') === 'visible');
    if (!on || !state.visible[slug]) hoverNative(map, null);
  }
}
