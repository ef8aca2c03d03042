// Sector indicators (its own chunk, loaded on demand): the "Chỉ số" panel grouped by the nine
// sectors, a commune choropleth of any indicator with its legend and period picker, the
// indicator charts of a clicked hospital, school, agency, tourism site or commune (series,
// trend line, forecast band), and one dashboard page per sector. Everything reads /api/indicators,
// which needs a signed-in user.

import { getJSON } from '../api.js';
import { abbreviate, fmtNumber, lang, t, unitLabel } from '../i18n.js';
import { el } from '../util.js';

const SVG = 'http://www.w3.org/2000/svg';
const FORECAST = 6;
// 5 classes, low → high. Direction-aware: red is always the bad end when we know which end is bad.
const GOOD_UP = ['#d73027', '#fc8d59', '#fee08b', '#91cf60', '#1a9850'];
const GOOD_DOWN = [...GOOD_UP].reverse();
const NEUTRAL = ['#c6dbef', '#9ecae1', '#6baed6', '#3182bd', '#08519c'];
const NO_DATA = 'rgba(38,50,72,0.55)';
/** Layers whose features are indicator subjects (the commune is handled by its code). */
export const SUBJECT_LAYERS = new Set(['hospitals', 'schools', 'tourism_sites', 'agencies']);

// one cache per page load: definitions, series, subject lists and dashboards
const cache = new Map();
const pending = new Map();

/** GET once per URL; concurrent callers share the request. */
function cached(url) {
  if (cache.has(url)) return Promise.resolve(cache.get(url));
  if (!pending.has(url)) {
    pending.set(
      url,
      getJSON(url)
        .then((body) => {
          cache.set(url, body);
          return body;
        })
        .finally(() => pending.delete(url)),
    );
  }
  return pending.get(url);
}

/** True when the server has the indicator API. */
function available(app) {
  const caps = app.state.caps;
  return !!(caps && caps.indicators && caps.indicators.length);
}

/** Signed out while the server has sign-in: indicators need a user. */
function signedOut(app) {
  const { caps, user } = app.state;
  return !user && !!(caps && caps.paths['/api/auth/login']);
}

function signInPrompt() {
  return el(
    'div',
    { class: 'card ind-signin', id: 'ind-signin' },
    el('p', {}, t('ind.sign_in_needed')),
    el('button', { class: 'btn small primary', onclick: () => document.getElementById('login-btn')?.click() }, t('auth.sign_in')),
  );
}

/** What a failed request shows: the sign-in prompt when it was refused, else the error. */
function failure(err, prefix = '') {
  return err.status === 401 || err.status === 403 ? signInPrompt() : el('p', { class: 'warn' }, prefix + err.message);
}

/** The indicator definitions, or null once `paint` has shown why there are none. */
async function definitionsOr(app, paint, prefix = '') {
  if (!available(app)) {
    paint(el('p', { class: 'muted' }, t('ind.unavailable')));
    return null;
  }
  if (signedOut(app)) {
    paint(signInPrompt());
    return null;
  }
  try {
    return await definitions(app);
  } catch (err) {
    paint(failure(err, prefix));
    return null;
  }
}

/** Name of a definition or sector in the active language. */
export function nameOf(item) {
  if (!item) return '';
  return lang() === 'en' ? item.name_en || item.name_vi : item.name_vi || item.name_en;
}

/** A period label for the grain: 21/11/2026, 11/2026, Q4 2026, 2026, 2024–2025. */
export function periodLabel(iso, grain) {
  if (!iso) return '—';
  const [y, m, d] = iso.split('-').map(Number);
  switch (grain) {
    case 'day':
      return `${String(d).padStart(2, '0')}/${String(m).padStart(2, '0')}/${y}`;
    case 'month':
      return `${String(m).padStart(2, '0')}/${y}`;
    case 'quarter':
      return `Q${Math.floor((m - 1) / 3) + 1} ${y}`;
    case 'year':
      return String(y);
    case 'school_year':
      return `${y}–${y + 1}`;
    default:
      return iso;
  }
}

