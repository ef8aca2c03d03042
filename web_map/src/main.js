// IOC Map web map: entry point. Builds the shell, the maplibre map with its blank local style,
// the deck.gl overlay, and wires the panels to one shared state object.

import * as maplibregl from 'maplibre-gl';
import 'maplibre-gl/dist/maplibre-gl.css';
import { MapboxOverlay } from '@deck.gl/mapbox';

import './app.css';
import { detectCapabilities, getJSON, loadFeatures } from './api.js';
import { initLang, lang, layerTitle, onLang, setLang, t } from './i18n.js';
import { buildLayers } from './layers.js';
import { isLarge, minZoomOf } from './style.js';
import { debounce, el } from './util.js';
import { renderLayerPanel } from './ui/layerPanel.js';
import { tooltipFor, showDetails, renderDetails } from './ui/details.js';
import { renderKpis } from './ui/kpi.js';
import { initTime, renderTime } from './ui/time.js';
import { initQuery, handleQueryClick, handleQueryDblClick, renderQuery } from './ui/query.js';
import { initFeed, renderFeed } from './ui/feed.js';
import { initH3, refreshH3, renderViewSwitch } from './ui/h3view.js';
import { renderImportPage } from './ui/importPage.js';
import { loadUser, renderLogin } from './ui/login.js';

const BLANK_STYLE = {
  version: 8,
  name: 'iocmap-blank',
  sources: {},
  layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#070d1a' } }],
};

const HOME_PADDING = { top: 30, bottom: 90, left: 300, right: 360 };
const NGHE_AN_BOUNDS = [
  [103.87, 18.55],
  [105.82, 20.0],
];

/** The single state object every panel reads and writes through app.update(). */
function initialState() {
  const params = new URLSearchParams(location.search);
  return {
    catalog: [],
    user: null,
    bySlug: {},
    visible: {},
    opacity: {},
    data: {},
    dataVersion: {},
    loading: {},
    zoom: 8,
    bounds: null,
    caps: null,
    useTiles: params.get('tiles') !== '0',
    // decode vector tiles in workers (off the main thread) unless ?workers=0
    mvtWorkers: typeof Worker !== 'undefined' && params.get('workers') !== '0',
    tileUrls: {},
    view: 'vector',
    h3: { slug: null, res: 6, cells: [], max: 1, source: null },
    time: null,
    selected: null,
    selectedCommune: null,
    draw: { mode: null, points: [], center: null, area: null, areaLabel: null },
    results: [],
    highlight: null,
    detections: [],
    zones: [],
    indicators: null,
    feed: [],
    rightTab: 'details',
    page: location.hash === '#/import' ? 'import' : 'map',
  };
}

function buildShell() {
  const root = document.getElementById('app');
  root.innerHTML = '';
  root.append(
    el(
      'header',
      { id: 'topbar' },
      el('div', { class: 'brand' }, el('div', { class: 'logo', 'aria-hidden': 'true' }, 'IOC'), el('div', {}, el('div', { class: 'brand-title', id: 'brand-title' }), el('div', { class: 'brand-sub', id: 'brand-sub' }))),
      el('div', { id: 'kpis', class: 'kpis' }),
      el(
        'nav',
        { class: 'nav' },
        el('button', { id: 'nav-map', class: 'navbtn' }),
        el('button', { id: 'nav-import', class: 'navbtn' }),
        el('button', { id: 'login-btn', class: 'navbtn', hidden: true }),
        el('button', { id: 'lang-toggle', class: 'langbtn' }),
      ),
    ),
    el('main', { id: 'mapview' }, el('div', { id: 'map' }), el('aside', { id: 'left', class: 'panel' }), el('aside', { id: 'right', class: 'panel' }), el('div', { id: 'timebar', class: 'panel', hidden: true }), el('div', { id: 'status', class: 'status' })),
    el('section', { id: 'importpage', hidden: true }),
  );
}

function renderChrome(app) {
  document.title = t('app.title');
  document.getElementById('brand-title').textContent = t('app.title');
  document.getElementById('brand-sub').textContent = t('app.subtitle');
  const navMap = document.getElementById('nav-map');
  const navImport = document.getElementById('nav-import');
  navMap.textContent = t('nav.map');
  navImport.textContent = t('nav.import');
  navMap.classList.toggle('active', app.state.page === 'map');
  navImport.classList.toggle('active', app.state.page === 'import');
  const lt = document.getElementById('lang-toggle');
  lt.textContent = t('lang.switch');
  lt.title = t('lang.switch_title');
  document.getElementById('mapview').hidden = app.state.page !== 'map';
  document.getElementById('importpage').hidden = app.state.page !== 'import';
}

