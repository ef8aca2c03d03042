// The GIS staff's side of an import that is about the layer, not the file: its title in
// Vietnamese and English, sector group, colour, the property that names a feature and who may
// read it (public, signed-in, or chosen roles); and the rejected rows with the row, the field,
// the reason in words and the bad value, downloadable as CSV.

import { fmtNumber, t, valueLabel } from '../i18n.js';
import { download, el } from '../util.js';

const SECTORS = ['admin', 'health', 'education', 'tourism', 'land', 'security', 'traffic', 'feedback', 'environment', 'infrastructure', 'economy', 'other'];
const ROLES = ['leader', 'planner', 'operator', 'gis_staff', 'commune_staff', 'citizen'];

/** The layer fields of the import form. */
export function layerFields() {
  const roles = el(
    'div',
    { class: 'imp-roles', id: 'imp-roles', hidden: true },
    ROLES.map((r) => el('label', { class: 'imp-role' }, el('input', { type: 'checkbox', name: 'imp-role', value: r }), valueLabel(r))),
  );
  const visibility = el(
    'select',
    { id: 'imp-visibility', onchange: (e) => (roles.hidden = e.target.value !== 'roles') },
    ['public', 'signed_in', 'roles'].map((v) => el('option', { value: v }, t(`imp.visibility.${v}`))),
  );
  return el(
    'fieldset',
    { class: 'imp-layer-fields' },
    el('legend', {}, t('imp.layer_fields')),
    el('label', {}, t('imp.title_vi'), el('input', { type: 'text', id: 'imp-title-vi', maxlength: '200' })),
    el('label', {}, t('imp.title_en'), el('input', { type: 'text', id: 'imp-title-en', maxlength: '200' })),
    el('label', {}, t('imp.sector'), el('select', { id: 'imp-sector' }, SECTORS.map((s) => el('option', { value: s, selected: s === 'other' }, t(`sector.${s}`))))),
    el('label', { class: 'imp-color' }, t('imp.color'), el('input', { type: 'color', id: 'imp-color', value: '#e91e63' })),
    el('label', {}, t('imp.name_field'), el('input', { type: 'text', id: 'imp-name-field', list: 'imp-columns', maxlength: '63', placeholder: t('imp.name_field_hint') }), el('datalist', { id: 'imp-columns' })),
    el('label', {}, t('imp.visibility'), visibility),
    roles,
  );
}

/** Offer the file's columns (from a dry run's schema) as name fields. */
export function offerColumns(report) {
  const list = document.getElementById('imp-columns');
  const props = (report && report.property_schema && report.property_schema.properties) || {};
  if (list) list.replaceChildren(...Object.keys(props).map((k) => el('option', { value: k })));
}

/** Add the layer fields to an import's form data. */
export function appendLayerFields(fd, form) {
  const value = (id) => form.querySelector(id).value.trim();
  if (value('#imp-title-vi')) fd.append('title_vi', value('#imp-title-vi'));
  if (value('#imp-title-en')) fd.append('title_en', value('#imp-title-en'));
  fd.append('sector', value('#imp-sector'));
  fd.append('color', value('#imp-color'));
  if (value('#imp-name-field')) fd.append('name_field', value('#imp-name-field'));
  const vis = value('#imp-visibility');
  fd.append('visibility', vis);
  if (vis === 'roles') for (const box of form.querySelectorAll('input[name=imp-role]:checked')) fd.append('roles', box.value);
}

/** A reject reason in words. */
export function reasonLabel(reason) {
  const key = `imp.reason.${reason}`;
  const label = t(key);
  return label === key ? reason : label;
}

const CSV_COLUMNS = ['row', 'field', 'reason', 'value', 'detail'];

function csvCell(v) {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n\r;]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** The rejected rows: row, field, reason, bad value; a CSV download of them. */
export function rejectsView(rejects, batchId) {
  const tbl = el('table', { class: 'imp-table', id: 'imp-rejects' });
  tbl.append(el('tr', {}, [t('imp.col.row'), t('imp.col.field'), t('imp.col.reason'), t('imp.col.value')].map((h) => el('th', {}, h))));
  for (const r of rejects) {
    tbl.append(el('tr', { 'data-row': r.row }, el('td', {}, fmtNumber(r.row)), el('td', {}, r.field || '—'), el('td', {}, reasonLabel(r.reason)), el('td', { class: 'imp-bad' }, r.value ?? '—')));
  }
  const csv = () => {
    // the header in the user's language; reasons in words; a BOM so spreadsheet programs read UTF-8
    const head = [t('imp.col.row'), t('imp.col.field'), t('imp.col.reason'), t('imp.col.value'), t('imp.col.detail')];
    const lines = [head.map(csvCell).join(',')];
    for (const r of rejects) lines.push(CSV_COLUMNS.map((c) => csvCell(c === 'reason' ? reasonLabel(r.reason) : r[c])).join(','));
    download(`rejects-${batchId}.csv`, `\ufeff${lines.join('\r\n')}\r\n`, 'text/csv;charset=utf-8');
  };
  return el(
    'div',
    { class: 'imp-rejects' },
    el('div', { class: 'row between' }, el('h3', {}, t('imp.rejects_n', { n: fmtNumber(rejects.length) })), el('button', { class: 'btn small', id: 'imp-rejects-csv', type: 'button', onclick: csv }, t('imp.rejects_csv'))),
    el('div', { class: 'results-wrap' }, tbl),
  );
}