/** True for indicators read as a share (rates, percentages): always one decimal, 28,0%. */
function isRate(defn) {
  return !!defn && (defn.rollup === 'rate' || defn.unit === '%');
}

function fmtValue(v, defn) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const rate = isRate(defn);
  const digits = rate ? 1 : Math.abs(v) < 100 && !Number.isInteger(v) ? 1 : 0;
  const label = defn && defn.unit ? unitLabel(defn.unit) : '';
  const unit = !label ? '' : label === '%' ? '%' : ` ${label}`;
  return `${fmtNumber(v, digits, rate ? 1 : 0)}${unit}`;
}

/** A legend bound: one fixed decimal for rates and small ranges, whole numbers for counts. */
function fmtBound(v, defn, span) {
  const digits = isRate(defn) || span < 10 ? 1 : 0;
  return fmtNumber(v, digits, digits);
}

/** The definitions ({sectors, indicators, byCode}), or null when signed out / unavailable. */
async function definitions(app) {
  const body = await cached('/api/indicators');
  if (!body.byCode) body.byCode = Object.fromEntries(body.indicators.map((d) => [d.code, d]));
  app.state.indicatorDefs = body;
  return body;
}

function palette(hib) {
  if (hib === true) return GOOD_UP;
  if (hib === false) return GOOD_DOWN;
  return NEUTRAL;
}

/** Index of the class of v for upper-bound breaks. */
export function classOf(v, breaks) {
  for (let i = 0; i < breaks.length; i += 1) if (v <= breaks[i]) return i;
  return Math.max(0, breaks.length - 1);
}

/** Load the choropleth of an indicator for a period (null: the latest) and show it on the wards. */
export async function showChoropleth(app, code, period = null) {
  const { state } = app;
  const q = new URLSearchParams();
  if (period) q.set('period', period);
  state.choroplethLoading = code;
  renderIndicatorPanel(app);
  try {
    const [body, prov] = await Promise.all([cached(`/api/indicators/${encodeURIComponent(code)}/choropleth?${q}`), cached(`/api/indicators/${encodeURIComponent(code)}?level=province`)]);
    const withData = (prov.periods || []).filter((p, i) => prov.series.some((sr) => sr.values[i] !== null));
    if (!period && body.in_progress) {
      // like the dashboards, the map opens on the last complete period (the running month is
      // partial: its late-dossier rate or visit counts are not comparable yet); it stays pickable
      const done = withData.filter((p) => p < body.period);
      if (done.length) {
        state.choroplethLoading = null;
        return showChoropleth(app, code, done[done.length - 1]);
      }
    }
    const colours = palette(body.higher_is_better);
    const breaks = body.breaks || [];
    const colors = {};
    for (const [k, v] of Object.entries(body.values || {})) colors[String(k)] = colours[classOf(v, breaks)];
    state.choropleth = {
      code,
      indicator: body.indicator,
      period: body.period,
      grain: body.grain || prov.grain,
      inProgress: !!body.in_progress,
      periods: withData,
      values: body.values || {},
      breaks,
      hib: body.higher_is_better,
      palette: colours,
      colors,
      noData: NO_DATA,
    };
    state.choroplethError = null;
  } catch (err) {
    state.choroplethError = err.status === 401 || err.status === 403 ? 'auth' : err.message;
  } finally {
    state.choroplethLoading = null;
  }
  app.redraw();
  renderIndicatorPanel(app);
  if (state.selectedCommune) app.renderRight();
}

/** Remove the choropleth: the wards go back to the basemap colour. */
export function clearChoropleth(app) {
  app.state.choropleth = null;
  app.redraw();
  renderIndicatorPanel(app);
}

