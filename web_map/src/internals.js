/**
 * The private deck.gl and maplibre-gl internals the map relies on, in one place.
 *
 * Each use says which package version it was checked against (package-lock pins them).
 * tests/internals.test.mjs (npm test, run by scripts/test) fails when one of them is gone
 * from the installed packages, so an upgrade cannot drop one silently.
 */

/** @deck.gl/mapbox 9.4.0: MapboxOverlay keeps its Deck in `_deck` (set in onAdd). */
export function overlayDeck(overlay) {
  return (overlay && overlay._deck) || null;
}

/**
 * @deck.gl/core 9.4.0: Deck#layerManager, a LayerManager (getLayers, needsUpdate,
 * updateLayers, needsRedraw); null before deck has drawn.
 */
export function layerManager(overlay) {
  const deck = overlayDeck(overlay);
  return (deck && deck.layerManager) || null;
}

/** The layers deck holds now (composite layers and their sublayers), [] before the first draw. */
export function deckLayers(overlay) {
  const manager = layerManager(overlay);
  return manager ? manager.getLayers() : [];
}

/**
 * @deck.gl/core 9.4.0: Layer#activateViewport(viewport), where a composite (tile) layer picks
 * the tiles of a viewport. Without it deck redraws as before, one frame later.
 */
export function activateViewport(layer, viewport) {
  if (layer.isComposite && typeof layer.activateViewport === 'function') layer.activateViewport(viewport);
}

/** @deck.gl/core 9.4.0: Deck#_onPointerMove(event) replays a hover at a canvas pixel. */
export function replayPointerMove(overlay, x, y) {
  overlayDeck(overlay)?._onPointerMove({ type: 'pointermove', offsetCenter: { x, y } });
}

/**
 * maplibre-gl 6.17.0: Map#_resizeInternal(constrainTransform) resizes the canvas without
 * resize()'s stop of a running camera animation and its own movestart/moveend.
 */
export function canResizeQuietly(map) {
  return typeof map._resizeInternal === 'function';
}

/** maplibre-gl 6.17.0: Map#_overridePixelRatio, the ratio set by the page (undefined: device's). */
export function overriddenPixelRatio(map) {
  return map._overridePixelRatio;
}

/** Set the drawing pixel ratio (undefined: the device's) and resize, quietly (see above). */
export function resizeQuietly(map, pixelRatio) {
  map._overridePixelRatio = pixelRatio;
  map._resizeInternal(false);
}

/** maplibre-gl 6.17.0: Map#painter.context.gl, the map's WebGL context (null before it exists). */
export function glContext(map) {
  return (map.painter && map.painter.context && map.painter.context.gl) || null;
}

/**
 * What tests/internals.test.mjs looks for in the installed packages: the source that
 * defines each internal used above.
 */
export const INTERNALS = [
  { name: 'MapboxOverlay#_deck', pkg: '@deck.gl/mapbox', checked: '9.4.0', file: 'dist/mapbox-overlay.js', pattern: 'this._deck = ' },
  { name: 'Deck#layerManager', pkg: '@deck.gl/core', checked: '9.4.0', file: 'dist/lib/deck.js', pattern: 'this.layerManager = new LayerManager(' },
  { name: 'LayerManager#getLayers', pkg: '@deck.gl/core', checked: '9.4.0', file: 'dist/lib/layer-manager.js', pattern: 'getLayers(' },
  { name: 'LayerManager#needsUpdate', pkg: '@deck.gl/core', checked: '9.4.0', file: 'dist/lib/layer-manager.js', pattern: 'needsUpdate() {' },
  { name: 'LayerManager#updateLayers', pkg: '@deck.gl/core', checked: '9.4.0', file: 'dist/lib/layer-manager.js', pattern: 'updateLayers() {' },
  { name: 'LayerManager#needsRedraw', pkg: '@deck.gl/core', checked: '9.4.0', file: 'dist/lib/layer-manager.js', pattern: 'needsRedraw(opts' },
  { name: 'Layer#activateViewport', pkg: '@deck.gl/core', checked: '9.4.0', file: 'dist/lib/layer.js', pattern: 'activateViewport(viewport) {' },
  { name: 'Deck#_onPointerMove', pkg: '@deck.gl/core', checked: '9.4.0', file: 'dist/lib/deck.js', pattern: 'this._onPointerMove = (event) =>' },
  { name: 'Map#_resizeInternal', pkg: 'maplibre-gl', checked: '6.17.0', file: 'dist/maplibre-gl-dev.mjs', pattern: '_resizeInternal(constrainTransform' },
  { name: 'Map#painter', pkg: 'maplibre-gl', checked: '6.17.0', file: 'dist/maplibre-gl-dev.mjs', pattern: 'this.painter = new Painter(gl)' },
  { name: 'Context#gl', pkg: 'maplibre-gl', checked: '6.17.0', file: 'dist/maplibre-gl-dev.mjs', pattern: 'this.gl = gl;' },
  { name: 'Map#_overridePixelRatio', pkg: 'maplibre-gl', checked: '6.17.0', file: 'dist/maplibre-gl-dev.mjs', pattern: 'this._overridePixelRatio' },
];
