// The attribute table of any layer the user may read: pages from the server (OGC API items
// with limit/offset), sorted by a column (sortby) and filtered by columns (CQL2 on the server,
// so it works on a million parcels), optionally only within the map's view. A row click flies
// to the feature; the filtered rows export as CSV or GeoJSON.

import { getJSON } from '../api.js';
import { fmtNumber, layerTitle, propLabel, t } from '../i18n.js';
import { download, el } from '../util.js';
import { fmtValue } from './details.js';
import { lockedLayer } from './layerPanel.js';
import { setHit } from './search.js';

const PAGE = 50;
const EXPORT_CAP = 50000;
const EXPORT_PAGE = 5000;

/** A CQL2 condition for a column's filter text: numbers take >, <, =, a..b; text is "contains". */
export function cqlFor(name, type, raw) {
  const v = String(raw || '').trim();
  if (!v) return null;
  const q = (s) => `'${s.replaceAll("'", "''")}'`;
  if (type === 'integer' || type === 'number') {
    const range = /^(-?[\d.]+)\s*\.\.\s*(-?[\d.]+)$/.exec(v);
    if (range) return `${name} BETWEEN ${Number(range[1])} AND ${Number(range[2])}`;
    const m = /^(<=|>=|<>|!=|<|>|=)?\s*(-?\d+(?:[.,]\d+)?)$/.exec(v);
    if (!m) return undefined;
    const op = m[1] === '!=' ? '<>' : m[1] || '=';
    return `${name} ${op} ${Number(m[2].replace(',', '.'))}`;
  }
  if (type === 'boolean') return /^(1|true|có|co|yes)$/i.test(v) ? `${name} = true` : `${name} = false`;
  if (v.startsWith('=')) return `${name} = ${q(v.slice(1).trim())}`;
  return `CASEI(${name}) LIKE CASEI(${q(`%${v.replaceAll('%', '')}%`)})`;
}

function typeOf(spec) {
  const k = spec && spec.type;
  return Array.isArray(k) ? k.find((x) => x !== 'null') || 'string' : k || 'string';
}

function readable(app) {
  return app.state.catalog.filter((l) => !lockedLayer(app, l));
}

/** Open (or refresh) the attribute table, for `slug` or the first visible readable layer. */
export function openTable(app, slug) {
  const st = (app.table = app.table || { slug: null, sort: null, filters: {}, inView: false, offset: 0 });
  const layers = readable(app);
  st.slug = slug || st.slug || (layers.find((l) => app.state.visible[l.slug] && l.slug !== 'admin_province') || layers[0] || {}).slug;
  let panel = document.getElementById('attr-table');
  if (!panel) {
    panel = el('section', { id: 'attr-table', class: 'panel attr-table', 'aria-label': t('table.title') });
    document.getElementById('mapview').append(panel);
    app.map.on('moveend', () => {
      if (app.table && app.table.inView && document.getElementById('attr-table')) load(app);
    });
  }
  renderFrame(app);
  load(app);
}

/** Close the table. */
export function closeTable(app) {
  document.getElementById('attr-table')?.remove();
  document.getElementById('tool-table')?.classList.remove('active');
  if (app.table) app.table.open = false;
}

function columns(app) {
  const layer = app.state.bySlug[app.table.slug];
  const props = (layer && layer.property_schema && layer.property_schema.properties) || {};
  return Object.entries(props).map(([name, spec]) => ({ name, type: typeOf(spec) }));
}