/** The left "Chỉ số / Indicators" tab: sectors with their indicators; a click maps one by commune. */
export async function renderIndicatorPanel(app) {
  renderLegend(app);
  const box = document.getElementById('left-indicators');
  if (!box || box.hidden) return;
  const { state } = app;
  const paint = (...children) => {
    box.innerHTML = '';
    box.append(el('h2', { id: 'ind-h' }, t('ind.title')), ...children.filter(Boolean));
  };
  const defs = await definitionsOr(app, paint, `${t('app.error')}: `);
  if (!defs) return;
  const list = el('div', { class: 'ind-list', id: 'ind-list' });
  const keepScroll = box.querySelector('#ind-list')?.scrollTop || 0;
  for (const sector of defs.sectors) {
    const codes = sector.indicators || [];
    list.append(
      el(
        'section',
        { class: 'ind-sector', 'data-sector': sector.code },
        el('h3', {}, nameOf(sector), el('button', { class: 'btn tiny ghost ind-dash', 'data-dashboard': sector.code, title: t('ind.dashboard'), onclick: () => (location.hash = `#/dashboard/${sector.code}`) }, t('ind.dashboard'))),
        el(
          'ul',
          { class: 'plain ind-items' },
          codes.map((code) => {
            const d = defs.byCode[code];
            const on = state.choropleth && state.choropleth.code === code;
            return el(
              'li',
              {},
              el(
                'button',
                {
                  class: `ind-item${on ? ' active' : ''}`,
                  'data-indicator': code,
                  title: d && d.latest_period ? `${t('ind.latest')}: ${periodLabel(d.latest_period, d.frequency)}` : t('ind.no_data'),
                  disabled: d && !d.latest_period,
                  onclick: () => (on ? clearChoropleth(app) : showChoropleth(app, code)),
                },
                nameOf(d) || code,
                state.choroplethLoading === code ? el('span', { class: 'muted' }, ` · ${t('layer.loading')}`) : null,
              ),
            );
          }),
        ),
      ),
    );
  }
  paint(el('p', { class: 'muted small' }, t('ind.hint')), state.choroplethError ? el('p', { class: 'warn' }, state.choroplethError === 'auth' ? t('ind.sign_in_needed') : state.choroplethError) : null, list);
  list.scrollTop = keepScroll;
}

/** The floating legend of the choropleth: title, period picker, classes with their ranges. */
function renderLegend(app) {
  const box = document.getElementById('choro-legend');
  if (!box) return;
  const ch = app.state.choropleth;
  box.hidden = !ch || app.state.page !== 'map';
  if (box.hidden) return;
  const d = ch.indicator;
  box.innerHTML = '';
  const picker = el(
    'select',
    { id: 'choro-period', 'aria-label': t('ind.period'), onchange: (e) => showChoropleth(app, ch.code, e.target.value) },
    [...ch.periods].reverse().map((p) => el('option', { value: p, selected: p === ch.period }, periodLabel(p, ch.grain))),
  );
  const rows = [];
  const vals = Object.values(ch.values);
  let lo = vals.length ? Math.min(...vals) : 0;
  const span = (ch.breaks.length ? ch.breaks[ch.breaks.length - 1] : lo) - lo;
  ch.breaks.forEach((b, i) => {
    const a = fmtBound(lo, d, span);
    const z = fmtBound(b, d, span);
    // a class whose bounds print alike (many equal values) reads as one value, never "2 – 2"
    rows.push(el('li', { 'data-class': String(i) }, el('span', { class: 'sw', style: `background:${ch.palette[i]}` }), a === z ? a : `${a} – ${z}`));
    lo = b;
  });
  rows.push(el('li', {}, el('span', { class: 'sw', style: `background:${NO_DATA}` }), t('ind.no_data')));
  const direction = ch.hib === true ? t('ind.higher_better') : ch.hib === false ? t('ind.lower_better') : '';
  box.append(
    el('div', { class: 'choro-title', id: 'choro-title' }, nameOf(d), unitLabel(d.unit) ? el('span', { class: 'muted' }, ` (${unitLabel(d.unit)})`) : null),
    el('div', { class: 'row small' }, el('label', { class: 'muted' }, `${t('ind.period')} `, picker, ch.inProgress ? el('span', { class: 'pill partial', id: 'choro-partial' }, t('ind.in_progress')) : null), el('button', { class: 'btn tiny ghost', id: 'choro-clear', onclick: () => clearChoropleth(app) }, t('ind.clear'))),
    el('ul', { class: 'legend choro-classes', id: 'choro-classes' }, rows),
    direction ? el('div', { class: 'muted small' }, direction) : null,
  );
}

