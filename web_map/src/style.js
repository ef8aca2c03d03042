// Colours and zoom rules derived from each layer's default_style in the catalog.

export const LARGE_LAYER = 20000; // above this many features a layer is fetched by viewport only
export const LARGE_MIN_ZOOM = 13;
// a small layer is loaded whole, up to this many features (a bound if its count was stale)
export const SMALL_FETCH_CAP = 25000;

const FALLBACK = [30, 136, 229, 200];

/** The style object of a catalog entry, with defaults filled in. */
export function styleOf(layer) {
  const s = layer.default_style || {};
  return {
    fill_color: s.fill_color || FALLBACK,
    line_color: s.line_color || [255, 255, 255, 200],
    line_width: s.line_width ?? 1,
    point_radius: s.point_radius ?? 6,
    color_property: s.color_property || null,
    palette: s.palette || {},
    min_zoom: s.min_zoom || 0,
  };
}

/** True for layers too big to load whole: they are fetched by viewport above a zoom. */
export function isLarge(layer) {
  return (layer.feature_count || 0) > LARGE_LAYER;
}

/** The zoom from which a layer is drawn. */
export function minZoomOf(layer) {
  const s = styleOf(layer);
  return isLarge(layer) ? Math.max(s.min_zoom, LARGE_MIN_ZOOM) : s.min_zoom;
}

/** True when the time slider shows less than the whole extent. */
export function timeActive(state) {
  const tm = state.time;
  return !!tm && (tm.from > tm.min || tm.to < tm.max);
}

/** ISO text of an instant, without milliseconds when there are none (whole hours: 2026-01-01T07:00:00Z). */
export function isoZ(ms) {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/**
 * The OGC `datetime` interval the slider asks of a time-enabled layer's tiles ('..' for an
 * end left at the extent's edge), or null when the slider shows everything or the layer's
 * tiles take no time filter. Slider ends sit on whole hours, so the server caches the tiles.
 */
export function tileDatetime(state, layer) {
  const tiles = state.tileUrls[layer.slug];
  if (!tiles || !tiles.time || !timeActive(state)) return null;
  const tm = state.time;
  const from = tm.from > tm.min ? isoZ(tm.from) : '..';
  const to = tm.to < tm.max ? isoZ(tm.to) : '..';
  return `${from}/${to}`;
}

/**
 * The tiles a layer is drawn from, or null for GeoJSON: no tile service, or a time-enabled
 * layer narrowed by the slider whose tiles take no datetime filter (a server older than the
 * `time` key of TileJSON), which then filters its loaded GeoJSON on the GPU instead.
 */
export function tilesOf(state, layer) {
  const tiles = state.useTiles ? state.tileUrls[layer.slug] : null;
  if (!tiles) return null;
  if (layer.time_field && !tiles.time && timeActive(state) && state.data[layer.slug]) return null;
  return tiles;
}

/** A layer's tile URL template, with the slider's datetime filter for a time-enabled layer. */
export function tileUrlOf(state, layer) {
  const tiles = state.tileUrls[layer.slug];
  if (!tiles) return null;
  const dt = tileDatetime(state, layer);
  if (!dt) return tiles.url;
  return `${tiles.url}${tiles.url.includes('?') ? '&' : '?'}${tiles.time.parameter || 'datetime'}=${dt}`;
}

/** Accessor (feature → RGBA) honouring color_property + palette. */
export function fillAccessor(layer) {
  const s = styleOf(layer);
  if (!s.color_property || !Object.keys(s.palette).length) return s.fill_color;
  const prop = s.color_property;
  return (f) => {
    const v = f && f.properties ? f.properties[prop] : undefined;
    return s.palette[v] || s.fill_color;
  };
}

/** A representative swatch colour for the layer panel. */
export function swatch(layer) {
  const s = styleOf(layer);
  const c = s.fill_color[3] > 10 ? s.fill_color : s.line_color;
  return rgba(c);
}

/** CSS rgba() of a deck colour array. */
export function rgba(c, alpha) {
  const a = alpha ?? (c.length > 3 ? c[3] / 255 : 1);
  return `rgba(${c[0]},${c[1]},${c[2]},${a.toFixed(2)})`;
}

export function isPolygonal(layer) {
  return /polygon/i.test(layer.geometry_type || '');
}

export function isPoint(layer) {
  return /point/i.test(layer.geometry_type || '');
}

// Sequential colour ramp (dark blue → cyan → yellow → red) for H3 and KPIs.
export const RAMP = [
  [13, 71, 161],
  [0, 151, 167],
  [0, 229, 255],
  [255, 235, 59],
  [255, 152, 0],
  [229, 57, 53],
];

/** Colour of t in [0,1] on the ramp. */
export function rampColor(t, alpha = 210) {
  const x = Math.max(0, Math.min(1, t)) * (RAMP.length - 1);
  const i = Math.min(Math.floor(x), RAMP.length - 2);
  const f = x - i;
  const a = RAMP[i];
  const b = RAMP[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f, alpha].map(Math.round);
}
