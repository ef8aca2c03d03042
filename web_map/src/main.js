// IOC Map web map: the entry bundle. It holds only maplibre, the shell and the basemap, so
// the province and ward boundaries paint first; deck.gl, the sector layers and the panels
// come in a second chunk (app.js) loaded right after.

import * as maplibregl from 'maplibre-gl';
import 'maplibre-gl/dist/maplibre-gl.css';

import './app.css';
import './ui/mapux.css';
import { detectCapabilities, getJSON, loadFeatures, askEarly } from './api.js';
import { SMALL_FETCH_CAP, isLarge } from './style.js';
import { deckLayers } from './internals.js';
import { deckExtrasPending } from './lazyDeck.js';
import { BASEMAP_SLUGS, basemapDrawn, basemapStyle } from './basemap.js';
import { motionResolution } from './motion.js';
import { initLang, lang, setLang, t } from './i18n.js';
import { mark } from './util.js';
import { initialTheme, viewFromUrl } from './ui/urlView.js';
import { HOME_PADDING, NGHE_AN_BOUNDS, buildShell, deferFirstView, initialState, renderChrome, setStatus } from './shell.js';

// the app chunk waits for the basemap (it would compete for the one main thread), but never longer
const APP_CHUNK_WAIT_MS = 1500;

/** The test and console hook: the app, language, projection and "is everything loaded". */
function installHook(app) {
  window.__iocmap = {
    app,
    ready: false,
    basemapAt: null,
    lang,
    setLang,
    project: (lonlat) => {
      const p = app.map.project(lonlat);
      const r = app.map.getContainer().getBoundingClientRect();
      return [p.x + r.left, p.y + r.top];
    },
    jumpTo: (center, zoom) => app.map.jumpTo({ center, zoom }),
    /** Who draws the land parcels now: 'maplibre', 'deck' or null. */
    parcelsRenderer: () => {
      const map = app.map;
      if (map.getLayer('native-land_parcels-fill') && map.getLayoutProperty('native-land_parcels-fill', 'visibility') === 'visible') return 'maplibre';
      const ids = deckLayers(app.overlay).map((l) => l.id);
      return ids.some((i) => i.startsWith('layer-land_parcels')) ? 'deck' : null;
    },
    /** The data of the deck layer drawn under this id now (null when none is drawn). */
    deckData: (id) => {
      const found = deckLayers(app.overlay).find((l) => l.id === id);
      return found ? found.props.data : null;
    },
    home: () => app.map.fitBounds(NGHE_AN_BOUNDS, { padding: HOME_PADDING, duration: 0 }),
    idle: () => new Promise((resolve) => (app.map.loaded() && !app.map.isMoving() ? resolve(true) : app.map.once('idle', () => resolve(true)))),
    /** Resolves once the map stopped moving, viewport data arrived and every deck layer (and tile) loaded. */
    settled: async (timeoutMs = 90000) => {
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const start = Date.now();
      while (!app.overlay && Date.now() - start < timeoutMs) await sleep(50);
      await window.__iocmap.idle();
      await sleep(400); // the moveend debounce
      while (Date.now() - start < timeoutMs) {
        const layers = deckLayers(app.overlay);
        const busy = Object.values(app.state.loading).some(Boolean) || deckExtrasPending();
        if (!busy && layers.every((l) => l.isLoaded) && app.map.loaded()) {
          await sleep(150);
          return true;
        }
        await sleep(100);
      }
      const waiting = deckLayers(app.overlay).filter((l) => !l.isLoaded).map((l) => l.id);
      const loading = Object.keys(app.state.loading).filter((k) => app.state.loading[k]);
      return `not settled: layers ${waiting.join(',')} loading ${loading.join(',')}`;
    },
  };
}

/**
 * Fetch, at idle priority, the chunks imported once the basemap is drawn (the app and the tool
 * bar, listed by the build in index.html): their download then overlaps the basemap's tiles.
 */