/** The choropleth value of a commune for the tooltip, or null. */
export function choroplethTip(app, code) {
  const ch = app.state.choropleth;
  if (!ch || code === undefined || code === null) return null;
  const v = ch.values[String(code)];
  const running = ch.inProgress ? `, ${t('ind.in_progress')}` : '';
  return `${nameOf(ch.indicator)} (${periodLabel(ch.period, ch.grain)}${running}): ${fmtValue(v, ch.indicator)}`;
}

// ---- charts of one subject --------------------------------------------------------------

/**
 * The subject key of a clicked feature: a commune's code, else the feature's `source_key`
 * (every feature of the tiles and the GeoJSON carries it; a clustered point does not). The
 * property is the one TileJSON names as `feature_key`.
 */
export function subjectKey(slug, feature, keyProp = 'source_key') {
  const p = (feature && feature.properties) || {};
  if (slug === 'admin_communes') return p.code === undefined || p.code === null ? null : String(p.code);
  const v = p[keyProp];
  return v === undefined || v === null || v === '' ? null : String(v);
}

/** Indicators that have values for a subject of this layer (every indicator for a commune). */
function indicatorsFor(defs, slug) {
  const items = defs.indicators.filter((d) => d.latest_period);
  if (slug === 'admin_communes') return items;
  return items.filter((d) => d.subject_layer === slug);
}

/** Fill the details panel's indicator card for a hospital, school, agency, tourism site or commune. */
export async function renderSubjectCharts(app, slug, feature) {
  const box = document.getElementById('ind-card');
  if (!box) return;
  const paint = (...children) => {
    if (!document.body.contains(box)) return;
    box.innerHTML = '';
    box.append(el('h3', {}, t('ind.charts')), ...children.filter(Boolean));
  };
  const defs = await definitionsOr(app, paint);
  if (!defs) return;
  const items = indicatorsFor(defs, slug);
  if (!items.length) return paint(el('p', { class: 'muted' }, t('ind.no_data')));
  const keyProp = (app.state.tileUrls[slug] && app.state.tileUrls[slug].featureKey) || 'source_key';
  const fid = `${slug}:${subjectKey(slug, feature, keyProp) ?? feature.id ?? feature.properties.name}`;
  const chosen = app.indChoice && app.indChoice.fid === fid ? app.indChoice.code : null;
  const ch = app.state.choropleth;
  const code = chosen || (slug === 'admin_communes' && ch ? ch.code : items[0].code);
  const defn = defs.byCode[code] || items[0];
  const select = el(
    'select',
    {
      id: 'ind-select',
      'aria-label': t('ind.title'),
      onchange: (e) => {
        app.indChoice = { fid, code: e.target.value };
        renderSubjectCharts(app, slug, feature);
      },
    },
    items.map((d) => el('option', { value: d.code, selected: d.code === defn.code }, nameOf(d))),
  );
  paint(select, el('p', { class: 'muted small' }, t('layer.loading')));
  try {
    const key = subjectKey(slug, feature, keyProp);
    if (!key) return paint(select, el('p', { class: 'muted' }, t('ind.no_subject')));
    const level = slug === 'admin_communes' ? 'commune' : 'feature';
    const body = await cached(`/api/indicators/${encodeURIComponent(defn.code)}?level=${level}&subject=${encodeURIComponent(key)}&forecast=${FORECAST}`);
    const series = (body.series || [])[0];
    if (!series) return paint(select, el('p', { class: 'muted' }, t('ind.no_data')));
    // the running period (this month so far) is never the headline: the last complete one is
    const running = body.in_progress || null;
    const complete = series.values.map((v, i) => (running && body.periods[i] >= running ? null : v));
    const last = lastValue(body.periods, complete);
    const now = running ? lastValue(body.periods, series.values) : null;
    const trend = series.trend;
    paint(
      select,
      el(
        'div',
        { class: 'ind-latest', id: 'ind-latest' },
        el('span', { class: 'kval' }, fmtValue(last.value, defn)),
        el('span', { class: 'muted small' }, ` ${periodLabel(last.period, body.grain)}`),
        trend ? el('span', { class: `small trend ${trendClass(trend.slope, defn)}` }, ` ${trend.slope >= 0 ? '▲' : '▼'} ${fmtNumber(Math.abs(trend.slope), 2)}/${t(`ind.grain.${body.grain}`)}`) : null,
      ),
      now && now.period && now.period >= running
        ? el('div', { class: 'muted small ind-partial-note', id: 'ind-partial' }, t('ind.so_far', { v: fmtValue(now.value, defn), p: periodLabel(now.period, body.grain) }))
        : null,
      lineChart(body.periods, series.values, series.forecast || [], body.grain, defn, running),
      el(
        'div',
        { class: 'chart-key muted small' },
        el('span', { class: 'key-series' }, t('ind.series')),
        el('span', { class: 'key-trend' }, t('ind.trend')),
        el('span', { class: 'key-forecast' }, t('ind.forecast', { n: FORECAST })),
      ),
    );
  } catch (err) {
    paint(select, failure(err));
  }
}