/** Re-render everything that shows strings or state. */
function renderAll(app) {
  renderChrome(app);
  renderLogin(app);
  renderKpis(app);
  renderLayerPanel(app);
  renderViewSwitch(app);
  renderRight(app);
  renderTime(app);
  if (app.state.page === 'import') renderImportPage(app);
}

function renderRight(app) {
  const right = document.getElementById('right');
  const tabs = [
    ['details', t('panel.details')],
    ['query', t('panel.query')],
    ['feed', t('panel.feed')],
  ];
  let head = right.querySelector('.tabs');
  if (!head) {
    head = el('div', { class: 'tabs', role: 'tablist' });
    right.append(head, el('div', { class: 'tabbody', id: 'tab-details' }), el('div', { class: 'tabbody', id: 'tab-query' }), el('div', { class: 'tabbody', id: 'tab-feed' }));
  }
  head.innerHTML = '';
  for (const [id, label] of tabs) {
    head.append(
      el(
        'button',
        {
          class: `tab${app.state.rightTab === id ? ' active' : ''}`,
          'data-tab': id,
          role: 'tab',
          onclick: () => {
            app.state.rightTab = id;
            renderRight(app);
          },
        },
        label,
        id === 'feed' && app.state.feed.some((f) => f.kind === 'alert' && !f.acked) ? el('span', { class: 'dot' }) : null,
      ),
    );
  }
  for (const [id] of tabs) right.querySelector(`#tab-${id}`).hidden = app.state.rightTab !== id;
  renderDetails(app);
  renderQuery(app);
  renderFeed(app);
}

function setStatus(text, kind = '') {
  const s = document.getElementById('status');
  if (!s) return;
  s.textContent = text || '';
  s.className = `status ${kind}`;
  s.hidden = !text;
}

/** Load a small layer whole, or a large layer for the current viewport. */
async function loadLayer(app, layer) {
  const { state } = app;
  const slug = layer.slug;
  if (state.useTiles && state.tileUrls[slug] && !needsFeatures(layer)) return;
  if (isLarge(layer)) {
    if (state.zoom < minZoomOf(layer) || !state.bounds) {
      state.data[slug] = null;
      return;
    }
    app.aborts[slug]?.abort();
    const ctrl = new AbortController();
    app.aborts[slug] = ctrl;
    state.loading[slug] = true;
    renderLayerPanel(app);
    try {
      state.data[slug] = await loadFeatures(slug, { bbox: state.bounds, maxFeatures: 40000, signal: ctrl.signal });
      state.dataVersion[slug] = (state.dataVersion[slug] || 0) + 1;
    } catch (err) {
      if (err.name !== 'AbortError') console.warn(err);
    } finally {
      if (app.aborts[slug] === ctrl) state.loading[slug] = false;
    }
    return;
  }
  if (state.data[slug]) return;
  state.loading[slug] = true;
  try {
    state.data[slug] = await loadFeatures(slug, { maxFeatures: LARGE_FETCH_CAP });
    state.dataVersion[slug] = (state.dataVersion[slug] || 0) + 1;
  } catch (err) {
    console.warn(err);
    state.data[slug] = [];
    setStatus(`${t('app.error')}: ${layerTitle(layer)}`, 'error');
  } finally {
    state.loading[slug] = false;
  }
}

const LARGE_FETCH_CAP = 25000;

/** Small layers are always kept as GeoJSON too: KPIs, cones, queries and H3 read them. */
function needsFeatures(layer) {
  return !isLarge(layer);
}

/** Probe TileJSON for every layer once; a layer without tiles falls back to GeoJSON. */
async function detectTiles(app) {
  const { state } = app;
  if (!state.caps.tiles || !state.useTiles) return;
  await Promise.all(
    state.catalog.map(async (layer) => {
      try {
        if (state.caps.tilejson) {
          const tj = await getJSON(`/tiles/${encodeURIComponent(layer.slug)}.json`);
          const url = (tj.tiles && tj.tiles[0]) || `/tiles/${layer.slug}/{z}/{x}/{y}.mvt`;
          state.tileUrls[layer.slug] = { url: relativeTemplate(url), minzoom: tj.minzoom, maxzoom: tj.maxzoom };
        } else {
          state.tileUrls[layer.slug] = { url: `/tiles/${layer.slug}/{z}/{x}/{y}.mvt` };
        }
      } catch {
        state.tileUrls[layer.slug] = null;
      }
    }),
  );
}

