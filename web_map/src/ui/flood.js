// Flood mode (issue 20): a water-level slider over the DEM (or the 1-in-100-year depth raster)
// that redraws the flooded extent and the exposure table live, from /api/query/flood-exposure.

import { GeoJsonLayer } from '@deck.gl/layers';

import { fmtNumber, lang, layerTitle, t } from '../i18n.js';
import { el } from '../util.js';
import { rasterOfRole } from './rasterLayers.js';
import { setTerrain, terrainAvailable } from './terrain.js';

// The Cả (Lam) centreline the demo DEM was carved along (layers/demo/rasters.py): the default
// seed of the water. A click on the map while flood mode is on moves the seed there instead.
const CA_RIVER = [
  [104.02, 19.43], [104.1, 19.38], [104.25, 19.3], [104.39, 19.24], [104.62, 19.14], [104.86, 19.04],
  [105.03, 18.91], [105.18, 18.94], [105.3, 18.89], [105.4, 18.8], [105.48, 18.72], [105.6, 18.61],
  [105.705, 18.645], [105.74, 18.7], [105.765, 18.765],
];
const DEBOUNCE_MS = 120;
// Roles the server lets write the extent layer (geo_api/routers/rasters.py WRITERS).
const WRITERS = new Set(['admin', 'leader', 'operator', 'gis_staff', 'planner']);

function floodState(app) {
  const s = app.state;
  if (!s.flood) s.flood = { on: false, level: 6, source: 'dem', result: null, busy: false, seq: 0, seed: null, error: null, ms: null };
  return s.flood;
}

/** The tools under the layer list: flood mode and 3D terrain toggles. */
export function renderRasterTools(app) {
  const host = document.getElementById('left-layers');
  if (!host) return;
  let box = host.querySelector('#raster-tools');
  if (!box) {
    box = el('section', { id: 'raster-tools', class: 'raster-tools' });
    const foot = host.querySelector('#footnote');
    host.insertBefore(box, foot || null);
  }
  box.innerHTML = '';
  const dem = rasterOfRole(app.state, 'elevation');
  if (!dem) return;
  const fs = floodState(app);
  box.append(
    el('h3', {}, t('raster.tools')),
    el(
      'div',
      { class: 'raster-buttons' },
      el('button', { class: `btn${fs.on ? ' active' : ''}`, id: 'flood-toggle', 'aria-pressed': String(fs.on), onclick: () => setFlood(app, !fs.on) }, t('raster.flood_mode')),
      terrainAvailable(app)
        ? el('button', { class: `btn${app.state.terrain3d ? ' active' : ''}`, id: 'terrain-toggle', 'aria-pressed': String(!!app.state.terrain3d), onclick: () => setTerrain(app, !app.state.terrain3d) }, t('raster.terrain_3d'))
        : null,
    ),
  );
}

/** Switch flood mode on or off. */
export function setFlood(app, on) {
  const fs = floodState(app);
  fs.on = on;
  if (on) run(app);
  else fs.result = null;
  renderFloodPanel(app);
  renderRasterTools(app);
  app.redraw();
}

let timer = null;
let controller = null;

/** Ask the server for the flood at the current level (debounced; the newest answer wins). */
function schedule(app) {
  clearTimeout(timer);
  timer = setTimeout(() => run(app), DEBOUNCE_MS);
}

/** The request of the current flood: a preview for the slider, no layer written. */
function requestBody(app) {
  const fs = floodState(app);
  const dem = rasterOfRole(app.state, 'elevation');
  const depth = rasterOfRole(app.state, 'flood_depth');
  return fs.source === 'depth' && depth
    ? { depth: depth.slug, preview: true, write_layer: null }
    : {
        dem: dem.slug,
        level_m: fs.level,
        seed: fs.seed ? { type: 'Point', coordinates: fs.seed } : { type: 'LineString', coordinates: CA_RIVER },
        preview: true,
        write_layer: null,
      };
}