function lastValue(periods, values) {
  for (let i = values.length - 1; i >= 0; i -= 1) if (values[i] !== null) return { period: periods[i], value: values[i] };
  return { period: null, value: null };
}

function trendClass(slope, defn) {
  if (defn.higher_is_better === null || defn.higher_is_better === undefined || slope === 0) return 'neutral';
  return slope > 0 === defn.higher_is_better ? 'good' : 'bad';
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/**
 * A dependency-free SVG line chart: the observed series, its least-squares trend line, and
 * the forecast (mean, dashed) inside its band. Long daily series show their last 120 days.
 * Periods from `running` on (still in progress) are drawn apart: a lighter dashed stretch and
 * hollow dots, outside the trend fit.
 */
export function lineChart(periods, values, forecast, grain, defn, running = null) {
  const W = 320;
  const H = 150;
  const pad = { l: 44, r: 8, t: 8, b: 22 };
  const maxPts = grain === 'day' ? 120 : 60;
  const from = Math.max(0, periods.length - maxPts);
  const ps = periods.slice(from);
  const vs = values.slice(from);
  const partial = ps.map((p) => !!running && p >= running);
  const done = vs.map((v, i) => (partial[i] ? null : v));
  // the forecast continues the axis; a forecast period that is the running one shares its x
  const axis = [...ps, ...forecast.map((f) => f.period).filter((p) => !ps.includes(p))];
  const xi = new Map(axis.map((p, i) => [p, i]));
  const n = axis.length;
  const all = [...vs.filter((v) => v !== null), ...forecast.flatMap((f) => [f.lower, f.upper, f.value])];
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (!Number.isFinite(lo)) lo = 0;
  if (!Number.isFinite(hi) || hi === lo) hi = lo + 1;
  const x = (i) => pad.l + (i / Math.max(1, n - 1)) * (W - pad.l - pad.r);
  const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (H - pad.t - pad.b);
  const pt = (i, v) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'ind-chart', id: 'ind-chart', role: 'img', 'aria-label': nameOf(defn) });
  root.append(svg('line', { x1: pad.l, x2: W - pad.r, y1: y(lo), y2: y(lo), class: 'axis' }));
  for (const v of [lo, (lo + hi) / 2, hi]) {
    const label = svg('text', { x: pad.l - 4, y: y(v) + 3, 'text-anchor': 'end', class: 'tick' });
    label.textContent = fmtNumber(v, Math.abs(hi - lo) < 10 ? 1 : 0);
    root.append(label, svg('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: 'grid' }));
  }
  const first = svg('text', { x: pad.l, y: H - 6, class: 'tick' });
  first.textContent = periodLabel(ps[0], grain);
  const lastL = svg('text', { x: W - pad.r, y: H - 6, 'text-anchor': 'end', class: 'tick' });
  lastL.textContent = periodLabel(axis[axis.length - 1], grain);
  root.append(first, lastL);
  const lastIdx = done.map((v, i) => (v === null ? -1 : i)).filter((i) => i >= 0).pop();
  if (forecast.length) {
    const fx = forecast.map((f) => xi.get(f.period));
    const upper = forecast.map((f, i) => pt(fx[i], f.upper));
    const lower = forecast.map((f, i) => pt(fx[i], f.lower)).reverse();
    root.append(svg('polygon', { points: [...upper, ...lower].join(' '), class: 'ind-band' }));
    const start = lastIdx !== undefined ? [pt(lastIdx, done[lastIdx])] : [];
    root.append(svg('polyline', { points: [...start, ...forecast.map((f, i) => pt(fx[i], f.value))].join(' '), class: 'ind-forecast' }));
  }
  // the observed complete periods, broken at gaps
  let seg = [];
  const flush = () => {
    if (seg.length > 1) root.append(svg('polyline', { points: seg.join(' '), class: 'ind-series' }));
    else if (seg.length === 1) {
      const [cx, cy] = seg[0].split(',');
      root.append(svg('circle', { cx, cy, r: 2, class: 'ind-dot' }));
    }
    seg = [];
  };
  done.forEach((v, i) => (v === null ? flush() : seg.push(pt(i, v))));
  flush();
  // the running period(s): values so far, lighter and hollow
  const open = vs.map((v, i) => (partial[i] && v !== null ? i : -1)).filter((i) => i >= 0);
  if (open.length) {
    const head = lastIdx !== undefined ? [pt(lastIdx, done[lastIdx])] : [];
    root.append(svg('polyline', { points: [...head, ...open.map((i) => pt(i, vs[i]))].join(' '), class: 'ind-partial-line' }));
    for (const i of open) {
      const dot = svg('circle', { cx: x(i).toFixed(1), cy: y(vs[i]).toFixed(1), r: 3, class: 'ind-partial' });
      const tip = svg('title');
      tip.textContent = `${periodLabel(ps[i], grain)}: ${fmtValue(vs[i], defn)} (${t('ind.in_progress')})`;
      dot.append(tip);
      root.append(dot);
    }
  }
  const fit = leastSquares(done);
  if (fit) root.append(svg('line', { x1: x(fit.i0), y1: y(fit.a + fit.b * fit.i0), x2: x(fit.i1), y2: y(fit.a + fit.b * fit.i1), class: 'ind-trend' }));
  return root;
}

/** Least-squares line over the non-null points: value = a + b·index. */
export function leastSquares(values) {
  const pts = values.map((v, i) => [i, v]).filter(([, v]) => v !== null && Number.isFinite(v));
  if (pts.length < 3) return null;
  const mx = pts.reduce((s, [i]) => s + i, 0) / pts.length;
  const my = pts.reduce((s, [, v]) => s + v, 0) / pts.length;
  let sxy = 0;
  let sxx = 0;
  for (const [i, v] of pts) {
    sxy += (i - mx) * (v - my);
    sxx += (i - mx) ** 2;
  }
  const b = sxx ? sxy / sxx : 0;
  return { a: my - b * mx, b, i0: pts[0][0], i1: pts[pts.length - 1][0] };
}

// ---- dashboards ---------------------------------------------------------------------------

/**
 * Bars of a series (by period) as a small SVG, with the first and last periods named under
 * them; a period still running is a lighter bar. Periods before the first value are left out
 * (a series that starts late would otherwise leave the chart half empty), and bars are at
 * most 36 units wide so two yearly values do not read as two slabs.
 */
function barChart(allRows, defn, grain) {
  const W = 300;
  const BARS = 70;
  const H = BARS + 14;
  const start = allRows.findIndex((r) => r.value !== null && r.value !== undefined);
  const rows = start < 0 ? [] : allRows.slice(start);
  const vals = rows.map((r) => r.value).filter((v) => v !== null);
  const hi = Math.max(...vals, 0) || 1;
  const bw = Math.min(36, W / Math.max(rows.length, 1));
  const x0 = W - bw * rows.length; // right-aligned: the latest period sits at the same place on every card
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'dash-bars', role: 'img', 'aria-label': nameOf(defn) });
  rows.forEach((r, i) => {
    if (r.value === null) return;
    const h = Math.max(1, (r.value / hi) * (BARS - 4));
    const bar = svg('rect', {
      x: (x0 + i * bw + 1).toFixed(1),
      y: (BARS - h).toFixed(1),
      width: Math.max(1, bw - 2).toFixed(1),
      height: h.toFixed(1),
      class: r.partial ? 'bar partial' : 'bar',
      'data-period': r.period,
    });
    const tip = svg('title');
    tip.textContent = `${periodLabel(r.period, grain)}: ${fmtValue(r.value, defn)}${r.partial ? ` (${t('ind.in_progress')})` : ''}`;
    bar.append(tip);
    root.append(bar);
  });
  if (rows.length) {
    // the latest period is always named; the first one too when both fit (~5 units a character)
    const firstText = periodLabel(rows[0].period, grain);
    const lastText = periodLabel(rows[rows.length - 1].period, grain);
    if (rows.length > 1 && (firstText.length + lastText.length) * 5 + 8 < W - x0) {
      const first = svg('text', { x: x0 + 1, y: H - 2, class: 'tick' });
      first.textContent = firstText;
      root.append(first);
    }
    const last = svg('text', { x: W - 1, y: H - 2, 'text-anchor': 'end', class: 'tick' });
    last.textContent = lastText;
    root.append(last);
  }
  return root;
}