function params(app, extra = {}) {
  const st = app.table;
  const cols = columns(app);
  const conds = [];
  st.bad = [];
  for (const c of cols) {
    const cond = cqlFor(c.name, c.type, st.filters[c.name]);
    if (cond === undefined) st.bad.push(c.name);
    else if (cond) conds.push(cond);
  }
  const q = new URLSearchParams({ limit: String(PAGE), ...extra });
  if (conds.length) q.set('filter', conds.join(' AND '));
  if (st.sort) q.set('sortby', `${st.sort.desc ? '-' : '+'}${st.sort.name}`);
  else q.set('sortby', '+id');
  if (st.inView) {
    const b = app.map.getBounds();
    q.set('bbox', [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(','));
  }
  return q;
}

function renderFrame(app) {
  const st = app.table;
  const panel = document.getElementById('attr-table');
  panel.innerHTML = '';
  const select = el(
    'select',
    {
      id: 'table-layer',
      'aria-label': t('table.layer'),
      onchange: (e) => {
        Object.assign(st, { slug: e.target.value, sort: null, filters: {}, offset: 0 });
        renderFrame(app);
        load(app);
      },
    },
    readable(app).map((l) => el('option', { value: l.slug, selected: l.slug === st.slug }, layerTitle(l))),
  );
  const inView = el('input', {
    type: 'checkbox',
    id: 'table-inview',
    checked: st.inView,
    onchange: (e) => {
      st.inView = e.target.checked;
      st.offset = 0;
      load(app);
    },
  });
  const cols = columns(app);
  const head = el(
    'tr',
    {},
    cols.map((c) =>
      el(
        'th',
        { scope: 'col', 'aria-sort': st.sort && st.sort.name === c.name ? (st.sort.desc ? 'descending' : 'ascending') : 'none' },
        el(
          'button',
          {
            type: 'button',
            class: 'th-sort',
            'data-sort': c.name,
            onclick: () => {
              st.sort = st.sort && st.sort.name === c.name ? (st.sort.desc ? null : { name: c.name, desc: true }) : { name: c.name, desc: false };
              st.offset = 0;
              renderFrame(app);
              load(app);
            },
          },
          propLabel(c.name),
          st.sort && st.sort.name === c.name ? (st.sort.desc ? ' ▼' : ' ▲') : '',
        ),
      ),
    ),
  );
  const filters = el(
    'tr',
    { class: 'filters' },
    cols.map((c) =>
      el(
        'th',
        {},
        el('input', {
          type: 'text',
          class: 'col-filter',
          'data-filter': c.name,
          value: st.filters[c.name] || '',
          placeholder: c.type === 'integer' || c.type === 'number' ? '>, <, a..b' : t('table.contains'),
          'aria-label': `${t('table.filter')} ${propLabel(c.name)}`,
          onkeydown: (e) => {
            if (e.key === 'Enter') {
              st.filters[c.name] = e.target.value;
              st.offset = 0;
              load(app);
            }
          },
          onchange: (e) => {
            st.filters[c.name] = e.target.value;
            st.offset = 0;
            load(app);
          },
        }),
      ),
    ),
  );
  panel.append(
    el(
      'div',
      { class: 'row between wrap table-bar' },
      el('strong', {}, t('table.title')),
      select,
      el('label', { class: 'row small' }, inView, t('table.in_view')),
      el('span', { id: 'table-count', class: 'muted', role: 'status' }),
      el('div', { class: 'row' }, el('button', { type: 'button', class: 'btn small', id: 'table-prev', onclick: () => page(app, -1) }, '‹'), el('button', { type: 'button', class: 'btn small', id: 'table-next', onclick: () => page(app, 1) }, '›')),
      el('button', { type: 'button', class: 'btn small', id: 'table-csv', onclick: () => exportRows(app, 'csv') }, t('table.export_csv')),
      el('button', { type: 'button', class: 'btn small', id: 'table-geojson', onclick: () => exportRows(app, 'geojson') }, 'GeoJSON'),
      el('button', { type: 'button', class: 'btn ghost small', id: 'table-close', 'aria-label': t('panel.close'), onclick: () => closeTable(app) }, '×'),
    ),
    el('div', { class: 'table-wrap' }, el('table', { class: 'results attr' }, el('thead', {}, head, filters), el('tbody', { id: 'table-body' }))),
  );
}

function page(app, dir) {
  const st = app.table;
  const next = st.offset + dir * PAGE;
  if (next < 0 || (st.total !== undefined && next >= st.total)) return;
  st.offset = next;
  load(app);
}

async function load(app) {
  const st = app.table;
  const body = document.getElementById('table-body');
  const count = document.getElementById('table-count');
  if (!body) return;
  const seq = (st.seq = (st.seq || 0) + 1);
  const q = params(app, { offset: String(st.offset) });
  if (st.bad.length) {
    count.textContent = t('table.bad_filter', { cols: st.bad.map(propLabel).join(', ') });
    count.className = 'warn';
    return;
  }
  count.className = 'muted';
  count.textContent = t('layer.loading');
  try {
    const fc = await getJSON(`/ogc/collections/${encodeURIComponent(st.slug)}/items?${q}`);
    if (seq !== st.seq) return;
    st.total = fc.numberMatched;
    const cols = columns(app);
    body.innerHTML = '';
    for (const f of fc.features || []) {
      body.append(
        el(
          'tr',
          { 'data-id': f.id, tabindex: '0', onclick: () => flyToRow(app, f), onkeydown: (e) => e.key === 'Enter' && flyToRow(app, f) },
          cols.map((c) => el('td', { class: typeof f.properties[c.name] === 'number' ? 'num' : '' }, fmtValue(c.name, f.properties[c.name]))),
        ),
      );
    }
    const from = fc.numberReturned ? st.offset + 1 : 0;
    count.textContent = t('table.count', { from: fmtNumber(from), to: fmtNumber(st.offset + fc.numberReturned), total: fmtNumber(st.total ?? 0) });
    count.dataset.total = String(st.total ?? '');
  } catch (err) {
    if (seq !== st.seq) return;
    count.className = 'warn';
    count.textContent = `${t('app.error')}: ${err.message}`;
  }
}

function bboxOf(geom) {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      b[0] = Math.min(b[0], c[0]);
      b[1] = Math.min(b[1], c[1]);
      b[2] = Math.max(b[2], c[0]);
      b[3] = Math.max(b[3], c[1]);
    } else c.forEach(walk);
  };
  walk(geom.coordinates);
  return b;
}

