// 3D terrain view (issue 20): deck.gl's TerrainLayer over the DEM's terrain-RGB tiles, draped
// with its coloured tiles; the map tilts and turns so leaders can look along the valleys.

import { deckExtras, loadDeckExtras } from '../lazyDeck.js';
import { rasterOfRole } from './rasterLayers.js';

const EXAGGERATION = 1.5;

/** Whether a DEM is there to draw. */
export function terrainAvailable(app) {
  return !!rasterOfRole(app.state, 'elevation');
}

/** Turn the 3D view on (tilted, rotatable) or off (flat, north up). */
export function setTerrain(app, on) {
  app.state.terrain3d = on;
  const { map } = app;
  if (on) {
    map.dragRotate.enable();
    map.touchZoomRotate.enableRotation();
    map.easeTo({ pitch: 55, bearing: -20, duration: 600 });
  } else {
    map.easeTo({ pitch: 0, bearing: 0, duration: 400 });
    map.dragRotate.disable();
    map.touchZoomRotate.disableRotation();
  }
  document.body.dataset.terrain = on ? '1' : '0';
  app.redraw();
  app.renderLeft();
}

/** Tiles outside the DEM come back as 204: no data, not an error. */
async function fetchOrNull(url, { layer, loaders, loadOptions, signal }) {
  const res = await fetch(url, { signal });
  if (res.status === 204 || !res.ok) return null;
  const { load } = await loadDeckExtras();
  // as deck's own fetch: the layer's loaders (TerrainLoader) unless the call names others
  return load(res, loaders || layer.props.loaders, loadOptions || layer.getLoadOptions());
}

/** The TerrainLayer when the 3D view is on. */
export function terrainLayers(state) {
  if (!state.terrain3d) return [];
  const dem = rasterOfRole(state, 'elevation');
  if (!dem) return [];
  const [lo, hi] = dem.rescale || [0, 2200];
  const s = EXAGGERATION;
  const X = deckExtras();
  if (!X) return [];
  return [
    new X.TerrainLayer({
      id: 'terrain-3d',
      minZoom: 0,
      maxZoom: 13,
      extent: dem.bounds,
      strategy: 'no-overlap',
      elevationDecoder: { rScaler: 6553.6 * s, gScaler: 25.6 * s, bScaler: 0.1 * s, offset: -10000 * s },
      elevationData: `/tiles/${dem.slug}/terrain/{z}/{x}/{y}.png`,
      texture: `/tiles/${dem.slug}/{z}/{x}/{y}.png?colormap=terrain&rescale=${lo},${hi}`,
      meshMaxError: 6,
      color: [120, 140, 120],
      fetch: fetchOrNull,
      // no worker: the bundle ships no loaders.gl worker scripts (no CDN), so meshes are
      // built on the main thread (a 256-px tile is a few milliseconds)
      loaders: [X.TerrainLoader],
      loadOptions: { worker: false },
    }),
  ];
}