/** A unit's name shortened with the usual abbreviations (BVĐK, TYT, THPT, UBND). */
export function shortName(name) {
  return abbreviate(name);
}

// narrow lists show what differs ("BVĐKKV Quỳnh Lưu", not "Bệnh viện đa khoa khu v…"); the
// full name stays in the tooltip
function unitName(u) {
  const full = u.name || u.key;
  return el('span', { class: 'uname', title: full }, shortName(full));
}

function unitList(rows, defn, cls) {
  return el(
    'ol',
    { class: `dash-units ${cls}` },
    rows.map((u) => el('li', { 'data-key': u.key }, unitName(u), el('span', { class: 'uval' }, fmtValue(u.value, defn)))),
  );
}

/** The change between two rates in points, from the values as shown (one decimal each). */
export function pointsBetween(previous, latest) {
  return (Math.round(latest * 10) - Math.round(previous * 10)) / 10;
}

function changeBadge(kpi) {
  const c = kpi.change_pct;
  if (c === null || c === undefined) return null;
  const d = kpi.indicator;
  // a change that prints as 0,0% is no change: grey "•", never a red arrow over "0%"
  if (Math.abs(c) < 0.05) return el('span', { class: 'badge neutral' }, '• 0%');
  const cls = c === 0 || d.higher_is_better === null || d.higher_is_better === undefined ? 'neutral' : c > 0 === d.higher_is_better ? 'good' : 'bad';
  const arrow = c > 0 ? '▲' : c < 0 ? '▼' : '•';
  // a rate moves in percentage points (5,5% after 6,2% is 0,7 points down, not "10,3%")
  if (d.unit === '%' && Number.isFinite(kpi.latest) && Number.isFinite(kpi.previous)) {
    return el('span', { class: `badge ${cls}`, title: `${fmtNumber(Math.abs(c), 1)}%` }, `${arrow} ${fmtNumber(Math.abs(pointsBetween(kpi.previous, kpi.latest)), 1, 1)} ${t('ind.points')}`);
  }
  return el('span', { class: `badge ${cls}` }, `${arrow} ${fmtNumber(Math.abs(c), 1)}%`);
}