async function flyToRow(app, f) {
  if (!f.geometry) return;
  const b = bboxOf(f.geometry);
  const narrow = window.innerWidth < 700;
  if (b[2] - b[0] < 1e-5 && b[3] - b[1] < 1e-5) app.map.flyTo({ center: [b[0], b[1]], zoom: Math.max(app.map.getZoom(), 16) });
  else app.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: narrow ? 30 : { top: 40, bottom: 320, left: 310, right: 370 }, maxZoom: 18, duration: 800 });
  setHit(app, [f]);
  const { showDetails } = await import('./details.js');
  showDetails(app, { object: f, layer: { id: `layer-${app.table.slug}` }, picked: true });
}

function csvCell(v) {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n;]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Download every filtered row (up to EXPORT_CAP) as CSV (with WKT-free lon/lat) or GeoJSON. */
async function exportRows(app, kind) {
  const st = app.table;
  const count = document.getElementById('table-count');
  const rows = [];
  let offset = 0;
  for (;;) {
    const q = params(app, { limit: String(EXPORT_PAGE), offset: String(offset) });
    const fc = await getJSON(`/ogc/collections/${encodeURIComponent(st.slug)}/items?${q}`);
    rows.push(...(fc.features || []));
    count.textContent = t('table.exporting', { n: fmtNumber(rows.length) });
    if (!fc.features || fc.features.length < EXPORT_PAGE || rows.length >= EXPORT_CAP) break;
    offset += EXPORT_PAGE;
  }
  const name = `${st.slug}-${new Date().toISOString().slice(0, 10)}`;
  if (kind === 'geojson') {
    download(`${name}.geojson`, JSON.stringify({ type: 'FeatureCollection', features: rows }), 'application/geo+json');
  } else {
    const cols = columns(app).map((c) => c.name);
    const lines = [['id', ...cols].join(',')];
    for (const f of rows) lines.push([f.id, ...cols.map((c) => f.properties[c])].map(csvCell).join(','));
    // a BOM so spreadsheet programs read Vietnamese as UTF-8
    download(`${name}.csv`, `\ufeff${lines.join('\r\n')}\r\n`, 'text/csv;charset=utf-8');
  }
  count.textContent = t('table.exported', { n: fmtNumber(rows.length) });
}
