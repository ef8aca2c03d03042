// Time slider with play for the time-enabled layers (field reports, events, sensors...).
// It sets state.time {from,to} on whole hours/days; tiled layers reload with ?datetime=from/to,
// GeoJSON-only layers filter on the GPU, and the H3 view re-aggregates for the window.

import { fmtDate, fmtDay, layerTitle, t } from '../i18n.js';
import { el } from '../util.js';
import { refreshH3 } from './h3view.js';

const HOUR = 3600000;
const DAY = 86400000;
const WINDOWS = [7, 30, 90, 0]; // 0 = whole extent
// play walks the extent in about this many steps (each a whole number of hours or days)
const PLAY_STEPS = 120;

function timeLayers(state) {
  return state.catalog.filter((l) => l.time_field && state.visible[l.slug]);
}

/** Start of the hour holding ms; with step DAY, of the local day (still a whole hour). */
function snapDown(ms, step) {
  let out = ms;
  if (step === DAY) {
    const d = new Date(ms);
    d.setHours(0, 0, 0, 0);
    out = d.getTime();
  }
  // a whole hour, whatever the zone's offset: the server caches tiles of whole-hour windows
  return Math.floor(out / HOUR) * HOUR;
}

/**
 * The time extent: each time-enabled layer's TileJSON `time.extent`, else the catalog's
 * time_extent, widened by the loaded features; snapped outwards to whole hours (whole days
 * when it spans more than three), which are the slider's steps.
 */
export function initTime(app) {
  const { state } = app;
  let min = Infinity;
  let max = -Infinity;
  const widen = (a, b) => {
    const lo = Date.parse(a);
    const hi = Date.parse(b);
    if (!Number.isNaN(lo)) min = Math.min(min, lo);
    if (!Number.isNaN(hi)) max = Math.max(max, hi);
  };
  for (const layer of state.catalog.filter((l) => l.time_field)) {
    const tiles = state.tileUrls[layer.slug];
    if (tiles && tiles.time && tiles.time.extent) widen(...tiles.time.extent);
    else if (layer.time_extent) widen(...layer.time_extent);
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
  const step = max - min > 3 * DAY ? DAY : HOUR;
  const lo = snapDown(min, step);
  const hi = lo + Math.max(1, Math.ceil((max - lo + 1) / step)) * step;
  const prev = state.time;
  if (prev && prev.min === lo && prev.max === hi) return;
  state.time = { t0: lo, min: lo, max: hi, step, from: lo, to: hi, windowDays: 0, playing: false };
}

/** Number of slider steps across the extent. */
function stepCount(tm) {
  return Math.max(1, Math.round((tm.max - tm.min) / tm.step));
}

/** Put the window's end at `end` (snapped to a whole step) and its start a window before it. */
function applyWindow(tm, end) {
  const k = Math.round((Math.min(Math.max(end, tm.min), tm.max) - tm.min) / tm.step);
  tm.to = Math.min(tm.max, tm.min + k * tm.step);
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
  const steps = stepCount(tm);
  const slider = el('input', {
    type: 'range',
    id: 'time-slider',
    min: '0',
    max: String(steps),
    step: '1',
    value: String(Math.round((tm.to - tm.min) / tm.step)),
    'aria-label': t('time.title'),
    oninput: (e) => {
      applyWindow(tm, tm.min + Number(e.target.value) * tm.step);
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
        // "all" is the whole extent again: tiles without a datetime filter
        applyWindow(tm, tm.windowDays ? tm.to : tm.max);
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
  const fmt = tm.step === DAY ? fmtDay : fmtDate;
  box.textContent = `${fmt(tm.from)} → ${fmt(tm.to)}`;
  const slider = document.getElementById('time-slider');
  if (slider && document.activeElement !== slider) slider.value = String(Math.round((tm.to - tm.min) / tm.step));
}

function startPlay(app) {
  const tm = app.state.time;
  if (!tm.windowDays) tm.windowDays = 30;
  if (tm.to >= tm.max) applyWindow(tm, tm.min + tm.windowDays * DAY);
  stopPlay(app);
  app.playTimer = setInterval(() => {
    // whole hours or days per tick, so every window played is one the server caches
    const step = tm.step * Math.max(1, Math.round(stepCount(tm) / PLAY_STEPS));
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
