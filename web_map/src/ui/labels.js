// Place names on the map, drawn by deck.gl's TextLayer (its glyph atlas is rendered from the
// system's fonts in the browser: no glyph server, no CDN): commune and ward names from zoom 8,
// thinned by collision (larger population wins), and names of point features from zoom 14.

import { TextLayer } from '@deck.gl/layers';
import { CollisionFilterExtension } from '@deck.gl/extensions';

import { lang } from '../i18n.js';
import { isPoint } from '../style.js';

const COMMUNE_MIN_ZOOM = 8;
const POINT_MIN_ZOOM = 14;
const FONT = "system-ui, 'Noto Sans', 'DejaVu Sans', Arial, sans-serif";
const collision = new CollisionFilterExtension();
const cache = new WeakMap();

/** Area-weighted centroid of a polygon's largest ring (a fine label point for a ward). */
export function labelPoint(geom) {
  const polys = geom.type === 'MultiPolygon' ? geom.coordinates : geom.type === 'Polygon' ? [geom.coordinates] : [];
  let best = null;
  let bestArea = -1;
  for (const poly of polys) {
    const ring = poly[0];
    let a = 0;
    let cx = 0;
    let cy = 0;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const f = ring[j][0] * ring[i][1] - ring[i][0] * ring[j][1];
      a += f;
      cx += (ring[j][0] + ring[i][0]) * f;
      cy += (ring[j][1] + ring[i][1]) * f;
    }
    if (Math.abs(a) > bestArea && a !== 0) {
      bestArea = Math.abs(a);
      best = [cx / (3 * a), cy / (3 * a)];
    }
  }
  return best;
}

function communeLabels(features) {
  if (cache.has(features)) return cache.get(features);
  const out = [];
  for (const f of features) {
    const p = labelPoint(f.geometry || {});
    if (p && f.properties && f.properties.name) out.push({ position: p, text: f.properties.name, rank: Number(f.properties.population) || 0, ward: f.properties.kind === 'Phường' });
  }
  cache.set(features, out);
  return out;
}

/** The deck layers of the labels for the current state and zoom. */
export function labelLayers(app) {
  const { state } = app;
  if (state.page !== 'map' || app.labelsOff) return [];
  const light = document.documentElement.dataset.theme === 'light';
  const ink = light ? [20, 28, 44, 255] : [235, 242, 252, 255];
  const halo = light ? [255, 255, 255, 230] : [7, 13, 26, 230];
  const out = [];
  const wards = state.data.admin_communes;
  if (state.visible.admin_communes !== false && wards && wards.length && state.zoom >= COMMUNE_MIN_ZOOM) {
    out.push(
      new TextLayer({
        id: 'labels-communes',
        data: communeLabels(wards),
        getPosition: (d) => d.position,
        getText: (d) => d.text,
        getSize: (d) => (d.ward ? 13 : 12),
        getColor: ink,
        fontFamily: FONT,
        fontWeight: 600,
        characterSet: 'auto',
        fontSettings: { sdf: true, fontSize: 48, buffer: 6 },
        outlineWidth: 4,
        outlineColor: halo,
        sizeUnits: 'pixels',
        getTextAnchor: 'middle',
        getAlignmentBaseline: 'center',
        pickable: false,
        extensions: [collision],
        collisionEnabled: true,
        collisionGroup: 'labels',
        getCollisionPriority: (d) => Math.min(1000, Math.log10(1 + d.rank) * 100),
        collisionTestProps: { sizeScale: 1.3 },
        updateTriggers: { getColor: [light], outlineColor: [light] },
        parameters: { depthCompare: 'always' },
      }),
    );
  }
  if (state.zoom >= POINT_MIN_ZOOM) {
    for (const layer of state.catalog) {
      if (!isPoint(layer) || !state.visible[layer.slug] || layer.slug === 'field_reports') continue;
      const data = (state.data[layer.slug] || []).filter((f) => f.properties && (f.properties.name || f.properties.camera_id));
      if (!data.length) continue;
      out.push(
        new TextLayer({
          id: `labels-${layer.slug}`,
          data,
          getPosition: (f) => f.geometry.coordinates,
          getText: (f) => (layer.slug === 'cameras' ? f.properties.camera_id : f.properties.name),
          getSize: 12,
          getColor: ink,
          fontFamily: FONT,
          characterSet: 'auto',
          fontSettings: { sdf: true, fontSize: 48, buffer: 6 },
          outlineWidth: 4,
          outlineColor: halo,
          getPixelOffset: [0, -16],
          getTextAnchor: 'middle',
          getAlignmentBaseline: 'bottom',
          pickable: false,
          extensions: [collision],
          collisionEnabled: true,
          collisionGroup: 'labels',
          getCollisionPriority: 1000,
          updateTriggers: { getColor: [light], outlineColor: [light], getText: [lang()] },
        }),
      );
    }
  }
  return out;
}
