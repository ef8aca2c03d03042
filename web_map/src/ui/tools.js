// The map's tool bar (search, measure, attribute table, print/share, saved views, theme,
// video wall), the phone layout's bottom bar and sheets, the URL state and the labels. Loaded
// after the first view is ready: nothing here is needed for the first paint.

import { t, onLang } from '../i18n.js';
import { el } from '../util.js';
import { installDialogKeys } from './dialog.js';
import { initLabels } from './labels.js';
import { buildSearch } from './search.js';
import { initTheme, setTheme, theme } from './theme.js';
import { applyState, initUrlState } from './urlState.js';

const NARROW_PX = 700;
const lazy = {
  measure: () => import('./measure.js'),
  table: () => import('./attrTable.js'),
  print: () => import('./print.js'),
  views: () => import('./views.js'),
  wall: () => import('./videowall.js'),
};

/** True on a phone-sized screen. */
export function narrow() {
  return window.innerWidth < NARROW_PX;
}

const TOOLS = [
  ['measure', '↔'],
  ['table', '▦'],
  ['print', '⎙'],
  ['views', '★'],
  ['theme', '◐'],
  ['wall', '⛶'],
];

async function runTool(app, id, btn) {
  setSheet(app, null);
  if (id === 'measure') {
    const m = await lazy.measure();
    if (app.measuring) m.stopMeasure(app);
    else {
      m.startMeasure(app);
      btn?.classList.add('active');
    }
  } else if (id === 'table') {
    const m = await lazy.table();
    if (document.getElementById('attr-table')) m.closeTable(app);
    else {
      m.openTable(app);
      btn?.classList.add('active');
    }
  } else if (id === 'print') (await lazy.print()).openPrint(app);
  else if (id === 'views') (await lazy.views()).openViews(app);
  else if (id === 'theme') setTheme(app, theme() === 'light' ? 'dark' : 'light');
  else if (id === 'wall') (await lazy.wall()).enterWall(app);
}

function toolButton(app, id, icon) {
  const b = el('button', { type: 'button', class: 'toolbtn', id: `tool-${id}`, 'data-tool': id }, el('span', { class: 'ti', 'aria-hidden': 'true' }, icon), el('span', { class: 'tl' }, ''));
  b.addEventListener('click', () => runTool(app, id, b));
  return b;
}

function relabel(app) {
  for (const [id] of TOOLS) {
    const b = document.getElementById(`tool-${id}`);
    if (!b) continue;
    const label = id === 'theme' ? t(theme() === 'light' ? 'tools.theme_dark' : 'tools.theme_light') : t(`tools.${id}`);
    b.querySelector('.tl').textContent = label;
    b.title = label;
    b.setAttribute('aria-label', label);
  }
  for (const [id, key] of [
    ['sheet-btn-left', 'panel.layers'],
    ['sheet-btn-right', 'panel.details'],
    ['sheet-btn-tools', 'tools.more'],
  ]) {
    const b = document.getElementById(id);
    if (b) b.textContent = t(key);
  }
  app.searchBox?.relabel();
}

/** Phone: which sheet is open ('left', 'right', 'tools' or null); one at a time. */
export function setSheet(app, which) {
  app.sheet = which;
  for (const s of ['left', 'right', 'tools']) {
    document.body.classList.toggle(`sheet-${s}`, which === s);
    const b = document.getElementById(`sheet-btn-${s}`);
    if (b) b.setAttribute('aria-expanded', String(which === s));
  }
  if (narrow()) app.map.resize();
}

function buildPhoneBar(app) {
  const bar = el('nav', { id: 'phonebar', class: 'phonebar', 'aria-label': t('tools.more') });
  for (const s of ['left', 'right', 'tools']) {
    bar.append(el('button', { type: 'button', class: 'sheetbtn', id: `sheet-btn-${s}`, 'aria-expanded': 'false', onclick: () => setSheet(app, app.sheet === s ? null : s) }));
  }
  const sheet = el('div', { id: 'tools-sheet', class: 'panel tools-sheet' });
  // the header's page buttons, reachable on a phone from the tools sheet
  for (const id of ['nav-map', 'nav-dashboard', 'nav-import']) {
    const orig = document.getElementById(id);
    if (!orig || orig.hidden) continue;
    const b = el('button', { type: 'button', class: 'toolbtn', 'data-nav': id, onclick: () => { setSheet(app, null); orig.click(); } }, orig.textContent);
    sheet.append(b);
  }
  document.getElementById('mapview').append(bar);
  document.body.append(sheet);
  return sheet;
}

/** Wire everything; called once the map app is ready. */
export async function initTools(app) {
  installDialogKeys();
  initTheme(app);
  const bar = el('div', { id: 'maptools', class: 'maptools' });
  app.searchBox = buildSearch(app);
  const buttons = el('div', { class: 'toolbtns' }, TOOLS.map(([id, icon]) => toolButton(app, id, icon)));
  bar.append(app.searchBox, buttons);
  document.getElementById('mapview').append(bar);
  const sheet = buildPhoneBar(app);
  // on a phone the tool buttons live in the tools sheet
  const place = () => {
    if (narrow()) sheet.prepend(buttons);
    else bar.append(buttons);
  };
  place();
  window.addEventListener('resize', place);
  relabel(app);
  onLang(() => relabel(app));
  initLabels(app);
  // a phone opens the details sheet when something is selected
  let lastSel = app.state.selected;
  const redraw = app.redraw;
  app.redraw = (...args) => {
    redraw(...args);
    if (app.state.selected !== lastSel) {
      lastSel = app.state.selected;
      if (lastSel && narrow()) setSheet(app, 'right');
    }
  };
  app.map.on('click', () => {
    if (narrow() && app.sheet === 'left') setSheet(app, null);
  });
  const themeObserver = new MutationObserver(() => relabel(app));
  themeObserver.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
  // a shared link's mode, time window and selection (its view and layers were applied at load)
  const own = new URLSearchParams(location.search);
  if (['m', 'ind', 't', 'sel'].some((k) => own.has(k))) await applyState(app, location.search);
  initUrlState(app);
  app.redraw();
  if (new URLSearchParams(location.search).get('wall') === '1') (await lazy.wall()).enterWall(app);
}