function kpiCard(kpi) {
  const d = kpi.indicator;
  // the grain the dashboard reads this KPI at (feedback counts by month though collected daily)
  const grain = kpi.grain || d.frequency;
  const byUnit = kpi.by_unit || [];
  const max = Math.max(...byUnit.map((u) => u.value || 0), 0) || 1;
  const cur = kpi.current;
  return el(
    'article',
    { class: 'dash-kpi card', 'data-indicator': d.code, 'data-grain': grain },
    el('h3', {}, nameOf(d)),
    // the headline is the last complete period; the running one is shown beside it, never as it
    el(
      'div',
      { class: 'dash-head' },
      el('span', { class: 'dash-latest' }, fmtValue(kpi.latest, d)),
      el('span', { class: 'muted small dash-period', 'data-period': kpi.latest_period || '' }, ` ${periodLabel(kpi.latest_period, grain)} `),
      changeBadge(kpi),
    ),
    el('div', { class: 'muted small' }, `${t('ind.previous')}: ${fmtValue(kpi.previous, d)}`),
    cur && cur.value !== null && cur.value !== undefined
      ? el(
          'div',
          { class: 'small dash-current', 'data-period': cur.period },
          el('span', { class: 'pill partial' }, t('ind.in_progress')),
          ` ${periodLabel(cur.period, grain)}: `,
          el('span', { class: 'dash-current-value' }, fmtValue(cur.value, d)),
        )
      : null,
    el('h4', {}, t('ind.by_period')),
    barChart(kpi.by_period || [], d, grain),
    byUnit.length ? el('h4', {}, t('ind.by_unit')) : null,
    byUnit.length
      ? el(
          'ul',
          { class: 'plain dash-byunit' },
          byUnit.map((u) => el('li', {}, unitName(u), el('span', { class: 'hbar', style: `width:${Math.round(((u.value || 0) / max) * 100)}%` }), el('span', { class: 'uval' }, fmtValue(u.value, d)))),
        )
      : null,
    (kpi.top || []).length
      ? el(
          'div',
          { class: 'dash-rank' },
          el('div', {}, el('h4', {}, t(d.higher_is_better === false ? 'ind.top_high' : 'ind.top')), unitList(kpi.top, d, 'dash-top')),
          el('div', {}, el('h4', {}, t(d.higher_is_better === false ? 'ind.bottom_low' : 'ind.bottom')), unitList(kpi.bottom || [], d, 'dash-bottom')),
        )
      : null,
  );
}