/** Strip scheme+host from a tile template so tiles always come from this server. */
function relativeTemplate(url) {
  const m = /^https?:\/\/[^/]+(\/.*)$/.exec(url);
  return m ? m[1] : url;
}

/**
 * Live camera status from the vision service (optional): it overrides the layer's static
 * status, so the KPI strip counts cameras really online and offline cones turn grey.
 */
async function loadCameraStatus(app) {
  const { caps, data } = app.state;
  if (!caps.cameras || !data.cameras) return;
  try {
    const rows = await getJSON('/api/cameras');
    const byId = new Map((Array.isArray(rows) ? rows : []).map((c) => [String(c.camera_id), c]));
    for (const f of data.cameras) {
      const live = byId.get(String(f.properties.camera_id));
      if (live && live.status) f.properties.status = live.status;
    }
    app.state.dataVersion.cameras = (app.state.dataVersion.cameras || 0) + 1;
    app.update();
  } catch {
    // signed out or no vision service: keep the layer's own status
  }
}

/** Per-commune indicators from the analytics service (optional; the KPI card uses them). */
async function loadIndicators(app) {
  if (!app.state.caps.paths['/api/analytics/indicators']) return;
  try {
    const rows = await getJSON('/api/analytics/indicators');
    app.state.indicators = Object.fromEntries((Array.isArray(rows) ? rows : []).map((r) => [String(r.code), r]));
    if (app.state.selectedCommune) app.renderRight();
  } catch {
    app.state.indicators = null;
  }
}

