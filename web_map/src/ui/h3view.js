// The analytic view switch: features, H3 hexagons (server /api/h3 or browser h3-js), heatmap.
// The H3 resolution follows the zoom; a colour ramp legend explains the scale.

import { fillPath, getJSON } from '../api.js';
import { loadDeckExtras } from '../lazyDeck.js';
import { fmtNumber, layerTitle, t } from '../i18n.js';
import { filteredPoints } from '../layers.js';
import { RAMP, isPoint } from '../style.js';
import { debounce, el } from '../util.js';
import { listOf } from './details.js';

const hotspots = () => import('./hotspots.js');

/** H3 resolution for a map zoom: roughly one hexagon per 30–60 screen pixels. */
export function resForZoom(zoom) {
  if (zoom < 7) return 4;
  if (zoom < 8.5) return 5;
  if (zoom < 10) return 6;
  if (zoom < 11.5) return 7;
  if (zoom < 13) return 8;
  if (zoom < 14.5) return 9;
  return 10;
}

function candidates(state) {
  return state.catalog.filter((l) => isPoint(l));
}

/** Pick a default layer for the H3 view (field reports when present). */
export function initH3(app) {
  const { state } = app;
  const pts = candidates(state);
  if (!state.h3.slug && pts.length) state.h3.slug = (pts.find((l) => l.slug === 'field_reports') || pts[0]).slug;
}

let seq = 0;

/** Recompute the hexagons for the current layer, zoom and time window. */
export const refreshH3 = debounce(async (app) => {
  const { state } = app;
  if (state.view !== 'h3' || !state.h3.slug) return;
  const res = resForZoom(state.zoom);
  const mine = ++seq;
  const slug = state.h3.slug;
  let cells = null;
  let source = 'client';
  if (state.caps && state.caps.h3) {
    try {
      const q = new URLSearchParams({ res: String(Math.max(5, Math.min(10, res))) });
      const layer = state.bySlug[slug];
      if (layer && layer.time_field && state.time && (state.time.from > state.time.min || state.time.to < state.time.max)) {
        q.set('from', new Date(state.time.from).toISOString());
        q.set('to', new Date(state.time.to).toISOString());
      }
      if (state.bounds) q.set('bbox', state.bounds.map((v) => v.toFixed(5)).join(','));
      const body = await getJSON(`${fillPath(state.caps.h3, { layer: slug, slug })}?${q}`);
      cells = normaliseCells(body);
      // aggregates not refreshed yet: count in the browser rather than show nothing
      if (!cells.length && filteredPoints(state, slug).length) cells = null;
      else source = 'server';
    } catch {
      cells = null;
    }
  }
  if (!cells) cells = clientCells(state, slug, res, (await loadDeckExtras()).latLngToCell);
  if (mine !== seq) return;
  state.h3.cells = cells;
  state.h3.res = res;
  state.h3.source = source;
  state.h3.max = cells.reduce((m, c) => Math.max(m, c.value), 1);
  app.redraw();
  renderViewSwitch(app);
}, 120);

/**
 * Switch the analytic view ('vector', 'h3', 'heatmap', 'hotspots'), from its button or from a
 * shared link (ui/urlState.js): the layer it counts is loaded and the hot spots drawn or hidden.
 */
export async function setView(app, id) {
  const { state } = app;
  const was = state.view;
  state.view = id;
  if (id !== 'vector') {
    const layer = state.bySlug[state.h3.slug];
    if (layer) await app.loadLayer(layer);
  }
  if (id === 'h3') refreshH3(app);
  // Gi* hot spots (ui/hotspots.js) are drawn by maplibre over the basemap
  if (id === 'hotspots') hotspots().then((m) => m.showHotspots(app));
  else if (was === 'hotspots') hotspots().then((m) => m.hideHotspots(app));
  app.redraw();
  renderViewSwitch(app);
}

/** Accept [{h3|cell, count|value}], {cells:[...]}, or a GeoJSON of hexagons. */
export function normaliseCells(body) {
  // the analytics API answers columnar: {cells: [hex...], values: [n...]}
  if (body && Array.isArray(body.cells) && Array.isArray(body.values) && typeof body.cells[0] !== 'object') {
    return body.cells.map((h3, i) => ({ h3: String(h3), value: Number(body.values[i]) || 0 })).filter((c) => c.value > 0);
  }
  const rows = listOf(body, 'cells');
  return rows
    .map((r) => {
      const p = r.type === 'Feature' ? { ...r.properties, id: r.id } : r;
      const h3 = p.h3 || p.cell || p.h3_index || p.index || p.id;
      const value = Number(p.value ?? p.count ?? p.n ?? p.total ?? 0);
      return h3 ? { h3: String(h3), value } : null;
    })
    .filter(Boolean);
}

function clientCells(state, slug, res, latLngToCell) {
  const counts = new Map();
  for (const f of filteredPoints(state, slug)) {
    const [lon, lat] = f.geometry.coordinates;
    const cell = latLngToCell(lat, lon, res);
    counts.set(cell, (counts.get(cell) || 0) + 1);
  }
  return [...counts].map(([h3, value]) => ({ h3, value }));
}

/** Draw the view switch (features / H3 / heatmap), the layer picker and the legend. */
export function renderViewSwitch(app) {
  const box = document.getElementById('viewswitch');
  if (!box) return;
  const { state } = app;
  box.innerHTML = '';
  const modes = [
    ['vector', t('view.vector')],
    ['h3', t('view.h3')],
    ['heatmap', t('view.heatmap')],
    ['hotspots', t('view.hotspots')],
  ];
  box.append(
    el(
      'div',
      { class: 'seg', role: 'group' },
      modes.map(([id, label]) =>
        el(
          'button',
          {
            class: `segbtn${state.view === id ? ' active' : ''}`,
            'data-view': id,
            onclick: () => setView(app, id),
          },
          label,
        ),
      ),
    ),
  );
  if (state.view === 'vector') return;
  box.append(
    el(
      'label',
      { class: 'muted small block' },
      t('h3.layer'),
      el(
        'select',
        {
          id: 'h3-layer',
          onchange: async (e) => {
            state.h3.slug = e.target.value;
            await app.loadLayer(state.bySlug[state.h3.slug]);
            refreshH3(app);
            if (state.view === 'hotspots') hotspots().then((m) => m.showHotspots(app));
            app.redraw();
          },
        },
        candidates(state).map((l) => el('option', { value: l.slug, selected: l.slug === state.h3.slug }, layerTitle(l))),
      ),
    ),
  );
  if (state.view === 'hotspots') {
    const legendSlot = el('div');
    box.append(legendSlot);
    hotspots().then((m) => legendSlot.replaceWith(m.hotspotLegend(app)));
  }
  if (state.view === 'h3') {
    const stops = RAMP.map((c, i) => `rgb(${c.join(',')}) ${Math.round((i / (RAMP.length - 1)) * 100)}%`).join(',');
    box.append(
      el(
        'div',
        { class: 'h3legend', id: 'h3-legend' },
        el('div', { class: 'small' }, `${t('h3.legend')} · ${t('h3.resolution')} ${state.h3.res}`),
        el('div', { class: 'ramp', style: `background:linear-gradient(90deg,${stops})` }),
        el('div', { class: 'ramp-labels small' }, el('span', {}, '1'), el('span', {}, fmtNumber(state.h3.max))),
        el('div', { class: 'muted small' }, `${fmtNumber(state.h3.cells.length)} ${t('h3.cells')} · ${state.h3.source === 'server' ? t('h3.source_server') : t('h3.source_client')}`),
      ),
    );
  }
}
