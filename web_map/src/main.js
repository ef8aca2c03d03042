// IOC Map web map: the entry bundle. It holds only maplibre, the shell and the basemap, so
// the province and ward boundaries paint first; deck.gl, the sector layers and the panels
// come in a second chunk (app.js) loaded right after.

import * as maplibregl from 'maplibre-gl';
import 'maplibre-gl/dist/maplibre-gl.css';

import './app.css';
import './ui/mapux.css';
import { detectCapabilities, getJSON } from './api.js';
import { deckLayers } from './internals.js';
import { basemapDrawn, basemapStyle } from './basemap.js';
import { motionResolution } from './motion.js';
import { initLang, lang, setLang, t } from './i18n.js';
import { initialTheme, viewFromUrl } from './ui/urlView.js';
import { HOME_PADDING, NGHE_AN_BOUNDS, buildShell, initialState, renderChrome, setStatus } from './shell.js';

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
        const busy = Object.values(app.state.loading).some(Boolean);
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

  const map = new maplibregl.Map({
    container: 'map',
    style: basemapStyle(location.origin),
    // a shared link's view (?c=lon,lat&z=zoom), else the province, leaving room for the layer
    // panel (left), details (right) and the time bar (bottom)
    ...(viewFromUrl() || { bounds: NGHE_AN_BOUNDS, fitBoundsOptions: { padding: HOME_PADDING } }),
    attributionControl: false,
    maxPitch: 60,
    dragRotate: false,
    renderWorldCopies: false,
    fadeDuration: 0,
  });
  app.map = map;
  app.lowResMotion = motionResolution(app);
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  map.doubleClickZoom.disable();
  const drawn = basemapDrawn(map).then((ms) => {
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
  try {
    const { start } = await import('./mapapp.js');
    await start(app, prefetch);
  } catch (err) {
    console.error(err);
    setStatus(`${t('app.error')}: ${err.message}`, 'error');
    document.body.dataset.ready = 'error';
  }
}

boot();
