// Raster layers (issue 20): coloured COG tiles drawn by deck (TileLayer + BitmapLayer), their
// legend and the catalogue of raster layers (/api/rasters) the flood and 3D tools read.

import { BitmapLayer } from '@deck.gl/layers';

import { getJSON } from '../api.js';
import { deckExtras } from '../lazyDeck.js';
import { fmtNumber, t } from '../i18n.js';
import { el } from '../util.js';

/** Load the raster catalogue once (slug -> description with legend, bounds, role). */
export async function initRasters(app) {
  app.state.rasters = app.state.rasters || {};
  try {
    const rows = await getJSON('/api/rasters');
    for (const r of rows) app.state.rasters[r.slug] = r;
  } catch {
    // signed out of a restricted raster, or no raster service: the panel simply has none
  }
  return app.state.rasters;
}

/** The first raster of a role the caller may read ('elevation', 'flood_depth'), or null. */
export function rasterOfRole(state, role) {
  return Object.values(state.rasters || {}).find((r) => r.role === role) || null;
}

/** A tile as an ImageBitmap; null for the server's 204 (outside the raster or all nodata). */
async function fetchTile(url, signal) {
  const res = await fetch(url, { signal });
  if (res.status === 204 || !res.ok) return null;
  return createImageBitmap(await res.blob());
}

/** The deck layers of one raster layer (coloured tiles with the layer's opacity). */
export function rasterLayers(state, layer) {
  const info = (state.rasters || {})[layer.slug];
  const version = info ? info.data_version : layer.data_version;
  const bounds = info ? info.bounds : null;
  const X = deckExtras();
  if (!X) return [];
  return [
    new X.TileLayer({
      id: `raster-${layer.slug}`,
      data: `/tiles/${layer.slug}/{z}/{x}/{y}.png?v=${version}`,
      tileSize: 256,
      minZoom: 0,
      maxZoom: 16,
      extent: bounds || undefined,
      opacity: state.opacity[layer.slug] ?? 0.8,
      getTileData: ({ url, signal }) => fetchTile(url.replace(/\?v=.*$/, ''), signal),
      renderSubLayers: (props) => {
        if (!props.data) return null;
        const [[w, s], [e, n]] = props.tile.boundingBox;
        return new BitmapLayer({ ...props, data: undefined, image: props.data, bounds: [w, s, e, n] });
      },
    }),
  ];
}

/** The legend of a raster layer: a colour ramp with its range and units. */
export function rasterLegend(state, layer) {
  const info = (state.rasters || {})[layer.slug];
  if (!info || !info.legend || !info.legend.length) return null;
  const stops = info.legend.map((s, i) => `rgb(${s.color.join(',')}) ${Math.round((i / (info.legend.length - 1)) * 100)}%`);
  const unit = info.units ? ` ${info.units}` : '';
  const first = info.legend[0].value;
  const last = info.legend[info.legend.length - 1].value;
  return el(
    'div',
    { class: 'raster-legend', 'data-raster-legend': layer.slug },
    el('div', { class: 'ramp', style: `background:linear-gradient(90deg, ${stops.join(', ')})` }),
    el('div', { class: 'ramp-labels' }, el('span', {}, `${fmtNumber(Math.round(first))}${unit}`), el('span', {}, `${fmtNumber(Math.round(last))}${unit}`)),
    el('div', { class: 'muted' }, t(`raster.role.${info.role}`), info.resolution_m ? ` · ${t('raster.resolution', { m: Math.round(info.resolution_m) })}` : ''),
  );
}

/** The swatch of a raster layer in the panel: its ramp. */
export function rasterSwatch(state, layer) {
  const info = (state.rasters || {})[layer.slug];
  if (!info || !info.legend || !info.legend.length) return 'linear-gradient(90deg,#444,#ddd)';
  return `linear-gradient(90deg, ${info.legend.map((s) => `rgb(${s.color.join(',')})`).join(', ')})`;
}