async function run(app) {
  const fs = floodState(app);
  const body = requestBody(app);
  controller?.abort();
  controller = new AbortController();
  const seq = ++fs.seq;
  const started = performance.now();
  fs.busy = true;
  renderStatus(app);
  try {
    const res = await fetch('/api/query/flood-exposure', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const data = await res.json();
    if (seq !== fs.seq) return;
    if (!res.ok) throw new Error(typeof data.detail === 'string' ? data.detail : res.status);
    fs.result = data;
    fs.error = null;
    app.redraw();
    renderFloodPanel(app);
    // time from the slider's value to the redrawn extent and table (bench/rasters reads it)
    requestAnimationFrame(() => {
      fs.ms = performance.now() - started;
      document.body.dataset.floodLevel = String(fs.source === 'depth' ? 'depth' : fs.level);
    });
  } catch (err) {
    if (err.name === 'AbortError') return;
    fs.error = err.message;
    renderFloodPanel(app);
  } finally {
    if (seq === fs.seq) {
      fs.busy = false;
      renderStatus(app);
    }
  }
}

/** Write the current flood (full resolution) as the extent layer, on the user's request. */
async function saveExtent(app) {
  const fs = floodState(app);
  const body = { ...requestBody(app), preview: false, write_layer: 'flood_extent' };
  fs.saving = true;
  fs.saved = null;
  renderFloodPanel(app);
  try {
    const res = await fetch('/api/query/flood-exposure', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
    const data = await res.json();
    if (!res.ok) throw new Error(typeof data.detail === 'string' ? data.detail : res.status);
    fs.saved = data.written_layer;
    fs.error = null;
  } catch (err) {
    fs.error = err.message;
  } finally {
    fs.saving = false;
    renderFloodPanel(app);
  }
}

function renderStatus(app) {
  const fs = floodState(app);
  const node = document.getElementById('flood-status');
  if (node) node.textContent = fs.busy ? t('raster.computing') : '';
}

/** The floating flood panel: slider, source, totals, communes and features under water.
 *
 * The controls are built once (per language and source list) and kept: an answer only
 * replaces the results below them, so a slider being dragged is never swapped out. */
export function renderFloodPanel(app) {
  const fs = floodState(app);
  let panel = document.getElementById('flood-panel');
  if (!fs.on) {
    if (panel) panel.remove();
    return;
  }
  if (!panel) {
    panel = el('aside', { id: 'flood-panel', class: 'panel flood-panel', 'aria-label': t('raster.flood_mode') });
    document.getElementById('map').parentElement.append(panel);
  }
  const depth = rasterOfRole(app.state, 'flood_depth');
  const shape = `${lang()}|${depth ? depth.slug : ''}`;
  if (panel.dataset.shape !== shape) {
    panel.dataset.shape = shape;
    buildControls(app, panel, depth);
  }
  const slider = /** @type {HTMLInputElement} */ (panel.querySelector('#flood-level'));
  slider.disabled = fs.source === 'depth';
  if (document.activeElement !== slider) slider.value = String(fs.level);
  panel.querySelector('#flood-level-value').textContent = t('raster.level_value', { m: fs.level.toFixed(1) });
  for (const radio of /** @type {NodeListOf<HTMLInputElement>} */ (panel.querySelectorAll('input[name=flood-src]'))) radio.checked = radio.value === fs.source;
  panel.querySelector('#flood-seed').textContent = fs.seed ? t('raster.seed_point') : t('raster.seed_river');
  panel.querySelector('#flood-status').textContent = fs.busy ? t('raster.computing') : '';
  const box = panel.querySelector('#flood-results');
  box.innerHTML = '';
  renderResults(app, box);
}

function buildControls(app, panel, depth) {
  const fs = floodState(app);
  panel.innerHTML = '';
  panel.setAttribute('aria-label', t('raster.flood_mode'));
  const slider = el('input', {
    type: 'range',
    id: 'flood-level',
    min: '0',
    max: '30',
    step: '0.5',
    value: String(fs.level),
    'aria-label': t('raster.level'),
    oninput: (e) => {
      fs.level = Number(e.target.value);
      fs.saved = null;
      panel.querySelector('#flood-level-value').textContent = t('raster.level_value', { m: fs.level.toFixed(1) });
      schedule(app);
    },
  });
  const pick = (source) => () => {
    fs.source = source;
    run(app);
    renderFloodPanel(app);
  };
  panel.append(
    el('div', { class: 'flood-head' }, el('h2', {}, t('raster.flood_mode')), el('button', { class: 'close', title: t('panel.close'), 'aria-label': t('panel.close'), onclick: () => setFlood(app, false) }, '×')),
    el(
      'div',
      { class: 'flood-source' },
      el('label', {}, el('input', { type: 'radio', name: 'flood-src', value: 'dem', onchange: pick('dem') }), t('raster.source_level')),
      depth ? el('label', {}, el('input', { type: 'radio', name: 'flood-src', id: 'flood-src-depth', value: 'depth', onchange: pick('depth') }), t('raster.source_depth')) : null,
    ),
    el('div', { class: 'flood-slider' }, slider, el('span', { id: 'flood-level-value', class: 'level' })),
    el('div', { class: 'muted small' }, el('span', { id: 'flood-seed' }), ' ', el('span', { id: 'flood-status' })),
    el('div', { id: 'flood-results' }),
  );
}

function renderResults(app, panel) {
  const fs = floodState(app);
  const r = fs.result;
  if (fs.error) panel.append(el('div', { class: 'error' }, fs.error));
  if (!r) return;
  const tot = r.totals || {};
  panel.append(
    el(
      'div',
      { class: 'flood-totals', id: 'flood-totals' },
      el('div', {}, el('b', {}, fmtNumber(Math.round(tot.flooded_km2 || 0))), ' km²', el('span', { class: 'muted' }, ` ${t('raster.flooded')}`)),
      el('div', {}, el('b', {}, fmtNumber(Math.round(tot.people_exposed || 0))), el('span', { class: 'muted' }, ` ${t('raster.people')}`)),
      el('div', {}, el('b', {}, fmtNumber(tot.communes_flooded || 0)), el('span', { class: 'muted' }, ` ${t('raster.communes')}`)),
    ),
  );
  const pop = r.population_raster ? (app.state.rasters || {})[r.population_raster] : null;
  panel.append(
    el(
      'div',
      { class: 'muted small', id: 'flood-people-note' },
      r.population_raster ? t('raster.people_from_raster', { name: pop ? layerTitle(pop) : r.population_raster }) : t('raster.people_from_share'),
    ),
  );
  if (r.synthetic) panel.append(el('div', { class: 'muted small' }, t('raster.synthetic_note')));
  const role = app.state.user ? app.state.user.role : null;
  if (WRITERS.has(role)) {
    panel.append(
      el(
        'div',
        { class: 'flood-save' },
        el('button', { class: 'btn', id: 'flood-save', type: 'button', disabled: !!fs.saving, onclick: () => saveExtent(app) }, t('raster.save_extent')),
        fs.saved ? el('span', { class: 'muted small', id: 'flood-saved' }, ` ${t('raster.saved_extent', { slug: fs.saved })}`) : null,
      ),
    );
  }
  const rows = (r.communes || []).slice(0, 8);
  panel.append(
    el(
      'table',
      { class: 'flood-table', id: 'flood-table' },
      el('thead', {}, el('tr', {}, el('th', {}, t('raster.commune')), el('th', {}, 'km²'), el('th', {}, '%'), el('th', {}, t('raster.people_short')))),
      el(
        'tbody',
        {},
        rows.length
          ? rows.map((c) => el('tr', {}, el('td', {}, c.name), el('td', { class: 'num' }, c.flooded_km2.toFixed(1)), el('td', { class: 'num' }, c.share === null ? '–' : (c.share * 100).toFixed(0)), el('td', { class: 'num' }, c.people_exposed === null ? '–' : fmtNumber(c.people_exposed))))
          : el('tr', {}, el('td', { colspan: '4', class: 'muted' }, t('raster.nothing_flooded'))),
      ),
    ),
  );
  const exposed = Object.entries(r.exposed || {});
  if (exposed.length) {
    panel.append(
      el('h3', {}, t('raster.under_water')),
      el(
        'ul',
        { class: 'flood-exposed', id: 'flood-exposed' },
        exposed.map(([slug, hits]) => {
          const layer = app.state.bySlug[slug];
          const deepest = hits[0];
          const n = (r.exposed_counts || {})[slug] ?? hits.length;
          return el('li', { 'data-layer': slug }, el('b', {}, fmtNumber(n)), ` ${layer ? layerTitle(layer) : slug}`, deepest ? el('span', { class: 'muted' }, ` · ${t('raster.deepest', { name: deepest.name, m: deepest.depth_m.toFixed(1) })}`) : null);
        }),
      ),
    );
  }
  if ((r.withheld_layers || []).length) panel.append(el('div', { class: 'muted small' }, t('raster.withheld', { n: r.withheld_layers.length })));
}

/** A click on the map in flood mode moves the seed of the water there. */
export function floodClick(app, lonlat) {
  const fs = floodState(app);
  if (!fs.on || fs.source !== 'dem') return false;
  fs.seed = lonlat;
  run(app);
  return true;
}

/** The flooded extent over the map. */
export function floodLayers(state) {
  const fs = state.flood;
  if (!fs || !fs.on || !fs.result || !fs.result.extent) return [];
  return [
    new GeoJsonLayer({
      id: 'flood-extent',
      data: fs.result.extent,
      filled: true,
      stroked: true,
      getFillColor: [30, 120, 255, 150],
      getLineColor: [120, 190, 255, 230],
      lineWidthUnits: 'pixels',
      getLineWidth: 1,
      pickable: false,
    }),
  ];
}
