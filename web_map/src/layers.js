// Builds the deck.gl layer stack from the app state: basemap boundaries, sector layers
// (MVT when the server has tiles, time-enabled ones filtered by the slider through
// ?datetime=; GeoJSON otherwise), H3/heatmap view, camera cones,
// selection, query area and results.

import { GeoJsonLayer, PolygonLayer, ScatterplotLayer, PathLayer } from '@deck.gl/layers';
import { DataFilterExtension } from '@deck.gl/extensions';

import { fillAccessor, isPoint, isPolygonal, minZoomOf, rampColor, styleOf, tileUrlOf, tilesOf } from './style.js';
import { viewCone } from './geo.js';
import { cameraStatus } from './cameraStatus.js';
import { BASEMAP_SLUGS } from './basemap.js';
import { isNative } from './nativeLayers.js';
import { rasterLayers } from './ui/rasterLayers.js';
import { floodLayers } from './ui/flood.js';
import { terrainLayers } from './ui/terrain.js';
import { deckExtras } from './lazyDeck.js';

const DAY = 86400000;
const DOWN = new Set(['offline', 'stale', 'stopped', 'error']);
const filterExt = new DataFilterExtension({ filterSize: 1 });

/** Order in which layers stack: boundaries below, polygons, lines, points on top. */
function stackRank(layer) {
  if (layer.kind === 'raster') return 5; // rasters under every vector layer but the wards
  if (layer.slug === 'admin_communes') return 0;
  if (layer.slug === 'admin_province') return 50;
  if (isPolygonal(layer)) return 10;
  if (isPoint(layer)) return 30;
  return 20;
}

/** Layers in drawing order. */
export function drawOrder(catalog) {
  return [...catalog].sort((a, b) => stackRank(a) - stackRank(b));
}

/**
 * Time filter props of a time-enabled layer drawn from GeoJSON (DataFilterExtension), or {}.
 * Tiles are filtered by the server (their URL carries `datetime=`), never on the GPU.
 */
function timeProps(state, layer) {
  const tm = state.time;
  if (!layer.time_field || !tm || tm.from === null || tm.from === undefined) return {};
  const field = layer.time_field;
  return {
    extensions: [filterExt],
    getFilterValue: (f) => {
      const v = f && f.properties ? f.properties[field] : null;
      const ms = v ? Date.parse(v) : NaN;
      // days since t0 keep float32 precision in the shader
      return Number.isNaN(ms) ? -1e9 : (ms - tm.t0) / DAY;
    },
    filterRange: [(tm.from - tm.t0) / DAY, (tm.to - tm.t0) / DAY],
    updateTriggers: { getFilterValue: [tm.t0] },
  };
}

/** GeoJsonLayer/MVTLayer props shared by both sources. */
function vectorProps(state, layer) {
  const s = styleOf(layer);
  const opacity = state.opacity[layer.slug] ?? 1;
  const point = isPoint(layer);
  const base = {
    id: `layer-${layer.slug}`,
    pickable: true,
    autoHighlight: true,
    highlightColor: [255, 255, 255, 90],
    opacity,
    stroked: true,
    filled: true,
    getFillColor: fillAccessor(layer),
    getLineColor: point ? [10, 16, 32, 220] : s.line_color,
    getLineWidth: point ? 1 : s.line_width,
    lineWidthUnits: 'pixels',
    lineWidthMinPixels: point ? 1 : Math.min(s.line_width, 1),
    pointType: 'circle',
    getPointRadius: s.point_radius,
    pointRadiusUnits: 'pixels',
    // smaller dots at province scale, full size from city zoom on
    pointRadiusScale: Math.max(0.5, Math.min(1.3, (state.zoom - 5) / 7)),
    pointRadiusMinPixels: 2,
    updateTriggers: { getFillColor: [layer.slug] },
  };
  if (layer.slug === 'admin_province') {
    Object.assign(base, { filled: false, pickable: false, autoHighlight: false });
  }
  if (layer.slug === 'admin_communes') {
    // the basemap: hovering lights the ward, clicks open its KPI card
    Object.assign(base, { highlightColor: [255, 193, 7, 60] });
  }
  return base;
}

