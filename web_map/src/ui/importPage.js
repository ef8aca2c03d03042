// The GIS staff import page (#/import): upload → dry-run report (format, CRS, schema,
// preview, rejects) → commit → progress → rejects, over /api/imports.

import { getJSON } from '../api.js';
import { fmtDate, fmtNumber, lang, t, valueLabel } from '../i18n.js';
import { el } from '../util.js';
import { openModal } from './dialog.js';
import { appendLayerFields, layerFields, offerColumns, reasonLabel, rejectsView } from './importLayer.js';

// .tif/.tiff and other GDAL rasters become raster (COG) layers (issue 20)
const ACCEPT = '.gpkg,.zip,.geojson,.json,.kml,.kmz,.fgb,.dxf,.csv,.xlsx,.tif,.tiff,.img,.asc,.vrt,.jp2';

function formData(form, dryRun) {
  const fd = new FormData();
  const file = form.querySelector('#imp-file').files[0];
  fd.append('file', file, file.name);
  fd.append('layer', form.querySelector('#imp-layer').value.trim());
  fd.append('mode', form.querySelector('#imp-mode').value);
  const crs = form.querySelector('#imp-crs').value.trim();
  if (crs) fd.append('crs', crs);
  const key = form.querySelector('#imp-key').value.trim();
  if (key) fd.append('key', key);
  fd.append('dry_run', dryRun ? 'true' : 'false');
  appendLayerFields(fd, form);
  return fd;
}

/** An import the server refused; `body` is its JSON error (a replace to confirm has `confirm`). */
class ImportError extends Error {
  /** @param {string} message @param {any} body */
  constructor(message, body) {
    super(message);
    this.body = body;
  }
}

