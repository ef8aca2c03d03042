// The second chunk of the web map: the deck.gl overlay, the sector layers and the panels,
// wired to the one shared state object. main.js has already drawn the basemap.

import { MapboxOverlay } from '@deck.gl/mapbox';

import { early, getJSON, loadFeatures } from './api.js';
import { activateViewport, layerManager, overlayDeck, replayPointerMove } from './internals.js';
import { BASEMAP_SLUGS, hoverWard, syncBasemap, wardAt } from './basemap.js';
import { layerTitle, lang, onLang, setLang, t } from './i18n.js';
import { buildLayers } from './layers.js';
import { onDeckExtras } from './lazyDeck.js';
import { denseRasterLayers, hoverNative, nativePick, pickDense, syncNative } from './nativeLayers.js';
import { pageOf, renderChrome, setStatus, showPendingView } from './shell.js';
import { SMALL_FETCH_CAP, isLarge, minZoomOf } from './style.js';
import { debounce, el, mark } from './util.js';
import { lockedLayer, renderLayerPanel } from './ui/layerPanel.js';
import { tooltipFor, showDetails, renderDetails } from './ui/details.js';
import { renderKpis } from './ui/kpi.js';
import { startCameraStatus } from './cameraStatus.js';
import { initTime, renderTime } from './ui/time.js';
import { initQuery, handleQueryClick, handleQueryDblClick, renderQuery } from './ui/query.js';
import { initFeed, renderFeed } from './ui/feed.js';
import { initH3, refreshH3, renderViewSwitch } from './ui/h3view.js';
import { loadUser, renderLogin } from './ui/login.js';
import { initRasters } from './ui/rasterLayers.js';
import { floodClick, renderFloodPanel, renderRasterTools } from './ui/flood.js';
import { incidentLayers, incidentMapClick, incidentPicking, incidentTooltip, initIncidents, renderIncidents } from './ui/incidents.js';
import { openPicks, picksAt, renderChooser } from './ui/picker.js';
import { layersFromUrl } from './ui/urlView.js';

// pages and panels used by few people or only on demand come in their own chunks
const lazy = {
  importPage: () => import('./ui/importPage.js'),
  indicators: () => import('./ui/indicators.js'),
  reports: () => import('./ui/reports.js'),
  planner: () => import('./ui/planner.js'),
};

/** Re-render everything that shows strings or state. */
function renderAll(app) {
  renderChrome(app);
  renderLogin(app);
  renderKpis(app);
  renderLeft(app);
  renderRight(app);
  renderTime(app);
  if (app.state.page === 'import') lazy.importPage().then((m) => m.renderImportPage(app));
  if (app.state.page === 'dashboard') lazy.indicators().then((m) => m.renderDashboardPage(app));
  if (app.state.page === 'reports') lazy.reports().then((m) => m.renderReportsPage(app));
  if (app.state.page === 'planner') lazy.planner().then((m) => m.renderPlannerPage(app));
}

/** The left panel: the layers, or the sector indicators. */
function renderLeft(app) {
  const left = document.getElementById('left');
  let head = left.querySelector('.lefttabs');
  if (!head) {
    head = el('div', { class: 'tabs lefttabs', role: 'tablist' });
    left.prepend(head);
    left.append(el('div', { id: 'left-layers', class: 'leftbody' }), el('div', { id: 'left-indicators', class: 'leftbody' }));
  }
  head.innerHTML = '';
  for (const [id, label] of [
    ['layers', t('panel.layers')],
    ['indicators', t('panel.indicators')],
  ]) {
    head.append(
      el(
        'button',
        {
          class: `tab${app.state.leftTab === id ? ' active' : ''}`,
          'data-lefttab': id,
          role: 'tab',
          onclick: () => {
            app.state.leftTab = id;
            renderLeft(app);
          },
        },
        label,
      ),
    );
  }
  left.querySelector('#left-layers').hidden = app.state.leftTab !== 'layers';
  left.querySelector('#left-indicators').hidden = app.state.leftTab !== 'indicators';
  renderLayerPanel(app);
  renderRasterTools(app);
  renderFloodPanel(app);
  renderViewSwitch(app);
  if (app.state.leftTab === 'indicators' || app.state.choropleth) lazy.indicators().then((m) => m.renderIndicatorPanel(app));
}

