// The left panel: layers grouped by sector with toggles, counts, opacity and legends.

import { fmtNumber, has, layerTitle, t, valueLabel } from '../i18n.js';
import { isPoint, minZoomOf, rgba, styleOf, swatch } from '../style.js';
import { el } from '../util.js';
import { rasterLegend, rasterSwatch } from './rasterLayers.js';

const SECTOR_ORDER = ['admin', 'security', 'health', 'education', 'tourism', 'feedback', 'traffic', 'environment', 'land'];

function sectorLabel(sector) {
  return has(`sector.${sector}`) ? t(`sector.${sector}`) : sector || t('sector.other');
}

/** Legend rows for a layer: its palette, or its single colour. */
function legend(layer) {
  const s = styleOf(layer);
  const entries = Object.entries(s.palette || {});
  if (!entries.length) return null;
  return el(
    'ul',
    { class: 'legend' },
    entries.map(([value, color]) => el('li', {}, el('span', { class: `sw ${isPoint(layer) ? 'dotsw' : ''}`, style: `background:${rgba(color)}` }), valueLabel(value))),
  );
}

/** Draw (or redraw) the layer panel. */
export function renderLayerPanel(app) {
  const { state } = app;
  const left = document.getElementById('left-layers') || document.getElementById('left');
  if (!left) return;
  if (!left.querySelector('#layerlist')) {
    left.append(el('h2', { id: 'layers-h' }), el('div', { id: 'viewswitch' }), el('div', { id: 'layerlist', class: 'layers' }), el('div', { class: 'footnote', id: 'footnote' }));
  }
  left.querySelector('#layers-h').textContent = t('panel.layers');
  left.querySelector('#footnote').textContent = t('app.offline_note');
  const list = left.querySelector('#layerlist');
  const keepScroll = list.scrollTop;
  list.innerHTML = '';
  const groups = new Map();
  for (const layer of state.catalog) {
    const key = layer.sector || 'other';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(layer);
  }
  const sectors = [...groups.keys()].sort((a, b) => {
    const ia = SECTOR_ORDER.indexOf(a);
    const ib = SECTOR_ORDER.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
  for (const sector of sectors) {
    const group = el('section', { class: 'sector', 'data-sector': sector }, el('h3', {}, sectorLabel(sector)));
    for (const layer of groups.get(sector)) group.append(layerRow(app, layer));
    list.append(group);
  }
  list.scrollTop = keepScroll;
}

/** A sensitive layer the signed-out visitor may not read (the server has sign-in, no user yet). */
export function lockedLayer(app, layer) {
  const { caps, user, locked } = app.state;
  if (locked && locked[layer.slug]) return true;
  return !!layer.sensitive && !user && !!(caps && caps.paths && caps.paths['/api/auth/login']);
}

function layerRow(app, layer) {
  const { state } = app;
  const slug = layer.slug;
  const on = !!state.visible[slug];
  const minZoom = minZoomOf(layer);
  const hiddenByZoom = on && state.zoom < minZoom;
  const count = layer.feature_count;
  const meta = [];
  if (layer.kind === 'raster') meta.push(t('raster.kind'));
  else if (count !== null && count !== undefined) meta.push(`${fmtNumber(count)} ${t('layer.features')}`);
  if (layer.synthetic) meta.push(t('layer.synthetic'));
  if (lockedLayer(app, layer)) meta.push(t(state.user ? 'layer.no_access' : 'layer.sign_in'));
  if (state.useTiles && state.tileUrls[slug]) meta.push('MVT');
  if (state.loading[slug]) meta.push(t('layer.loading'));
  const checkbox = el('input', {
    type: 'checkbox',
    id: `toggle-${slug}`,
    'data-layer': slug,
    checked: on,
    onchange: async (e) => {
      state.visible[slug] = e.target.checked;
      app.redraw();
      if (e.target.checked) {
        await app.loadLayer(layer);
        app.redraw();
      }
      app.renderPanels();
    },
  });
  const opacity = el('input', {
    type: 'range',
    min: '0',
    max: '1',
    step: '0.05',
    value: String(state.opacity[slug] ?? 1),
    title: t('layer.opacity'),
    'aria-label': `${t('layer.opacity')} ${layerTitle(layer)}`,
    class: 'opacity',
    oninput: (e) => {
      state.opacity[slug] = Number(e.target.value);
      app.redraw();
    },
  });
  return el(
    'div',
    { class: `layer${on ? ' on' : ''}`, 'data-layer': slug },
    el(
      'label',
      { class: 'layer-head', for: `toggle-${slug}` },
      checkbox,
      el('span', { class: `sw ${isPoint(layer) ? 'dotsw' : ''}`, style: `background:${layer.kind === 'raster' ? rasterSwatch(state, layer) : swatch(layer)}` }),
      el('span', { class: 'layer-title' }, layerTitle(layer)),
    ),
    el('div', { class: 'layer-meta' }, meta.join(' · ')),
    hiddenByZoom ? el('div', { class: 'layer-hint' }, t('layer.zoom_in', { z: minZoom })) : null,
    on ? el('div', { class: 'layer-tools' }, el('span', { class: 'muted' }, t('layer.opacity')), opacity) : null,
    on ? (layer.kind === 'raster' ? rasterLegend(state, layer) : legend(layer)) : null,
  );
}