async function post(fd) {
  const res = await fetch('/api/imports', { method: 'POST', body: fd, headers: { Accept: 'application/json', 'Accept-Language': lang() } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ImportError(body.detail || body.description || `HTTP ${res.status}`, body);
  return body;
}

/** The flag a refused replace asks for ('force' or 'allow_empty'), or null. */
function confirmFlag(err) {
  const flag = err instanceof ImportError ? err.body?.confirm : null;
  return flag === 'force' || flag === 'allow_empty' ? flag : null;
}

/** Ask whether to go on with a replace that drops most (or all) of the layer; true to go on. */
function askReplace(body) {
  return new Promise((resolve) => {
    let answer = false;
    const { body: box, close } = openModal({ id: 'imp-confirm', title: t('imp.confirm.title'), onClose: () => resolve(answer) });
    const values = { old: fmtNumber(body.rows_before), new: fmtNumber(body.rows_kept), layer: body.layer ?? '' };
    const ok = el('button', { class: 'btn primary', id: 'imp-confirm-ok', type: 'button' }, t('imp.confirm.ok'));
    const cancel = el('button', { class: 'btn', id: 'imp-confirm-cancel', type: 'button', autofocus: true }, t('imp.confirm.cancel'));
    ok.addEventListener('click', () => {
      answer = true;
      close();
    });
    cancel.addEventListener('click', () => close());
    box.append(el('p', { id: 'imp-confirm-text' }, t(body.confirm === 'allow_empty' ? 'imp.confirm.empty' : 'imp.confirm.force', values)), el('div', { class: 'row' }, cancel, ok));
    cancel.focus();
  });
}

function table(rows, cols, heads) {
  const tbl = el('table', { class: 'imp-table' });
  tbl.append(el('tr', {}, cols.map((c, i) => el('th', {}, heads ? heads[i] : c))));
  for (const r of rows) tbl.append(el('tr', {}, cols.map((c) => el('td', {}, fmtCell(r[c])))));
  return tbl;
}

/** The CRS line of a report: name, EPSG code and where it came from, in words. */
function crsText(crs) {
  const source = crs.source ? `, ${t(`imp.crs_source.${crs.source}`)}` : '';
  return `${crs.name || '—'} (EPSG:${crs.srid ?? '?'}${source})`;
}

/** A note as a sentence: the server's English notes start in lower case. */
function sentence(text) {
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
}

/** A column's JSON-schema type in words ("số | trống" for ["number", "null"]). */
function typeLabel(schema) {
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const kind = schema.format === 'date' || schema.format === 'date-time' ? [schema.format] : [];
  return [...kind, ...types.filter((x) => x && !(kind.length && x === 'string'))]
    .map((x) => {
      const key = `imp.type.${x}`;
      const label = t(key);
      return label === key ? x : label;
    })
    .join(' | ');
}

/** A geometry type in words ("Điểm" for Point). */
function geomLabel(type) {
  if (!type) return '—';
  const key = `geom.${type}`;
  const label = t(key);
  return label === key ? type : label;
}

function fmtCell(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return fmtNumber(v, 3);
  if (typeof v === 'object') return JSON.stringify(v).slice(0, 120);
  return String(v).slice(0, 120);
}

/** The report of a raster import (issue 20): bands, type, nodata, size, resolution, CRS. */
function rasterReportView(report) {
  const r = report.raster || {};
  const crs = report.crs || {};
  return el(
    'div',
    { id: 'imp-report' },
    el(
      'table',
      { class: 'imp-table' },
      el('tr', {}, el('th', {}, t('import.format')), el('td', {}, `${t('raster.kind')} · COG`)),
      el('tr', {}, el('th', {}, t('import.crs')), el('td', {}, crsText(crs))),
      el('tr', {}, el('th', {}, t('raster.bands')), el('td', {}, `${r.bands} · ${r.dtype} · nodata ${r.nodata ?? '—'}`)),
      el('tr', {}, el('th', {}, t('raster.size')), el('td', {}, `${fmtNumber(r.width)} × ${fmtNumber(r.height)} · ${t('raster.resolution', { m: fmtNumber(Math.round(r.resolution_m || 0)) })}`)),
    ),
    report.notes && report.notes.length ? el('ul', { class: 'plain small' }, report.notes.map((n) => el('li', {}, sentence(n)))) : null,
  );
}

function reportView(report) {
  if (report.kind === 'raster') return rasterReportView(report);
  const box = el('div', { id: 'imp-report' });
  const crs = report.crs || {};
  box.append(
    el(
      'table',
      { class: 'imp-table' },
      el('tr', {}, el('th', {}, t('import.format')), el('td', {}, `${report.format || '—'}${report.source_layer ? ` · ${report.source_layer}` : ''}`)),
      el('tr', {}, el('th', {}, t('import.crs')), el('td', {}, crsText(crs))),
      el('tr', {}, el('th', {}, t('import.geometry')), el('td', {}, geomLabel(report.geometry_type))),
      el('tr', {}, el('th', {}, t('import.rows')), el('td', {}, `${fmtNumber(report.rows_read)} · ✔ ${fmtNumber(report.rows_valid)} · ✖ ${fmtNumber(report.rows_rejected)} · ⟳ ${fmtNumber(report.repaired)}`)),
      report.inserted || report.updated ? el('tr', {}, el('th', {}, t('import.written')), el('td', {}, `+${fmtNumber(report.inserted)} · ~${fmtNumber(report.updated)} · =${fmtNumber(report.unchanged)}`)) : null,
    ),
  );
  const props = (report.property_schema && report.property_schema.properties) || {};
  if (Object.keys(props).length) {
    box.append(el('h3', {}, t('import.schema')), table(Object.entries(props).map(([name, s]) => ({ name, type: typeLabel(s) })), ['name', 'type'], [t('import.field'), t('import.type')]));
  }
  if (report.preview && report.preview.length) {
    // flatten {row, properties:{…}, geometry_wkt} into one column per property
    const rowsFlat = report.preview.slice(0, 20).map((r) => {
      const { properties, ...rest } = r;
      return properties && typeof properties === 'object' ? { ...rest, ...properties } : r;
    });
    const cols = [...new Set(rowsFlat.flatMap((r) => Object.keys(r)))].slice(0, 10);
    // the row number and the geometry get words; the file's own columns keep their names
    const heads = cols.map((c) => (c === 'row' ? t('imp.col.row') : c === 'geometry_wkt' ? t('imp.col.geometry_wkt') : c));
    box.append(el('h3', {}, t('import.preview')), el('div', { class: 'results-wrap' }, table(rowsFlat, cols, heads)));
  }
  const reasons = Object.entries(report.rejects_by_reason || {});
  if (reasons.length) {
    box.append(el('h3', {}, t('import.rejects')), table(reasons.map(([reason, n]) => ({ reason: reasonLabel(reason), n })), ['reason', 'n'], [t('import.reason'), t('import.count')]));
  }
  if (report.notes && report.notes.length) box.append(el('ul', { class: 'plain small' }, report.notes.map((n) => el('li', {}, sentence(n)))));
  return box;
}

async function watchJob(app, id, out) {
  for (;;) {
    let job;
    try {
      job = await getJSON(`/api/imports/${id}`);
    } catch (err) {
      out.replaceChildren(el('p', { class: 'warn' }, err.message));
      return;
    }
    const p = job.progress || {};
    const done = Number(p.done ?? p.rows_done ?? p.rows ?? 0);
    const total = Number(p.total ?? p.rows_total ?? job.counts?.rows_read ?? 0);
    const pct = job.status === 'running' ? (total ? Math.min(100, (100 * done) / total) : 30) : 100;
    const errors = (job.errors || []).map((e) => (typeof e === 'string' ? e : e && (e.detail || e.error))).filter(Boolean);
    out.replaceChildren(
      el('div', { class: 'row between' }, el('b', {}, `${t('import.status')}: ${valueLabel(job.status)}`), el('span', { class: 'muted' }, `#${job.id}`)),
      errors.length ? el('div', { class: 'warn', id: 'imp-errors' }, errors.map((e) => el('p', {}, e))) : null,
      el('div', { class: 'progress', id: 'imp-progress' }, el('div', { style: `width:${pct.toFixed(0)}%` })),
      job.report && Object.keys(job.report).length ? reportView(job.report) : el('p', { class: 'muted' }, total ? `${fmtNumber(done)} / ${fmtNumber(total)}` : ''),
    );
    if (job.status !== 'running' && job.status !== 'queued') {
      try {
        const rejects = await getJSON(`/api/imports/${id}/rejects?limit=200`);
        if (rejects.length) out.append(rejectsView(rejects, id));
      } catch {
        // no rejects view for this batch
      }
      loadHistory(app);
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function loadHistory(app) {
  const box = document.getElementById('imp-history');
  if (!box || !app.state.caps.importsList) return;
  try {
    const rows = await getJSON('/api/imports?limit=15');
    box.replaceChildren(table(rows.map((r) => ({ id: r.id, layer: r.layer, source: r.source, status: valueLabel(r.status), started: fmtDate(r.started_at) })), ['id', 'layer', 'source', 'status', 'started'], [t('imp.col.batch'), t('imp.col.layer'), t('imp.col.source'), t('imp.col.status'), t('imp.col.started')]));
  } catch (err) {
    box.replaceChildren(el('p', { class: 'muted' }, err.message));
  }
}

/** The file field: the browser's own button speaks the browser's language, ours the page's. */
function fileField() {
  const input = el('input', { type: 'file', id: 'imp-file', class: 'rep-file', accept: ACCEPT, required: true });
  const name = el('span', { class: 'muted small', id: 'imp-file-name' }, t('import.no_file'));
  input.addEventListener('change', () => (name.textContent = input.files[0] ? input.files[0].name : t('import.no_file')));
  return el('div', { class: 'imp-file-field' }, el('div', { class: 'rep-label' }, t('import.file')), el('div', { class: 'row rep-where-row' }, el('label', { class: 'btn small rep-file-btn', for: 'imp-file' }, `📄 ${t('import.choose_file')}`, input), name));
}

/** Draw the import page. */
export function renderImportPage(app) {
  const page = document.getElementById('importpage');
  if (!page) return;
  const { caps } = app.state;
  page.innerHTML = '';
  page.append(el('h1', {}, t('import.title')), el('p', { class: 'muted' }, t('import.intro')));
  if (!caps || !caps.imports) {
    page.append(el('p', { class: 'warn' }, t('import.unavailable')));
    return;
  }
  const out = el('div', { id: 'imp-out' });
  const form = el(
    'form',
    { class: 'imp-card', id: 'imp-form', onsubmit: (e) => e.preventDefault() },
    el('h2', {}, t('nav.import')),
    fileField(),
    el('label', {}, t('import.layer'), el('input', { type: 'text', id: 'imp-layer', required: true, pattern: '[a-z][a-z0-9_]{1,62}', placeholder: t('import.layer_example') })),
    el(
      'label',
      {},
      t('import.mode'),
      el('select', { id: 'imp-mode' }, el('option', { value: 'append' }, t('import.mode_append')), el('option', { value: 'upsert' }, t('import.mode_upsert')), el('option', { value: 'replace' }, t('import.mode_replace'))),
    ),
    el('label', {}, `${t('import.crs')} (EPSG:9208 …)`, el('input', { type: 'text', id: 'imp-crs', placeholder: t('import.crs_auto') })),
    el('label', {}, t('import.key'), el('input', { type: 'text', id: 'imp-key', placeholder: 'ma_doi_tuong' })),
    layerFields(),
    el(
      'div',
      { class: 'row' },
      el(
        'button',
        {
          class: 'btn',
          id: 'imp-dry',
          type: 'button',
          onclick: async () => {
            if (!form.reportValidity()) return;
            out.replaceChildren(el('p', { class: 'muted' }, t('app.loading')));
            try {
              let warning = null;
              let report;
              try {
                report = await post(formData(form, true));
              } catch (err) {
                const flag = confirmFlag(err);
                if (!flag) throw err;
                // show what the replace would leave; the commit asks for confirmation
                warning = el('p', { class: 'warn', id: 'imp-replace-warn' }, err.message);
                const fd = formData(form, true);
                fd.append(flag, 'true');
                report = await post(fd);
              }
              out.replaceChildren(el('h2', {}, t('import.report')), ...(warning ? [warning] : []), reportView(report));
              offerColumns(report);
              form.querySelector('#imp-commit').disabled = false;
            } catch (err) {
              out.replaceChildren(el('p', { class: 'warn' }, err.message));
            }
          },
        },
        t('import.dry_run'),
      ),
      el(
        'button',
        {
          class: 'btn primary',
          id: 'imp-commit',
          type: 'button',
          disabled: true,
          onclick: async () => {
            if (!form.reportValidity()) return;
            try {
              let job;
              try {
                job = await post(formData(form, false));
              } catch (err) {
                const flag = confirmFlag(err);
                if (!flag) throw err;
                if (!(await askReplace(err.body))) {
                  out.replaceChildren(el('p', { class: 'muted', id: 'imp-cancelled' }, t('imp.confirm.cancelled', { layer: err.body.layer ?? '' })));
                  return;
                }
                const fd = formData(form, false);
                fd.append(flag, 'true');
                job = await post(fd);
              }
              out.replaceChildren(el('h2', {}, t('import.progress')));
              const live = el('div');
              out.append(live);
              watchJob(app, job.id, live);
            } catch (err) {
              out.replaceChildren(el('p', { class: 'warn' }, err.message));
            }
          },
        },
        t('import.commit'),
      ),
    ),
  );
  page.append(
    el('div', { class: 'imp-grid' }, form, el('div', { class: 'imp-card' }, out)),
    el('div', { class: 'imp-card', style: 'margin-top:18px' }, el('h2', {}, t('import.history')), el('div', { id: 'imp-history' })),
  );
  loadHistory(app);
}