function renderRight(app) {
  const right = document.getElementById('right');
  const tabs = [
    ['details', t('panel.details')],
    ['query', t('panel.query')],
    ['feed', t('panel.feed')],
    ['incidents', t('inc.title')],
  ];
  let head = right.querySelector('.tabs');
  if (!head) {
    head = el('div', { class: 'tabs', role: 'tablist' });
    right.append(head, el('div', { class: 'tabbody', id: 'tab-details' }), el('div', { class: 'tabbody', id: 'tab-query' }), el('div', { class: 'tabbody', id: 'tab-feed' }), el('div', { class: 'tabbody', id: 'tab-incidents' }));
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
  renderChooser(app);
  renderQuery(app);
  renderFeed(app);
  renderIncidents(app);
}

/** Load a small layer whole, or a large layer for the current viewport. */
async function loadLayer(app, layer) {
  const { state } = app;
  const slug = layer.slug;
  if (layer.kind === 'raster') return; // drawn from its own tiles (ui/rasterLayers.js)
  if (state.useTiles && state.tileUrls[slug] && !needsFeatures(layer)) return;
  if (lockedLayer(app, layer)) {
    // a sensitive layer while signed out: the panel says "sign in to see", no error toast
    state.data[slug] = [];
    return;
  }
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
  // a public small layer's features were asked for as soon as the catalog came (main.js)
  const asked = early(app, `features:${slug}`);
  try {
    state.data[slug] = await (asked || loadFeatures(slug, { maxFeatures: SMALL_FETCH_CAP }));
    state.dataVersion[slug] = (state.dataVersion[slug] || 0) + 1;
  } catch (err) {
    state.data[slug] = [];
    if (err.status === 401 || err.status === 403) state.locked[slug] = true;
    else {
      console.warn(err);
      setStatus(`${t('app.error')}: ${layerTitle(layer)}`, 'error');
    }
  } finally {
    state.loading[slug] = false;
  }
}

/** Small layers are always kept as GeoJSON too: KPIs, cones, queries and H3 read them. */
function needsFeatures(layer) {
  return !isLarge(layer);
}

/** Probe TileJSON for every layer once; a layer without tiles falls back to GeoJSON. */
async function detectTiles(app, userKnown = Promise.resolve()) {
  const { state } = app;
  if (!state.caps.tiles || !state.useTiles) return;
  await Promise.all(
    state.catalog.map(async (layer) => {
      if (BASEMAP_SLUGS.has(layer.slug)) return; // maplibre draws these from its own source
      if (layer.kind === 'raster') return; // PNG tiles of its own (ui/rasterLayers.js)
      if (layer.sensitive) {
        // a signed-out visitor would only get a 401 for it: wait to know who is there
        await userKnown;
        if (lockedLayer(app, layer)) {
          state.tileUrls[layer.slug] = null;
          return;
        }
      }
      try {
        if (state.caps.tilejson) {
          const tjUrl = `/tiles/${encodeURIComponent(layer.slug)}.json`;
          const tj = await (early(app, tjUrl) || getJSON(tjUrl));
          const url = (tj.tiles && tj.tiles[0]) || `/tiles/${layer.slug}/{z}/{x}/{y}.mvt`;
          const vl = (tj.vector_layers || [])[0] || {};
          state.tileUrls[layer.slug] = {
            url: relativeTemplate(url),
            minzoom: tj.minzoom,
            maxzoom: tj.maxzoom,
            // a time-enabled layer: {field, extent, parameter, cache_step}; its tiles take datetime=
            time: tj.time && tj.time.parameter ? tj.time : null,
            featureKey: vl.feature_key || null,
          };
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

/**
 * A deck pick; where deck has nothing, the maplibre-drawn feature under the pointer: a native
 * sector layer (parcels), else the ward.
 */
function withWard(app, info) {
  if (!info || info.object || info.x === undefined || info.x < 0) return info;
  const native = nativePick(app.map, app.state, info.x, info.y);
  if (native) return { ...info, ...native, picked: true };
  const ward = wardAt(app.map, info.x, info.y);
  if (!ward) return info;
  return { ...info, object: ward, layer: { id: 'layer-admin_communes' }, picked: true };
}

/**
 * Bring deck's tile layers to the viewport it is about to draw. The overlay redraws deck on
 * every maplibre frame, but a tile layer picks the tiles of a new viewport only in deck's own
 * next animation frame, which then draws everything a second time: two draws of every layer per
 * frame while the map moves. Updating the tile layers here makes the first draw the right one.
 */
function refreshTiles(overlay) {
  const deck = overlayDeck(overlay);
  const manager = layerManager(overlay);
  if (!manager) return;
  const [viewport] = deck.getViewports();
  if (viewport) for (const layer of manager.getLayers()) activateViewport(layer, viewport);
  if (manager.needsUpdate()) {
    manager.updateLayers();
    // about to draw those very layers: nothing is left for deck's own loop to redraw
    manager.needsRedraw({ clearRedrawFlags: true });
  }
}

/**
 * A click on the map: deck's object, else the maplibre feature under the pointer; where a dense
 * layer is only a picture (its PNG overview, below z15) the API says which of its features is
 * there, and only where there is none does the click open the ward.
 */
function clickMap(app, info) {
  // overlapping features: the camera first, a chooser for the others (ui/picker.js)
  const picks = picksAt(app, info);
  if (picks.length) {
    openPicks(app, picks);
    return;
  }
  app.state.pickChoices = null;
  const picked = withWard(app, info);
  const dense = info && !info.object && !(picked && picked.native) && info.coordinate ? denseRasterLayers(app.map, app.state) : [];
  if (!dense.length) {
    showDetails(app, picked);
    return;
  }
  // the pointer rested there: the hover already asked
  const hovered = denseHover(app, info);
  if (hovered) {
    showDetails(app, { ...info, ...hovered, picked: true });
    return;
  }
  app.aborts.densePick?.abort();
  const ctrl = new AbortController();
  app.aborts.densePick = ctrl;
  pickDense(app.map, dense, info.coordinate, ctrl.signal)
    .then((hit) => {
      if (!ctrl.signal.aborted) showDetails(app, hit ? { ...info, ...hit, picked: true } : picked);
    })
    .catch((err) => {
      if (err.name === 'AbortError') return;
      console.warn(err);
      showDetails(app, picked);
    });
}

// A pointer resting this long over a dense layer's PNG overview asks the API which feature is
// there, for the tooltip and the hover outline (never on every pointer move).
const DENSE_HOVER_MS = 200;

/**
 * The feature of a dense layer drawn from its PNG overview under a resting pointer: the last
 * lookup's answer when the pointer is still where it was asked (null otherwise), and a new lookup
 * scheduled when it has moved. When an answer arrives deck is asked for the tooltip again.
 */
function denseHover(app, info) {
  const h = (app.denseHover = app.denseHover || { x: -1, y: -1, pick: null, timer: null, ctrl: null });
  const eligible = info && info.x >= 0 && !info.object && info.coordinate;
  if (eligible && h.x === info.x && h.y === info.y) return h.pick;
  clearTimeout(h.timer);
  h.ctrl?.abort();
  Object.assign(h, { x: -1, y: -1, pick: null, ctrl: null });
  const dense = eligible ? denseRasterLayers(app.map, app.state) : [];
  if (!dense.length) return null;
  Object.assign(h, { x: info.x, y: info.y });
  h.timer = setTimeout(() => {
    const ctrl = new AbortController();
    h.ctrl = ctrl;
    pickDense(app.map, dense, info.coordinate, ctrl.signal)
      .then((pick) => {
        if (ctrl.signal.aborted || !pick) return;
        h.pick = pick;
        // the same pointer position again: deck picks, getTooltip finds the answer above
        replayPointerMove(app.overlay, info.x, info.y);
      })
      .catch(() => {});
  }, DENSE_HOVER_MS);
  return null;
}

/**
 * "Zoom in to see individual parcels" while a dense layer is drawn from its PNG overview. Called
 * on every move: it touches the page only when the answer (or the language) changes.
 */
function renderZoomHint(app) {
  const on = denseRasterLayers(app.map, app.state).length > 0;
  const key = on ? `on|${lang()}` : 'off';
  if (key === app.zoomHint) return;
  app.zoomHint = key;
  let hint = document.getElementById('zoom-hint');
  if (!hint) {
    hint = el('div', { id: 'zoom-hint', class: 'map-hint', role: 'status' });
    document.getElementById('mapview').append(hint);
  }
  hint.hidden = !on;
  hint.textContent = on ? t('map.zoom_dense') : '';
}

/**
 * Hide deck's canvas while it has nothing to draw (every sector layer drawn by maplibre, no
 * selection, query or H3 view): the browser then neither reads it back nor composites it each
 * frame. Only the canvas: deck's tooltip lives in the same container and still shows.
 */
function showDeckCanvas(overlay, on) {
  const deck = overlayDeck(overlay);
  const canvas = deck && deck.getCanvas();
  if (canvas) canvas.style.visibility = on ? '' : 'hidden';
}

/** Wire the overlay, the map events and the panels; then load the sector layers. */
export async function start(app, prefetch) {
  const { map } = app;
  let deckLayers = [];
  app.redraw = () => {
    syncBasemap(map, app.state);
    syncNative(map, app.state);
    renderZoomHint(app);
    deckLayers = [...buildLayers(app.state), ...incidentLayers(app)];
    if (app.overlay) {
      app.overlay.setProps({ layers: deckLayers });
      // a layer over an empty array (a locked layer, no cameras) draws nothing either
      // (the 3D terrain has no `data`: its tiles come from elevationData)
      showDeckCanvas(app.overlay, deckLayers.some((l) => !Array.isArray(l.props.data) || l.props.data.length > 0 || l.id === 'terrain-3d'));
    }
  };
  app.update = () => {
    app.redraw();
    renderAll(app);
  };
  // a layer whose deck.gl class is in the lazily loaded chunk is drawn once that arrives
  onDeckExtras(() => app.redraw());
  app.renderRight = () => renderRight(app);
  app.renderLeft = () => renderLeft(app);
  app.renderPanels = () => renderAll(app);
  app.setStatus = setStatus;
  app.lazy = lazy;
  app.flyTo = (lonlat, zoom = 15) => map.flyTo({ center: lonlat, zoom: Math.max(map.getZoom(), zoom), speed: 1.6 });
  app.fitBounds = (bbox) => map.fitBounds([[bbox[0], bbox[1]], [bbox[2], bbox[3]]], { padding: window.innerWidth < 700 ? 30 : { top: 40, bottom: 90, left: 310, right: 370 }, maxZoom: 16, duration: 800 });
  app.loadLayer = (layer) => loadLayer(app, layer);

  document.getElementById('lang-toggle').addEventListener('click', () => setLang(lang() === 'vi' ? 'en' : 'vi'));
  document.getElementById('nav-map').addEventListener('click', () => {
    location.hash = '';
  });
  document.getElementById('nav-dashboard').addEventListener('click', () => {
    location.hash = '#/dashboard';
  });
  document.getElementById('nav-import').addEventListener('click', () => {
    location.hash = '#/import';
  });
  document.getElementById('nav-reports').addEventListener('click', () => {
    location.hash = '#/reports';
  });
  document.getElementById('nav-planner').addEventListener('click', () => {
    location.hash = '#/planner';
  });
  const followHash = () => {
    app.state.page = pageOf(location.hash);
    renderAll(app);
    // the first time the map is shown after opening on another page, its first view is set now
    if (app.state.page === 'map' && !showPendingView(app)) map.resize();
  };
  window.addEventListener('hashchange', followHash);
  // the back button to an entry the URL state rewrote (replaceState) may bring another page
  // without a hashchange
  window.addEventListener('popstate', () => {
    if (pageOf(location.hash) !== app.state.page) followHash();
  });
  onLang(() => app.update());

  const overlay = new MapboxOverlay({
    // interleaved mode (deck in maplibre's own context) throws with maplibre 6 here: two canvases
    interleaved: false,
    layers: [],
    // deck's own defaults are a 4x multisampled canvas kept between frames (preserveDrawingBuffer):
    // on a software renderer both cost a pass over every pixel of that canvas each frame, and
    // the points smooth their own edges in the shader anyway
    deviceProps: { webgl: { antialias: false, preserveDrawingBuffer: false, stencil: false } },
    // draw each frame once, with the tiles of the new viewport (see refreshTiles)
    onBeforeRender: () => refreshTiles(overlay),
    getTooltip: (info) => {
      const incidentTip = incidentTooltip(info);
      if (incidentTip) return incidentTip;
      let picked = withWard(app, info);
      if (!(picked && picked.native)) {
        const dense = denseHover(app, info);
        if (dense) picked = { ...info, ...dense, picked: true };
      }
      hoverWard(map, picked && picked.object && picked.layer.id === 'layer-admin_communes' && !(info && info.object) ? picked.object : null);
      hoverNative(map, picked);
      return tooltipFor(app, picked);
    },
    onClick: (info) => {
      if (app.state.draw.mode || app.measuring || incidentPicking(app)) return;
      if (info && info.coordinate && floodClick(app, info.coordinate.slice(0, 2))) return;
      clickMap(app, info);
    },
  });
  app.overlay = overlay;
  map.addControl(overlay);
  map.on('mouseout', () => {
    hoverWard(map, null);
    hoverNative(map, null);
  });
  // a failed tile of a native layer is logged, never thrown at the page
  map.on('error', (e) => console.warn('map error', e && e.error ? e.error.message : e));
  map.on('click', (e) => {
    if (incidentMapClick(app, [e.lngLat.lng, e.lngLat.lat])) return;
    if (app.state.draw.mode) handleQueryClick(app, [e.lngLat.lng, e.lngLat.lat]);
  });
  map.on('dblclick', (e) => {
    if (app.state.draw.mode) handleQueryDblClick(app);
    else map.easeTo({ center: e.lngLat, zoom: map.getZoom() + 1 });
  });

  const onView = debounce(async () => {
    // a chained animation is running (its next moveend comes back here): no data loading and
    // panel rebuilding in the middle of it
    if (map.isMoving()) return;
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
    renderZoomHint(app);
    // deck's layers follow at once; the layer panel's "zoom in" notes at moveend (onView), so
    // the page's DOM is not rebuilt in the middle of a movement
    if (crossed) app.redraw();
  });
  map.on('moveend', onView);

  // the tool bar's chunk downloads while the catalog and the layers load (wired at the end)
  const toolsChunk = import('./ui/tools.js');
  toolsChunk.catch(() => {});
  const [caps, catalog] = await Promise.all([prefetch.caps, prefetch.catalog]);
  mark('catalog');
  app.state.caps = caps;
  app.state.catalog = catalog;
  app.state.basemapTiles = !!caps.tiles;
  for (const layer of catalog) {
    app.state.bySlug[layer.slug] = layer;
    // rasters cover the whole province: off until asked for
    app.state.visible[layer.slug] = layer.kind !== 'raster';
    app.state.opacity[layer.slug] = layer.kind === 'raster' ? 0.8 : 1;
  }
  // a shared link names the visible layers (?l=…): only those load
  const wanted = layersFromUrl();
  if (wanted) for (const layer of catalog) app.state.visible[layer.slug] = wanted.has(layer.slug);
  app.state.zoom = map.getZoom();
  const b = map.getBounds();
  app.state.bounds = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
  const userKnown = loadUser(app);
  await Promise.all([userKnown, detectTiles(app, userKnown), userKnown.then(() => initRasters(app))]);
  mark('user-tiles');
  initTime(app);
  initH3(app);
  initQuery(app);
  renderAll(app);
  app.redraw();
  setStatus('');
  await Promise.all(catalog.map((l) => loadLayer(app, l).then(() => app.redraw())));
  mark('layers');
  initTime(app);
  app.update();
  initFeed(app);
  initIncidents(app);
  loadIndicators(app);
  startCameraStatus(app);
  // search, URL state, labels, measure, table, print, views, phone sheets (own chunk)
  try {
    const tools = await toolsChunk;
    mark('tools-chunk');
    await tools.initTools(app);
  } catch (err) {
    console.error(err);
  }
  mark('ready');
  window.__iocmap.ready = true;
  document.body.dataset.ready = '1';
}
