// Place names on the map as page text over the canvas (system fonts, any Vietnamese letter; no
// glyph server and no WebGL shader to compile): commune and ward names from zoom 8.8, names of
// point features from zoom 14. Collisions are settled whenever the map stops (larger population
// first, point names over ward names at high zoom); while it moves the kept labels follow.

import { isPoint } from '../style.js';

// from one step in from the whole province (at the province view 130 names only crowd the wards)
const COMMUNE_MIN_ZOOM = 8.8;
const POINT_MIN_ZOOM = 14;
const MAX_POINT_LABELS = 400;
const PAD = 3;
const pointCache = new WeakMap();
const communeCache = new WeakMap();
let measureCtx = null;

// the placement each label node shows
const labelOf = new WeakMap();

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
    if (a !== 0 && Math.abs(a) > bestArea) {
      bestArea = Math.abs(a);
      best = [cx / (3 * a), cy / (3 * a)];
    }
  }
  return best;
}

function textWidth(text, px, weight) {
  measureCtx = measureCtx || document.createElement('canvas').getContext('2d');
  measureCtx.font = `${weight} ${px}px system-ui, 'Noto Sans', 'DejaVu Sans', Arial, sans-serif`;
  return measureCtx.measureText(text).width;
}

function communeLabels(features) {
  if (!communeCache.has(features)) {
    const out = [];
    for (const f of features) {
      const p = labelPoint(f.geometry || {});
      if (p && f.properties && f.properties.name) out.push({ lonlat: p, text: f.properties.name, rank: Number(f.properties.population) || 0, kind: 'commune', size: 13, weight: 600 });
    }
    communeCache.set(features, out);
  }
  return communeCache.get(features);
}

function pointLabels(slug, data) {
  if (!pointCache.has(data)) {
    const out = [];
    for (const f of data) {
      const p = f.properties || {};
      const text = slug === 'cameras' ? p.camera_id : p.name;
      if (text && f.geometry && f.geometry.type === 'Point') out.push({ lonlat: f.geometry.coordinates, text: String(text), rank: 0, kind: 'point', size: 12, weight: 500 });
    }
    pointCache.set(data, out);
  }
  return pointCache.get(data);
}

function layerEl(map) {
  let box = document.getElementById('map-labels');
  if (!box) {
    box = document.createElement('div');
    box.id = 'map-labels';
    box.className = 'map-labels';
    box.setAttribute('aria-hidden', 'true');
    map.getCanvasContainer().append(box);
  }
  return box;
}

/** The labels that fit, for the current view: [{lonlat, text, kind, size, weight}]. */
export function placeLabels(app) {
  const { state, map } = app;
  if (state.page !== 'map' || app.labelsOff) return [];
  const zoom = map.getZoom();
  const canvas = map.getCanvas();
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  const candidates = [];
  const wards = state.data.admin_communes;
  if (state.visible.admin_communes !== false && wards && wards.length && zoom >= COMMUNE_MIN_ZOOM) {
    for (const l of communeLabels(wards)) candidates.push({ ...l, prio: 1 + Math.log10(1 + l.rank) });
  }
  if (zoom >= POINT_MIN_ZOOM) {
    const b = map.getBounds();
    let n = 0;
    for (const layer of state.catalog) {
      if (!isPoint(layer) || !state.visible[layer.slug] || layer.slug === 'field_reports') continue;
      for (const l of pointLabels(layer.slug, state.data[layer.slug] || [])) {
        if (n >= MAX_POINT_LABELS) break;
        if (!b.contains(l.lonlat)) continue;
        candidates.push({ ...l, prio: 100 });
        n += 1;
      }
    }
  }
  candidates.sort((a, b) => b.prio - a.prio);
  const boxes = [];
  const placed = [];
  for (const c of candidates) {
    const p = map.project(c.lonlat);
    const tw = textWidth(c.text, c.size, c.weight);
    const th = c.size + 4;
    // point names sit above their symbol; ward names on their centre
    const x0 = p.x - tw / 2 - PAD;
    const y0 = c.kind === 'point' ? p.y - 14 - th - PAD : p.y - th / 2 - PAD;
    const box = [x0, y0, x0 + tw + 2 * PAD, y0 + th + 2 * PAD];
    if (box[2] < 0 || box[0] > w || box[3] < 0 || box[1] > h) continue;
    if (boxes.some((o) => box[0] < o[2] && box[2] > o[0] && box[1] < o[3] && box[3] > o[1])) continue;
    boxes.push(box);
    placed.push(c);
  }
  return placed;
}

function position(map, nodes) {
  for (const n of nodes) {
    const l = labelOf.get(n);
    const p = map.project(l.lonlat);
    n.style.transform = `translate(${p.x.toFixed(1)}px, ${p.y.toFixed(1)}px) translate(-50%, ${l.kind === 'point' ? 'calc(-100% - 12px)' : '-50%'})`;
  }
}

/** Settle the labels for the current view and draw them. */
export function renderLabels(app) {
  const box = layerEl(app.map);
  const placed = placeLabels(app);
  app.labelPlacements = placed;
  const nodes = [];
  box.textContent = '';
  for (const l of placed) {
    const n = document.createElement('span');
    n.className = `map-label ${l.kind}`;
    n.textContent = l.text;
    labelOf.set(n, l);
    nodes.push(n);
  }
  box.append(...nodes);
  position(app.map, nodes);
  app.labelNodes = nodes;
}

/** Keep labels with the map: re-place on every stop and redraw, follow while moving. */
export function initLabels(app) {
  const { map } = app;
  let frame = 0;
  map.on('move', () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (app.labelNodes) position(map, app.labelNodes);
    });
  });
  map.on('moveend', () => renderLabels(app));
  map.on('resize', () => renderLabels(app));
  const redraw = app.redraw;
  app.redraw = (...args) => {
    redraw(...args);
    renderLabels(app);
  };
  renderLabels(app);
}