/** One sector layer as deck layers (the layer itself, plus cones for cameras). */
function sectorLayers(state, layer) {
  const out = [];
  const minZoom = minZoomOf(layer);
  if (state.zoom < minZoom) return out;
  const props = vectorProps(state, layer);
  const tiles = tilesOf(state, layer);
  if (tiles) {
    // deck's tile layer is in the lazily loaded chunk: drawn once it has arrived
    const X = deckExtras();
    if (!X) return out;
    out.push(
      new X.MVTLayer({
        ...props,
        // a time-enabled layer's tiles come filtered by the slider (?datetime=from/to): a new
        // window is a new URL, and deck keeps the old tiles on screen until the new ones load
        data: tileUrlOf(state, layer),
        minZoom: tiles.minzoom ?? 0,
        maxZoom: Math.min(tiles.maxzoom ?? 14, 16),
        binary: true,
        // decode in loaders.gl's MVT worker, shipped in our own assets (never its CDN default);
        // the full loader stays as the main-thread fallback when workers are unavailable
        loaders: [X.MVTLoader],
        // eslint-disable-next-line no-undef
        loadOptions: { core: { worker: state.mvtWorkers }, mvt: { workerUrl: __MVT_WORKER_URL__ } },
        onTileError: (err) => console.warn('tile error', layer.slug, err && err.message ? err.message : err),
      }),
    );
  } else {
    const data = state.data[layer.slug];
    if (!data) return out;
    // without a tile service the slider filters the loaded features exactly on the GPU
    const time = timeProps(state, layer);
    const triggers = { ...props.updateTriggers, ...(time.updateTriggers || {}), data: state.dataVersion[layer.slug] };
    out.push(new GeoJsonLayer({ ...props, ...time, data, updateTriggers: triggers }));
  }
  if (layer.slug === 'cameras' && state.data.cameras) out.unshift(coneLayer(state, layer));
  return out;
}

/** Camera view cones from heading_deg / fov_deg / range_m. */
function coneLayer(state, layer) {
  const cams = state.data.cameras;
  return new PolygonLayer({
    id: 'camera-cones',
    data: cams,
    opacity: state.opacity[layer.slug] ?? 1,
    getPolygon: (f) => {
      const p = f.properties || {};
      return viewCone(f.geometry.coordinates, p.heading_deg, p.fov_deg, p.range_m);
    },
    getFillColor: (f) => (DOWN.has(cameraStatus(state, f.properties)) ? [158, 158, 158, 40] : [0, 229, 255, 46]),
    getLineColor: [0, 229, 255, 150],
    getLineWidth: 1,
    lineWidthUnits: 'pixels',
    stroked: true,
    pickable: false,
    updateTriggers: { getFillColor: [state.dataVersion.cameras] },
  });
}

/** H3 hexagons (server or browser aggregated) or a heatmap of the chosen layer. */
function analyticLayers(state) {
  const out = [];
  if (state.view !== 'h3' && state.view !== 'heatmap') return out;
  const X = deckExtras();
  if (!X) return out;
  if (state.view === 'h3' && state.h3.cells.length) {
    const max = state.h3.max || 1;
    out.push(
      new X.H3HexagonLayer({
        id: 'h3-view',
        data: state.h3.cells,
        getHexagon: (d) => d.h3,
        getFillColor: (d) => rampColor(Math.log1p(d.value) / Math.log1p(max)),
        getLineColor: [255, 255, 255, 60],
        lineWidthMinPixels: 0.5,
        extruded: false,
        pickable: true,
        opacity: 0.85,
        updateTriggers: { getFillColor: [max, state.h3.res] },
      }),
    );
  }
  if (state.view === 'heatmap') {
    const pts = filteredPoints(state, state.h3.slug);
    out.push(
      new X.HeatmapLayer({
        id: 'heatmap-view',
        data: pts,
        getPosition: (f) => f.geometry.coordinates,
        getWeight: 1,
        radiusPixels: 40,
        intensity: 1.2,
        colorRange: [
          [13, 71, 161],
          [0, 151, 167],
          [0, 229, 255],
          [255, 235, 59],
          [255, 152, 0],
          [229, 57, 53],
        ],
      }),
    );
  }
  return out;
}

/** Points of a layer that pass the time slider (for heatmaps and client H3). */
export function filteredPoints(state, slug) {
  const data = state.data[slug] || [];
  const layer = state.bySlug[slug];
  const pts = data.filter((f) => f.geometry && f.geometry.type === 'Point');
  const tm = state.time;
  if (!layer || !layer.time_field || !tm || tm.from === null || tm.from === undefined) return pts;
  return pts.filter((f) => {
    const ms = Date.parse(f.properties[layer.time_field]);
    return ms >= tm.from && ms <= tm.to;
  });
}

