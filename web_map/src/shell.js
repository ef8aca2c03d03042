// The page shell and the shared state object: part of the small entry bundle, so the chrome
// and the basemap show before deck.gl and the panels have loaded.

import { t } from './i18n.js';
import { el } from './util.js';

// a phone has no room beside the panels (they are bottom sheets there): fit with a small margin
export const HOME_PADDING = typeof window !== 'undefined' && window.innerWidth < 700 ? { top: 20, bottom: 70, left: 16, right: 16 } : { top: 30, bottom: 90, left: 300, right: 360 };
export const NGHE_AN_BOUNDS = [
  [103.87, 18.55],
  [105.82, 20.0],
];

/** True when the map's container has a size (it has none while another page is shown). */
export function mapShown(map) {
  const c = map.getContainer();
  return c.clientWidth > 0 && c.clientHeight > 0;
}

/**
 * Opened on another page (e.g. /#/reports), the map is created in a hidden container, which
 * maplibre lays out at a stand-in 400×300: the province does not fit (the world is shown) and
 * even a shared link's centre and zoom are those of a tiny map. Remember the first view
 * (`view`: a link's {center, zoom}, or null for the province) and apply it when the map is
 * first shown: on the page switch (mapapp.js) or on maplibre's own resize.
 */
export function deferFirstView(app, view) {
  if (mapShown(app.map)) return;
  app.pendingView = { view };
  app.map.on('resize', () => showPendingView(app));
}

/** Apply the view remembered by deferFirstView once the map has a size; true if it did. */
export function showPendingView(app) {
  const { map } = app;
  if (!app.pendingView || !mapShown(map)) return false;
  const { view } = app.pendingView;
  // cleared first: the resize below fires 'resize', which comes back here
  app.pendingView = null;
  map.resize();
  if (view) map.jumpTo(view);
  else map.fitBounds(NGHE_AN_BOUNDS, { padding: HOME_PADDING, duration: 0 });
  // the first real view replaces the URL's entry rather than adding a step to go back to
  app.replaceUrlOnce = true;
  app.urlChanged?.();
  return true;
}

/** The single state object every panel reads and writes through app.update(). */
export function initialState() {
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
    locked: {},
    zoom: 8,
    bounds: null,
    caps: null,
    useTiles: params.get('tiles') !== '0',
    // decode vector tiles in workers (off the main thread) unless ?workers=0
    mvtWorkers: typeof Worker !== 'undefined' && params.get('workers') !== '0',
    tileUrls: {},
    // dense polygon/line layers are drawn by maplibre from their tiles; ?renderer=deck draws
    // them with deck.gl MVTLayers instead (the comparison the web map benchmark makes)
    renderer: params.get('renderer') === 'deck' ? 'deck' : 'native',
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
    leftTab: 'layers',
    choropleth: null,
    page: pageOf(location.hash),
  };
}

/** The page of a location hash: the import page, a sector dashboard, or the map. */
export function pageOf(hash) {
  if (hash === '#/import') return 'import';
  if (hash.startsWith('#/reports')) return 'reports';
  if (hash.startsWith('#/planner')) return 'planner';
  if (hash.startsWith('#/dashboard')) return 'dashboard';
  return 'map';
}

/** The header, the map area with its panels, and the full-page sections. */
export function buildShell() {
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
        el('button', { id: 'nav-dashboard', class: 'navbtn' }),
        el('button', { id: 'nav-import', class: 'navbtn' }),
        el('button', { id: 'nav-reports', class: 'navbtn' }),
        el('button', { id: 'nav-planner', class: 'navbtn' }),
        el('button', { id: 'login-btn', class: 'navbtn', hidden: true }),
        el('button', { id: 'lang-toggle', class: 'langbtn' }),
      ),
    ),
    el('main', { id: 'mapview' }, el('div', { id: 'map' }), el('aside', { id: 'left', class: 'panel' }), el('aside', { id: 'right', class: 'panel' }), el('div', { id: 'timebar', class: 'panel', hidden: true }), el('div', { id: 'choro-legend', class: 'panel', hidden: true }), el('div', { id: 'status', class: 'status' })),
    el('section', { id: 'importpage', hidden: true }),
    el('section', { id: 'dashpage', hidden: true }),
    el('section', { id: 'reportspage', hidden: true }),
    el('section', { id: 'plannerpage', hidden: true }),
  );
}

/** Title, navigation and language button in the active language. */
export function renderChrome(app) {
  document.title = t('app.title');
  document.getElementById('brand-title').textContent = t('app.title');
  document.getElementById('brand-sub').textContent = t('app.subtitle');
  const nav = { map: 'nav-map', dashboard: 'nav-dashboard', import: 'nav-import', reports: 'nav-reports', planner: 'nav-planner' };
  for (const [page, id] of Object.entries(nav)) {
    const b = document.getElementById(id);
    b.textContent = t(`nav.${page}`);
    b.classList.toggle('active', app.state.page === page);
  }
  // pages a role has no use for are not offered (the API refuses them anyway)
  const role = app.state.user ? app.state.user.role : null;
  document.getElementById('nav-import').hidden = !!role && !['gis_staff', 'leader', 'admin'].includes(role);
  document.getElementById('nav-planner').hidden = role === 'citizen';
  const lt = document.getElementById('lang-toggle');
  lt.textContent = t('lang.switch');
  lt.title = t('lang.switch_title');
  document.body.dataset.page = app.state.page;
  document.getElementById('mapview').hidden = app.state.page !== 'map';
  document.getElementById('importpage').hidden = app.state.page !== 'import';
  document.getElementById('dashpage').hidden = app.state.page !== 'dashboard';
  document.getElementById('reportspage').hidden = app.state.page !== 'reports';
  document.getElementById('plannerpage').hidden = app.state.page !== 'planner';
}

/** The status line at the bottom of the map. */
export function setStatus(text, kind = '') {
  const s = document.getElementById('status');
  if (!s) return;
  s.textContent = text || '';
  s.className = `status ${kind}`;
  s.hidden = !text;
}