function prefetchLaterChunks() {
  let urls = [];
  try {
    urls = JSON.parse(document.getElementById('later-chunks')?.textContent || '[]');
  } catch {
    urls = [];
  }
  for (const href of urls) {
    document.head.append(Object.assign(document.createElement('link'), { rel: 'prefetch', href, as: 'script', crossOrigin: 'anonymous' }));
  }
}

async function boot() {
  // eslint-disable-next-line no-undef
  maplibregl.setWorkerUrl(__MAPLIBRE_WORKER_URL__);
  initLang();
  initialTheme();
  buildShell();
  const app = { state: initialState(), aborts: {}, map: null, overlay: null, Popup: maplibregl.Popup };
  installHook(app);
  renderChrome(app);
  setStatus(t('app.loading'));

  const linked = viewFromUrl();
  const container = document.getElementById('map');
  // opened on another page, the map's container has no size: no fit now (it could only fail),
  // the province is fitted when the map is first shown (deferFirstView below)
  const hidden = !container.clientWidth || !container.clientHeight;
  const home = hidden ? { center: [(NGHE_AN_BOUNDS[0][0] + NGHE_AN_BOUNDS[1][0]) / 2, (NGHE_AN_BOUNDS[0][1] + NGHE_AN_BOUNDS[1][1]) / 2], zoom: 7 } : { bounds: NGHE_AN_BOUNDS, fitBoundsOptions: { padding: HOME_PADDING } };
  const map = new maplibregl.Map({
    container,
    style: basemapStyle(location.origin),
    // a shared link's view (?c=lon,lat&z=zoom), else the province, leaving room for the layer
    // panel (left), details (right) and the time bar (bottom)
    ...(linked || home),
    attributionControl: false,
    maxPitch: 60,
    dragRotate: false,
    renderWorldCopies: false,
    fadeDuration: 0,
  });
  app.map = map;
  // opened on another page: the map has no size yet, its view is set when first shown
  deferFirstView(app, linked);
  app.lowResMotion = motionResolution(app);
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  map.doubleClickZoom.disable();
  prefetchLaterChunks();
  const drawn = basemapDrawn(map).then((ms) => {
    mark('basemap');
    window.__iocmap.basemapAt = ms;
    document.body.dataset.basemap = '1';
    setStatus(t('app.loading'));
    return ms;
  });
  await Promise.race([drawn, new Promise((r) => setTimeout(r, APP_CHUNK_WAIT_MS))]);
  // the catalog and the server's capabilities load with the app chunk, after the basemap's
  // tiles: on a busy server they would otherwise queue in front of them
  const prefetch = {
    caps: detectCapabilities(),
    catalog: getJSON('/api/layers'),
  };
  prefetch.catalog.catch(() => {});
  // who is there, the public small layers' features and the public layers' TileJSON are asked
  // for as soon as the catalog is in, while the app chunk is still being read (mapapp.js and
  // login.js take the answers with api.js `early`)
  app.prefetched = {};
  Promise.all([prefetch.caps, prefetch.catalog])
    .then(([caps, catalog]) => {
      if (caps.paths['/api/auth/me']) askEarly(app, '/api/auth/me', getJSON('/api/auth/me'));
      for (const layer of catalog) {
        if (layer.sensitive || layer.kind === 'raster') continue;
        if (!isLarge(layer)) askEarly(app, `features:${layer.slug}`, loadFeatures(layer.slug, { maxFeatures: SMALL_FETCH_CAP }));
        if (caps.tilejson && app.state.useTiles && !BASEMAP_SLUGS.has(layer.slug)) {
          const url = `/tiles/${encodeURIComponent(layer.slug)}.json`;
          askEarly(app, url, getJSON(url));
        }
      }
    })
    .catch(() => {});
  try {
    const { start } = await import('./mapapp.js');
    mark('app-chunk');
    await start(app, prefetch);
  } catch (err) {
    console.error(err);
    setStatus(`${t('app.error')}: ${err.message}`, 'error');
    document.body.dataset.ready = 'error';
  }
}

boot();