/** Selection, drawn query area, query results and camera detections. */
function overlayLayers(state) {
  const out = [];
  if (state.draw.area) {
    out.push(
      new GeoJsonLayer({
        id: 'query-area',
        data: [{ type: 'Feature', geometry: state.draw.area, properties: {} }],
        getFillColor: [255, 64, 129, 40],
        getLineColor: [255, 64, 129, 230],
        getLineWidth: 2,
        lineWidthUnits: 'pixels',
        pickable: false,
      }),
    );
  }
  if (state.draw.points.length) {
    out.push(
      new PathLayer({
        id: 'query-sketch',
        data: [state.draw.points],
        getPath: (d) => d,
        getColor: [255, 64, 129, 230],
        getWidth: 2,
        widthUnits: 'pixels',
      }),
      new ScatterplotLayer({
        id: 'query-vertices',
        data: state.draw.points,
        getPosition: (d) => d,
        getRadius: 4,
        radiusUnits: 'pixels',
        getFillColor: [255, 64, 129, 255],
      }),
    );
  }
  if (state.results.length) {
    out.push(
      new ScatterplotLayer({
        id: 'query-results',
        data: state.results.filter((r) => r.point),
        getPosition: (r) => r.point,
        getRadius: (r) => (r === state.highlight ? 14 : 9),
        radiusUnits: 'pixels',
        stroked: true,
        filled: true,
        getFillColor: (r) => (r === state.highlight ? [255, 64, 129, 160] : [255, 64, 129, 50]),
        getLineColor: [255, 64, 129, 255],
        getLineWidth: 2,
        lineWidthUnits: 'pixels',
        updateTriggers: { getRadius: [state.highlight], getFillColor: [state.highlight] },
      }),
    );
  }
  if (state.zones && state.zones.length) {
    out.push(
      new GeoJsonLayer({
        id: 'camera-zones',
        data: state.zones.map((z) => ({ type: 'Feature', geometry: z.geometry, properties: { name: z.name, kind: z.kind } })),
        getFillColor: [255, 235, 59, 40],
        getLineColor: [255, 235, 59, 220],
        getLineWidth: 2,
        lineWidthUnits: 'pixels',
        pickable: false,
      }),
    );
  }
  if (state.detections.length) {
    out.push(
      new ScatterplotLayer({
        id: 'camera-detections',
        data: state.detections,
        getPosition: (d) => d.position,
        getRadius: 5,
        radiusUnits: 'pixels',
        getFillColor: [255, 235, 59, 230],
        getLineColor: [0, 0, 0, 200],
        stroked: true,
        lineWidthUnits: 'pixels',
        getLineWidth: 1,
        pickable: true,
      }),
    );
  }
  if (state.selected) {
    out.push(
      new GeoJsonLayer({
        id: 'selection',
        data: [state.selected.feature],
        filled: !isPolygonalGeom(state.selected.feature.geometry),
        stroked: true,
        getFillColor: [255, 255, 255, 0],
        getLineColor: [255, 255, 255, 255],
        getLineWidth: 3,
        lineWidthUnits: 'pixels',
        pointType: 'circle',
        getPointRadius: 12,
        pointRadiusUnits: 'pixels',
        pickable: false,
      }),
    );
  }
  return out;
}

function isPolygonalGeom(g) {
  return g && /Polygon/.test(g.type);
}

/** The whole deck.gl layer list for the current state (the basemap boundaries are maplibre's). */
export function buildLayers(state) {
  const layers = [];
  const ordered = drawOrder(state.catalog);
  const analyticOn = state.view !== 'vector';
  for (const layer of ordered) {
    // maplibre draws the boundaries from tiles; without a tile service deck draws their GeoJSON
    if (!state.visible[layer.slug] || (BASEMAP_SLUGS.has(layer.slug) && state.basemapTiles !== false)) continue;
    if (analyticOn && layer.slug === state.h3.slug) continue; // the aggregate replaces the points
    if (isNative(state, layer)) continue; // maplibre draws it from its tiles, camera cones too (nativeLayers.js)
    if (layer.kind === 'raster') {
      layers.push(...rasterLayers(state, layer));
      continue;
    }
    layers.push(...sectorLayers(state, layer));
  }
  layers.push(...analyticLayers(state));
  layers.unshift(...terrainLayers(state));
  layers.push(...floodLayers(state));
  layers.push(...overlayLayers(state));
  return layers;
}
