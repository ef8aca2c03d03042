// Time slider with play for the time-enabled layers (field reports, events, sensors...).
// It sets state.time {from,to}; layers filter on the GPU, H3 re-aggregates.

import { fmtDate, layerTitle, t } from '../i18n.js';
import { el } from '../util.js';
import { refreshH3 } from './h3view.js';

const DAY = 86400000;
const WINDOWS = [7, 30, 90, 0]; // 0 = whole extent

function timeLayers(state) {
  return state.catalog.filter((l) => l.time_field && state.visible[l.slug]);
}

/** Compute the extent from the catalog (time_extent) or, failing that, the loaded features. */
export function initTime(app) {
  const { state } = app;
  let min = Infinity;
  let max = -Infinity;
  for (const layer of state.catalog.filter((l) => l.time_field)) {
    if (layer.time_extent) {
      min = Math.min(min, Date.parse(layer.time_extent[0]));
      max = Math.max(max, Date.parse(layer.time_extent[1]));
    }
    for (const f of state.data[layer.slug] || []) {
      const ms = Date.parse(f.properties[layer.time_field]);
      if (!Number.isNaN(ms)) {
        if (ms < min) min = ms;
        if (ms > max) max = ms;
      }
    }
  }
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    state.time = null;
    return;
  }
  const prev = state.time;
  if (prev && prev.min === min && prev.max === max) return;
  state.time = { t0: min, min, max: max + 1, from: min, to: max + 1, windowDays: 0, playing: false };
}

function applyWindow(tm, end) {
  tm.to = Math.min(Math.max(end, tm.min), tm.max);
  tm.from = tm.windowDays ? Math.max(tm.min, tm.to - tm.windowDays * DAY) : tm.min;
}

function changed(app) {
  app.redraw();
  refreshH3(app);
  renderTimeLabels(app);
}

/** Draw the time bar (hidden when no time-enabled layer is shown). */
export function renderTime(app) {
  const bar = document.getElementById('timebar');
  if (!bar) return;
  const { state } = app;
  const tm = state.time;
  const layers = timeLayers(state);
  bar.hidden = !tm || !layers.length || state.page !== 'map';
  if (bar.hidden) return;
  bar.innerHTML = '';
  const play = el(
    'button',
    {
      class: 'btn small',
      id: 'time-play',
      onclick: () => {
        tm.playing = !tm.playing;
        if (tm.playing) startPlay(app);
        else stopPlay(app);
        renderTime(app);
      },
    },
    tm.playing ? `⏸ ${t('time.pause')}` : `▶ ${t('time.play')}`,
  );
  const steps = 400;
  const slider = el('input', {
    type: 'range',
    id: 'time-slider',
    min: '0',
    max: String(steps),
    step: '1',
    value: String(Math.round(((tm.to - tm.min) / (tm.max - tm.min || 1)) * steps)),
    'aria-label': t('time.title'),
    oninput: (e) => {
      applyWindow(tm, tm.min + (Number(e.target.value) / steps) * (tm.max - tm.min));
      changed(app);
    },
  });
  const win = el(
    'select',
    {
      id: 'time-window',
      'aria-label': t('time.window'),
      onchange: (e) => {
        tm.windowDays = Number(e.target.value);
        applyWindow(tm, tm.to);
        changed(app);
      },
    },
    WINDOWS.map((d) => el('option', { value: String(d), selected: d === tm.windowDays }, d ? t('time.days', { n: d }) : t('time.all'))),
  );
  bar.append(
    el('div', { class: 'time-title' }, t('time.title'), el('span', { class: 'muted small' }, ` · ${layers.map((l) => layerTitle(l)).join(', ')}`)),
    el('div', { class: 'time-row' }, play, slider, el('label', { class: 'muted small' }, `${t('time.window')} `, win)),
    el('div', { class: 'time-labels', id: 'time-labels' }),
  );
  renderTimeLabels(app);
}

function renderTimeLabels(app) {
  const box = document.getElementById('time-labels');
  const tm = app.state.time;
  if (!box || !tm) return;
  box.textContent = `${fmtDate(tm.from)} → ${fmtDate(tm.to)}`;
  const slider = document.getElementById('time-slider');
  if (slider && document.activeElement !== slider) slider.value = String(Math.round(((tm.to - tm.min) / (tm.max - tm.min || 1)) * 400));
}

function startPlay(app) {
  const tm = app.state.time;
  if (!tm.windowDays) tm.windowDays = 30;
  if (tm.to >= tm.max) applyWindow(tm, tm.min + tm.windowDays * DAY);
  stopPlay(app);
  app.playTimer = setInterval(() => {
    const step = Math.max(DAY, (tm.max - tm.min) / 120);
    if (tm.to >= tm.max) {
      tm.playing = false;
      stopPlay(app);
      renderTime(app);
      return;
    }
    applyWindow(tm, tm.to + step);
    changed(app);
  }, 250);
}

function stopPlay(app) {
  if (app.playTimer) clearInterval(app.playTimer);
  app.playTimer = null;
}