/** The dashboard page (#/dashboard/{sector}): every KPI of one sector, like the leaders' boards. */
export async function renderDashboardPage(app) {
  const page = document.getElementById('dashpage');
  if (!page) return;
  const paint = (...children) => {
    page.innerHTML = '';
    page.append(el('div', { class: 'dash-wrap', id: 'dash-page' }, el('h1', {}, t('ind.dashboards')), ...children.filter(Boolean)));
  };
  const defs = await definitionsOr(app, paint);
  if (!defs) return;
  const wanted = location.hash.split('/')[2];
  const sector = defs.sectors.find((s) => s.code === wanted) || defs.sectors[0];
  const tabs = el(
    'nav',
    { class: 'dash-tabs', id: 'dash-tabs' },
    defs.sectors.map((s) => el('button', { class: `btn small${s.code === sector.code ? ' active' : ''}`, 'data-sector': s.code, onclick: () => (location.hash = `#/dashboard/${s.code}`) }, nameOf(s))),
  );
  paint(tabs, el('p', { class: 'muted' }, t('layer.loading')));
  try {
    const body = await cached(`/api/indicators/dashboards/${encodeURIComponent(sector.code)}`);
    if (!location.hash.startsWith('#/dashboard') || (location.hash.split('/')[2] || defs.sectors[0].code) !== sector.code) return;
    const kpis = body.kpis || [];
    paint(
      tabs,
      el('h2', { id: 'dash-title' }, nameOf(body.sector || sector)),
      kpis.length ? el('div', { class: 'dash-grid' }, kpis.map(kpiCard)) : el('p', { class: 'muted' }, t('ind.no_data')),
    );
  } catch (err) {
    paint(tabs, failure(err));
  }
}
