// The operations room's video wall: the map full screen with large type, the province KPIs
// above it and the open alerts beside it, rotating through the user's saved views (or, with
// none saved, the province, Vinh and Cửa Lò). ?wall=1 opens it; Escape or the button leaves.

import { fmtDate, t } from '../i18n.js';
import { el } from '../util.js';
import { applyState } from './urlState.js';
import { listViews } from './views.js';

const DEFAULT_ROTATE_S = 30;
// built-in views for a wall with no saved ones: the province, the capital, the coast
const BUILTIN = [
  { key: 'views.builtin.province', state: 'c=104.84,19.25&z=7.6', rotate_s: DEFAULT_ROTATE_S },
  { key: 'views.builtin.vinh', state: 'c=105.68,18.68&z=11.6', rotate_s: DEFAULT_ROTATE_S },
  { key: 'views.builtin.cualo', state: 'c=105.72,18.81&z=12.4', rotate_s: DEFAULT_ROTATE_S },
];

function renderAlerts(app) {
  const box = document.getElementById('wall-alerts');
  if (!box) return;
  const items = (app.state.feed || []).filter((f) => !f.acked).slice(0, 12);
  box.innerHTML = '';
  box.append(el('h2', {}, t('wall.alerts')));
  if (!items.length) box.append(el('p', { class: 'muted' }, t('wall.no_alerts')));
  const ul = el('ul', { class: 'wall-list' });
  for (const f of items) ul.append(el('li', { class: f.kind || '' }, el('div', { class: 'ftitle' }, f.title || f.text || ''), el('div', { class: 'muted small' }, fmtDate(f.time || f.at || f.created_at))));
  box.append(ul);
}

/** Enter the video wall. */
export async function enterWall(app) {
  if (app.wall) return;
  const wall = (app.wall = { index: -1, timer: null, tick: null, views: [], onKey: null, alertsTimer: null });
  document.body.classList.add('wall');
  const p = new URLSearchParams(location.search);
  p.set('wall', '1');
  history.replaceState(history.state, '', `${location.pathname}?${p}${location.hash}`);
  const side = el('aside', { id: 'wall-alerts', class: 'panel wall-alerts', 'aria-live': 'polite' });
  const caption = el('div', { id: 'wall-caption', class: 'panel wall-caption' });
  const exit = el('button', { type: 'button', id: 'wall-exit', class: 'btn wall-exit', onclick: () => leaveWall(app) }, t('wall.exit'));
  document.getElementById('mapview').append(side, caption, exit);
  try {
    if (document.fullscreenEnabled && !document.fullscreenElement) await document.documentElement.requestFullscreen();
  } catch {
    // not from a user gesture (?wall=1): the wall still fills the window
  }
  wall.onKey = (e) => {
    if (e.key === 'Escape' && !document.querySelector('[role="dialog"]')) leaveWall(app);
  };
  document.addEventListener('keydown', wall.onKey);
  const saved = await listViews(app);
  wall.views = saved.length ? saved : BUILTIN.map((v) => ({ ...v, name: t(v.key) }));
  app.map.resize();
  renderAlerts(app);
  wall.alertsTimer = setInterval(() => renderAlerts(app), 5000);
  next(app);
}

async function next(app) {
  const wall = app.wall;
  if (!wall) return;
  wall.index = (wall.index + 1) % wall.views.length;
  const view = wall.views[wall.index];
  // the view's place, layers and mode; never its own wall flag or another theme
  await applyState(app, `?${view.state}`, { animate: true });
  const secs = Math.max(5, view.rotate_s || DEFAULT_ROTATE_S);
  let left = secs;
  const caption = document.getElementById('wall-caption');
  const show = () => {
    if (caption) caption.textContent = `${view.name} · ${wall.index + 1}/${wall.views.length} · ${t('wall.next_in', { s: left })}`;
  };
  show();
  clearInterval(wall.tick);
  wall.tick = setInterval(() => {
    left -= 1;
    show();
  }, 1000);
  clearTimeout(wall.timer);
  wall.timer = setTimeout(() => next(app), secs * 1000);
  document.body.dataset.wallRotations = String((Number(document.body.dataset.wallRotations) || 0) + 1);
}

/** Leave the video wall. */
export function leaveWall(app) {
  const wall = app.wall;
  if (!wall) return;
  clearTimeout(wall.timer);
  clearInterval(wall.tick);
  clearInterval(wall.alertsTimer);
  document.removeEventListener('keydown', wall.onKey);
  app.wall = null;
  document.body.classList.remove('wall');
  for (const id of ['wall-alerts', 'wall-caption', 'wall-exit']) document.getElementById(id)?.remove();
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  const p = new URLSearchParams(location.search);
  p.delete('wall');
  history.replaceState(history.state, '', `${location.pathname}?${p}${location.hash}`);
  app.map.resize();
}
