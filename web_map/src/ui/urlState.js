// The URL carries the map's state: centre and zoom (c, z), the visible layers (l), the analytic
// mode (m, with its layer h), the indicator on the wards (ind, per), the time window (t, w) and
// the selected feature (sel). Every settled change pushes a history entry, so the browser's back
// and forward buttons step through views; opening a link restores it all. Other parameters
// (lang, theme, wall, tiles, renderer…) are kept as they are.

import { getJSON } from '../api.js';
import { showDetails } from './details.js';
import { refreshH3, setView } from './h3view.js';
import { layersFromUrl, viewFromUrl } from './urlView.js';

const OWN = ['c', 'z', 'l', 'm', 'h', 'ind', 'per', 't', 'w', 'sel'];
const WRITE_DELAY_MS = 700;
const MODES = new Set(['vector', 'h3', 'heatmap', 'hotspots']);

function iso(ms) {
  return new Date(ms).toISOString().slice(0, 16) + 'Z';
}

/** The state as URLSearchParams (other parameters of the current URL kept). */
export function encodeState(app, base = location.search) {
  const { state, map } = app;
  const p = new URLSearchParams(base);
  const linked = [p.get('c'), p.get('z')];
  for (const k of OWN) p.delete(k);
  if (app.pendingView) {
    // the map has not been shown yet (opened on another page): its centre and zoom are those
    // of a stand-in size, so the link keeps what it had (shell.js deferFirstView)
    if (linked[0] !== null && linked[1] !== null) {
      p.set('c', linked[0]);
      p.set('z', linked[1]);
    }
  } else {
    const c = map.getCenter();
    p.set('c', `${c.lng.toFixed(5)},${c.lat.toFixed(5)}`);
    p.set('z', map.getZoom().toFixed(2));
  }
  p.set('l', state.catalog.filter((l) => state.visible[l.slug]).map((l) => l.slug).join(','));
  if (state.view && state.view !== 'vector') {
    p.set('m', state.view);
    if (state.h3 && state.h3.slug) p.set('h', state.h3.slug);
  }
  if (state.choropleth && state.choropleth.code) {
    p.set('ind', state.choropleth.code);
    if (state.choropleth.period) p.set('per', state.choropleth.period);
  }
  const tm = state.time;
  if (tm && (tm.from !== tm.min || tm.to !== tm.max)) {
    p.set('t', `${iso(tm.from)}/${iso(tm.to)}`);
    if (tm.windowDays) p.set('w', String(tm.windowDays));
  }
  const sel = state.selected;
  if (sel && sel.feature && sel.feature.id !== undefined && sel.feature.id !== null) p.set('sel', `${sel.slug}/${sel.feature.id}`);
  return p;
}

/** The shareable link of the current view. */
export function shareUrl(app) {
  return `${location.origin}${location.pathname}?${encodeState(app)}${location.hash}`;
}

/** Apply the URL's state to the running app (used on load and on back/forward). */
export async function applyState(app, search = location.search, { animate = false } = {}) {
  const { state, map } = app;
  const p = new URLSearchParams(search);
  const view = viewFromUrl(search);
  if (view) {
    if (animate) map.easeTo({ ...view, duration: 400 });
    else map.jumpTo(view);
  }
  const wanted = layersFromUrl(search);
  const loads = [];
  if (wanted) {
    for (const layer of state.catalog) {
      const on = wanted.has(layer.slug);
      if (!!state.visible[layer.slug] !== on) {
        state.visible[layer.slug] = on;
        if (on) loads.push(app.loadLayer(layer));
      }
    }
  }
  const mode = p.get('m') || 'vector';
  const h = p.get('h');
  if (mode !== state.view || (h && state.bySlug[h] && h !== state.h3.slug)) {
    if (h && state.bySlug[h]) state.h3.slug = h;
    // hot spots are drawn by their own module: the same switch as the view buttons
    loads.push(setView(app, MODES.has(mode) ? mode : 'vector'));
  }
  const tm = state.time;
  const tw = (p.get('t') || '').split('/').map((s) => Date.parse(s));
  if (tm) {
    if (tw.length === 2 && tw.every(Number.isFinite)) {
      tm.from = Math.max(tm.min, Math.min(tw[0], tm.max));
      tm.to = Math.max(tm.from, Math.min(tw[1], tm.max));
      tm.windowDays = Number(p.get('w')) || 0;
    } else {
      Object.assign(tm, { from: tm.min, to: tm.max, windowDays: 0 });
    }
  }
  await Promise.all(loads);
  const ind = p.get('ind');
  if (ind && (!state.choropleth || state.choropleth.code !== ind || (p.get('per') && state.choropleth.period !== p.get('per')))) {
    const m = await app.lazy.indicators();
    await m.showChoropleth(app, ind, p.get('per') || null);
  } else if (!ind && state.choropleth) {
    const m = await app.lazy.indicators();
    m.clearChoropleth(app);
  }
  refreshH3(app);
  const sel = p.get('sel');
  const cur = state.selected;
  const curKey = cur && cur.feature ? `${cur.slug}/${cur.feature.id}` : null;
  if (sel && sel !== curKey) {
    const [slug, id] = sel.split('/');
    try {
      const f = await getJSON(`/ogc/collections/${encodeURIComponent(slug)}/items/${encodeURIComponent(id)}`);
      showDetails(app, { object: f, layer: { id: `layer-${slug}` }, picked: true });
    } catch {
      // gone or not readable by this user: the view opens without it
    }
  } else if (!sel && cur) {
    state.selected = null;
    state.selectedCommune = null;
  }
  app.update();
}

/** Start writing the state to the URL and following back/forward. */
export function initUrlState(app) {
  let applying = false;
  let timer = null;
  const write = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (applying || app.state.page !== 'map' || app.map.isMoving()) return;
      const qs = `?${encodeState(app)}`;
      // the map's first view after opening on another page is not a step to go back to
      const replace = app.replaceUrlOnce;
      app.replaceUrlOnce = false;
      if (qs === location.search) return;
      history[replace ? 'replaceState' : 'pushState']({ iocmap: true }, '', `${location.pathname}${qs}${location.hash}`);
    }, WRITE_DELAY_MS);
  };
  app.urlChanged = write;
  // every change of layers, mode, time or selection ends in a redraw; every move in a moveend
  const redraw = app.redraw;
  app.redraw = (...args) => {
    redraw(...args);
    write();
  };
  app.map.on('moveend', write);
  window.addEventListener('popstate', async () => {
    applying = true;
    clearTimeout(timer);
    try {
      await applyState(app, location.search);
    } finally {
      // the jump's own moveend comes back here: let it pass before writing again
      setTimeout(() => {
        applying = false;
      }, WRITE_DELAY_MS + 300);
    }
  });
  history.replaceState({ iocmap: true }, '', `${location.pathname}?${encodeState(app)}${location.hash}`);
}