async function boot() {
  // eslint-disable-next-line no-undef
  maplibregl.setWorkerUrl(__MAPLIBRE_WORKER_URL__);
  initLang();
  buildShell();
  const app = {
    state: initialState(),
    aborts: {},
    map: null,
    overlay: null,
  };
  app.redraw = () => {
    if (app.overlay) app.overlay.setProps({ layers: buildLayers(app.state) });
  };
  app.update = () => {
    app.redraw();
    renderAll(app);
  };
  app.renderRight = () => renderRight(app);
  app.renderPanels = () => renderAll(app);
  app.setStatus = setStatus;
  app.flyTo = (lonlat, zoom = 15) => app.map.flyTo({ center: lonlat, zoom: Math.max(app.map.getZoom(), zoom), speed: 1.6 });
  app.fitBounds = (bbox) => app.map.fitBounds([[bbox[0], bbox[1]], [bbox[2], bbox[3]]], { padding: { top: 40, bottom: 90, left: 310, right: 370 }, maxZoom: 16, duration: 800 });
  app.loadLayer = (layer) => loadLayer(app, layer);
  // a small hook for the browser tests and for operators' scripts in the console
  window.__iocmap = {
    app,
    ready: false,
    lang,
    setLang,
    project: (lonlat) => {
      const p = app.map.project(lonlat);
      const r = app.map.getContainer().getBoundingClientRect();
      return [p.x + r.left, p.y + r.top];
    },
    jumpTo: (center, zoom) => app.map.jumpTo({ center, zoom }),
    home: () => app.map.fitBounds(NGHE_AN_BOUNDS, { padding: HOME_PADDING, duration: 0 }),
    idle: () => new Promise((resolve) => (app.map.loaded() && !app.map.isMoving() ? resolve(true) : app.map.once('idle', () => resolve(true)))),
    /** Resolves once the map stopped moving, viewport data arrived and every deck layer (and tile) loaded. */
    settled: async (timeoutMs = 90000) => {
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const start = Date.now();
      await window.__iocmap.idle();
      await sleep(400); // the moveend debounce
      while (Date.now() - start < timeoutMs) {
        const deck = app.overlay && app.overlay._deck;
        const layers = deck && deck.layerManager ? deck.layerManager.getLayers() : [];
        const busy = Object.values(app.state.loading).some(Boolean);
        if (!busy && layers.every((l) => l.isLoaded)) {
          await sleep(150);
          return true;
        }
        await sleep(100);
      }
      const deck = app.overlay && app.overlay._deck;
      const waiting = (deck ? deck.layerManager.getLayers() : []).filter((l) => !l.isLoaded).map((l) => l.id);
      const loading = Object.keys(app.state.loading).filter((k) => app.state.loading[k]);
      return `not settled: layers ${waiting.join(',')} loading ${loading.join(',')}`;
    },
  };

  renderChrome(app);
  setStatus(t('app.loading'));
  document.getElementById('lang-toggle').addEventListener('click', () => setLang(lang() === 'vi' ? 'en' : 'vi'));
  document.getElementById('nav-map').addEventListener('click', () => {
    location.hash = '';
  });
  document.getElementById('nav-import').addEventListener('click', () => {
    location.hash = '#/import';
  });
  window.addEventListener('hashchange', () => {
    app.state.page = location.hash === '#/import' ? 'import' : 'map';
    renderAll(app);
    if (app.state.page === 'map') app.map.resize();
  });
  onLang(() => app.update());

  const map = new maplibregl.Map({
    container: 'map',
    style: BLANK_STYLE,
    bounds: NGHE_AN_BOUNDS,
    // leave room for the layer panel (left), details (right) and the time bar (bottom)
    fitBoundsOptions: { padding: HOME_PADDING },
    attributionControl: false,
    maxPitch: 60,
    dragRotate: false,
    renderWorldCopies: false,
  });
  app.map = map;
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  map.doubleClickZoom.disable();

  const overlay = new MapboxOverlay({
    interleaved: false,
    layers: [],
    getTooltip: (info) => tooltipFor(app, info),
    onClick: (info) => {
      if (app.state.draw.mode) return;
      showDetails(app, info);
    },
  });
  app.overlay = overlay;
  map.addControl(overlay);
  map.on('click', (e) => {
    if (app.state.draw.mode) handleQueryClick(app, [e.lngLat.lng, e.lngLat.lat]);
  });
  map.on('dblclick', (e) => {
    if (app.state.draw.mode) handleQueryDblClick(app, [e.lngLat.lng, e.lngLat.lat]);
    else map.easeTo({ center: e.lngLat, zoom: map.getZoom() + 1 });
  });

  const onView = debounce(async () => {
    const b = map.getBounds();
    app.state.bounds = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
    const large = app.state.catalog.filter((l) => isLarge(l) && app.state.visible[l.slug]);
    await Promise.all(large.map((l) => loadLayer(app, l)));
    refreshH3(app);
    app.redraw();
    renderLayerPanel(app);
  }, 250);
  map.on('move', () => {
    const z = map.getZoom();
    const crossed = app.state.catalog.some((l) => (minZoomOf(l) > z) !== (minZoomOf(l) > app.state.zoom));
    app.state.zoom = z;
    if (crossed) {
      app.redraw();
      renderLayerPanel(app);
    }
  });
  map.on('moveend', onView);

  try {
    const [caps, catalog] = await Promise.all([detectCapabilities(), getJSON('/api/layers')]);
    app.state.caps = caps;
    app.state.catalog = catalog;
    await loadUser(app);
    for (const layer of catalog) {
      app.state.bySlug[layer.slug] = layer;
      app.state.visible[layer.slug] = true;
      app.state.opacity[layer.slug] = 1;
    }
    app.state.zoom = map.getZoom();
    const b = map.getBounds();
    app.state.bounds = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
    await detectTiles(app);
    initTime(app);
    initH3(app);
    initQuery(app);
    renderAll(app);
    // boundaries first so the basemap paints quickly, then everything else in parallel
    const first = catalog.filter((l) => l.sector === 'admin');
    await Promise.all(first.map((l) => loadLayer(app, l)));
    app.redraw();
    setStatus('');
    await Promise.all(catalog.filter((l) => l.sector !== 'admin').map((l) => loadLayer(app, l).then(() => app.redraw())));
    initTime(app);
    app.update();
    initFeed(app);
    loadIndicators(app);
    loadCameraStatus(app);
    window.__iocmap.ready = true;
    document.body.dataset.ready = '1';
  } catch (err) {
    console.error(err);
    setStatus(`${t('app.error')}: ${err.message}`, 'error');
    document.body.dataset.ready = 'error';
  }
}

boot();
