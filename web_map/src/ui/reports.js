// The field-report page (#/reports): citizens send a report (category, description, location
// picked on a map or from the device, photos with a preview), get a receipt and follow "my
// reports" (history, resolution and its photo, rating); commune and provincial staff work a
// queue (filters, sort by SLA due) and a report panel whose buttons are exactly the workflow
// steps the server says their role may take (GET /api/reports/{code} → allowed_steps).

import * as maplibregl from 'maplibre-gl';

import { getJSON } from '../api.js';
import { basemapStyle } from '../basemap.js';
import { NGHE_AN_BOUNDS } from '../shell.js';
import { fmtDate, lang, t, valueLabel } from '../i18n.js';
import { openIncidentFromReportButton } from './incidents.js';
import { el } from '../util.js';

const STAFF = new Set(['commune_staff', 'operator', 'leader', 'planner', 'admin']);
const STATUSES = ['received', 'accepted', 'info_requested', 'assigned', 'in_progress', 'resolved', 'rejected'];
const RATINGS = ['hai_long', 'chap_nhan', 'khong_hai_long'];
// steps whose form carries a photo (multipart), the others send JSON
const PHOTO_STEPS = new Set(['resolve', 'provide_info']);
const STEP_PATH = { request_info: 'request-info', provide_info: 'info' };

// page state kept across re-renders (a language switch must not lose a half-written report)
const S = {
  form: null,
  draft: { category: 'urban_order', description: '', lonlat: null, files: [] },
  receipt: null,
  mine: null,
  queue: null,
  filters: { status: '', category: '', overdue: false, department: '', sort: 'due' },
  selected: null,
  report: null,
  message: null,
  busy: false,
  step: null,
};
let maps = [];

/** The fetch headers every call sends: the server answers errors in the page's language. */
function headers(extra = {}) {
  return { Accept: 'application/json', 'Accept-Language': lang(), ...extra };
}

async function call(url, opts = {}) {
  const res = await fetch(url, { ...opts, headers: headers(opts.headers) });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(body.detail || `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

/** A responsible unit's name in the page's language (the stored name is Vietnamese). */
function unitName(name) {
  const key = `dept.${name}`;
  const label = t(key);
  return label === key ? name : label;
}

function isStaff(app) {
  const u = app.state.user;
  return !!u && STAFF.has(u.role);
}

/** Draw the page for the signed-in role (citizen or anonymous: the form; staff: the queue). */
export function renderReportsPage(app) {
  const page = document.getElementById('reportspage');
  if (!page) return;
  for (const m of maps) m.remove();
  maps = [];
  page.innerHTML = '';
  // a message written in the other language is not shown after a switch
  if (S.lang !== lang()) S.message = null;
  S.lang = lang();
  page.dataset.view = isStaff(app) ? 'staff' : 'citizen';
  if (!S.form) {
    getJSON('/api/reports/form')
      .then((f) => {
        S.form = f;
        renderReportsPage(app);
      })
      .catch((e) => showMessage(app, e.message, 'error'));
    page.append(el('p', { class: 'muted' }, t('app.loading')));
    return;
  }
  if (isStaff(app)) renderStaff(app, page);
  else renderCitizen(app, page);
}

function showMessage(app, text, kind = 'ok') {
  S.message = text ? { text, kind } : null;
  const box = document.getElementById('rep-message');
  if (box) {
    box.textContent = text || '';
    box.className = `rep-message ${kind}`;
    box.hidden = !text;
  }
}

function messageBox() {
  const m = S.message;
  return el('div', { id: 'rep-message', class: `rep-message ${m ? m.kind : ''}`, role: 'status', hidden: !m }, m ? m.text : '');
}

// --- a small map: pick a point, or show one ---------------------------------------------------

function miniMap(container, lonlat, onPick) {
  const map = new maplibregl.Map({
    container,
    style: basemapStyle(location.origin),
    bounds: lonlat ? undefined : NGHE_AN_BOUNDS,
    center: lonlat || undefined,
    zoom: lonlat ? 13 : undefined,
    attributionControl: false,
    dragRotate: false,
    renderWorldCopies: false,
    fadeDuration: 0,
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  let marker = lonlat ? new maplibregl.Marker({ color: '#ff4081' }).setLngLat(lonlat).addTo(map) : null;
  if (onPick) {
    map.on('click', (e) => {
      const p = [e.lngLat.lng, e.lngLat.lat];
      if (marker) marker.setLngLat(p);
      else marker = new maplibregl.Marker({ color: '#ff4081' }).setLngLat(p).addTo(map);
      onPick(p);
    });
  }
  maps.push(map);
  return {
    map,
    set(p) {
      if (marker) marker.setLngLat(p);
      else marker = new maplibregl.Marker({ color: '#ff4081' }).setLngLat(p).addTo(map);
      map.jumpTo({ center: p, zoom: Math.max(map.getZoom(), 13) });
    },
  };
}

// --- citizen ---------------------------------------------------------------------------------

function renderCitizen(app, page) {
  const user = app.state.user;
  page.append(el('h1', {}, t('nav.reports')), messageBox());
  const grid = el('div', { class: 'rep-grid' });
  page.append(grid);
  grid.append(S.receipt ? receiptCard(app) : formCard(app));
  const mine = el('div', { class: 'imp-card rep-mine', id: 'rep-mine' }, el('h2', {}, t('rep.mine')));
  grid.append(mine);
  if (!user) {
    mine.append(el('p', { class: 'muted' }, t('rep.sign_in_hint')));
    return;
  }
  if (S.report && S.report.code === S.selected) {
    mine.append(el('button', { class: 'btn small ghost', id: 'rep-back', onclick: () => selectReport(app, null) }, `← ${t('rep.back')}`), reportDetail(app, S.report));
    return;
  }
  if (S.mine === null) {
    call('/api/reports/mine')
      .then((rows) => {
        S.mine = rows;
        renderReportsPage(app);
      })
      .catch((e) => showMessage(app, e.message, 'error'));
    return;
  }
  if (!S.mine.length) mine.append(el('p', { class: 'muted' }, t('rep.mine_empty')));
  const list = el('ul', { class: 'rep-list' });
  for (const r of S.mine) {
    list.append(
      el(
        'li',
        { class: 'rep-item', 'data-code': r.code, tabindex: '0', onclick: () => selectReport(app, r.code) },
        el('div', { class: 'rep-item-head' }, el('b', {}, r.code), statusChip(r)),
        el('div', { class: 'muted' }, `${valueLabel(r.category)} · ${r.commune_name} · ${fmtDate(r.received_at)}`),
        el('div', { class: 'rep-desc' }, r.description),
      ),
    );
  }
  mine.append(list);
}

function formCard(app) {
  const d = S.draft;
  const max = S.form.max_photos;
  const cat = el('select', { id: 'rep-category', onchange: (e) => (d.category = e.target.value) }, S.form.categories.map((c) => el('option', { value: c.code, selected: c.code === d.category }, valueLabel(c.code))));
  const desc = el('textarea', { id: 'rep-description', rows: '4', maxlength: '4000', placeholder: t('rep.description_hint'), oninput: (e) => (d.description = e.target.value) });
  desc.value = d.description;
  const where = el('div', { id: 'rep-where', class: 'muted' }, d.lonlat ? t('rep.location_set', { lat: d.lonlat[1].toFixed(5), lon: d.lonlat[0].toFixed(5) }) : t('rep.location_none'));
  const mapBox = el('div', { class: 'rep-map', id: 'rep-pick-map' });
  const previews = el('div', { class: 'rep-previews', id: 'rep-previews' });
  const files = el('input', { type: 'file', id: 'rep-photos', class: 'rep-file', accept: 'image/jpeg,image/png', multiple: true });
  const drawPreviews = () => {
    previews.innerHTML = '';
    d.files.forEach((f, i) => {
      const url = URL.createObjectURL(f);
      previews.append(
        el(
          'figure',
          { class: 'rep-thumb' },
          el('img', { src: url, alt: f.name, onload: () => URL.revokeObjectURL(url) }),
          el('button', { type: 'button', class: 'btn tiny', title: t('rep.remove_photo'), 'aria-label': t('rep.remove_photo'), onclick: () => { d.files.splice(i, 1); drawPreviews(); } }, '✕'),
        ),
      );
    });
  };
  files.addEventListener('change', () => {
    const chosen = [...files.files];
    files.value = '';
    if (d.files.length + chosen.length > max) showMessage(app, t('rep.too_many_photos', { n: max }), 'error');
    d.files = d.files.concat(chosen).slice(0, max);
    drawPreviews();
  });
  drawPreviews();
  const setPoint = (p) => {
    d.lonlat = p;
    where.textContent = t('rep.location_set', { lat: p[1].toFixed(5), lon: p[0].toFixed(5) });
  };
  const send = el('button', { class: 'btn primary', type: 'submit', id: 'rep-send' }, t('rep.send'));
  const form = el(
    'form',
    {
      class: 'imp-card rep-form',
      id: 'rep-form',
      onsubmit: async (e) => {
        e.preventDefault();
        if (S.busy) return;
        const fd = new FormData();
        fd.append('category', d.category);
        fd.append('description', d.description.trim());
        if (d.lonlat) {
          fd.append('lon', String(d.lonlat[0]));
          fd.append('lat', String(d.lonlat[1]));
        }
        for (const f of d.files) fd.append('photos', f, f.name);
        S.busy = true;
        send.disabled = true;
        send.textContent = t('rep.sending');
        try {
          S.receipt = await call('/api/reports', { method: 'POST', body: fd });
          S.draft = { category: d.category, description: '', lonlat: null, files: [] };
          S.mine = null;
          S.message = null;
        } catch (err) {
          S.message = { text: t('rep.error', { detail: err.message }), kind: 'error' };
        } finally {
          S.busy = false;
        }
        renderReportsPage(app);
      },
    },
    el('h2', {}, t('rep.new')),
    el('label', {}, t('rep.category'), cat),
    el('label', {}, t('rep.description'), desc),
    el('div', { class: 'rep-label' }, t('rep.location')),
    el('div', { class: 'muted small' }, t('rep.location_hint')),
    mapBox,
    el(
      'div',
      { class: 'row rep-where-row' },
      where,
      el(
        'button',
        {
          type: 'button',
          class: 'btn small',
          id: 'rep-geolocate',
          onclick: () => {
            if (!navigator.geolocation) return showMessage(app, t('rep.location_denied'), 'error');
            navigator.geolocation.getCurrentPosition(
              (pos) => {
                const p = [pos.coords.longitude, pos.coords.latitude];
                setPoint(p);
                picker.set(p);
              },
              () => showMessage(app, t('rep.location_denied'), 'error'),
              { enableHighAccuracy: true, timeout: 10000 },
            );
          },
        },
        `⌖ ${t('rep.use_my_location')}`,
      ),
    ),
    el('div', { class: 'rep-label' }, t('rep.photos', { n: max })),
    // the browser's own file button speaks the browser's language: ours speaks the page's
    el('label', { class: 'btn small rep-file-btn', for: 'rep-photos' }, `📷 ${t('rep.choose_photos')}`, files),
    previews,
    el('div', { class: 'row' }, send),
  );
  const picker = miniMap(mapBox, d.lonlat, setPoint);
  return form;
}

function receiptCard(app) {
  const r = S.receipt;
  return el(
    'div',
    { class: 'imp-card rep-receipt', id: 'rep-receipt' },
    el('h2', {}, t('rep.receipt')),
    el('div', { class: 'rep-code-label muted' }, t('rep.receipt_code')),
    el('div', { class: 'rep-code', id: 'rep-receipt-code' }, r.duplicate_of || r.code),
    r.duplicate_of ? el('p', {}, t('rep.receipt_duplicate', { code: r.duplicate_of })) : null,
    el(
      'table',
      { class: 'imp-table' },
      el('tr', {}, el('th', {}, t('rep.category')), el('td', {}, valueLabel(r.category))),
      el('tr', {}, el('th', {}, t('rep.commune')), el('td', {}, r.commune_name)),
      el('tr', {}, el('th', {}, t('rep.status')), el('td', {}, valueLabel(r.status))),
      el('tr', {}, el('th', {}, t('rep.received_at')), el('td', {}, fmtDate(r.received_at))),
      el('tr', {}, el('th', {}, t('rep.due_at')), el('td', {}, fmtDate(r.due_at))),
    ),
    el('div', { class: 'row' }, el('button', { class: 'btn', id: 'rep-another', onclick: () => { S.receipt = null; renderReportsPage(app); } }, t('rep.another'))),
  );
}

// --- staff -----------------------------------------------------------------------------------

function queueUrl() {
  const f = S.filters;
  const q = new URLSearchParams({ limit: '300', sort: f.sort });
  if (f.status) q.set('status', f.status);
  if (f.category) q.set('category', f.category);
  if (f.overdue) q.set('overdue', 'true');
  if (f.department) q.set('department', f.department);
  return `/api/reports?${q}`;
}

function renderStaff(app, page) {
  page.append(el('h1', {}, t('rep.queue')), messageBox());
  const grid = el('div', { class: `rep-grid staff${S.selected ? ' has-selection' : ''}` });
  page.append(grid);
  const f = S.filters;
  const refresh = () => {
    S.queue = null;
    renderReportsPage(app);
  };
  const sel = (id, key, options) =>
    el('select', { id, onchange: (e) => { f[key] = e.target.value; refresh(); } }, options.map(([v, label]) => el('option', { value: v, selected: f[key] === v }, label)));
  const filters = el(
    'div',
    { class: 'rep-filters' },
    el('label', {}, t('rep.status'), sel('rep-f-status', 'status', [['', t('rep.all')], ...STATUSES.map((s) => [s, valueLabel(s)])])),
    el('label', {}, t('rep.category'), sel('rep-f-category', 'category', [['', t('rep.all')], ...S.form.categories.map((c) => [c.code, valueLabel(c.code)])])),
    el('label', {}, t('rep.department'), sel('rep-f-unit', 'department', [['', t('rep.all')], ...S.form.departments.map((d) => [d, unitName(d)])])),
    el('label', {}, t('rep.sort'), sel('rep-f-sort', 'sort', [['due', t('rep.sort_due')], ['received', t('rep.sort_received')]])),
    el('label', { class: 'rep-check' }, el('input', { type: 'checkbox', id: 'rep-f-overdue', checked: f.overdue, onchange: (e) => { f.overdue = e.target.checked; refresh(); } }), t('rep.overdue_only')),
  );
  const queue = el('div', { class: 'imp-card rep-queue', id: 'rep-queue' }, filters);
  grid.append(queue);
  if (S.queue === null) {
    call(queueUrl())
      .then((rows) => {
        S.queue = rows;
        renderReportsPage(app);
      })
      .catch((e) => showMessage(app, e.message, 'error'));
  } else {
    queue.append(el('div', { class: 'muted small' }, t(S.queue.length === 1 ? 'rep.count_one' : 'rep.count', { n: S.queue.length })));
    if (!S.queue.length) queue.append(el('p', { class: 'muted' }, t('rep.empty')));
    else {
    const tbl = el('table', { class: 'imp-table rep-table' });
    tbl.append(el('tr', {}, [t('rep.code'), t('rep.category'), t('rep.commune'), t('rep.status'), t('rep.due_at')].map((h) => el('th', {}, h))));
    for (const r of S.queue) {
      tbl.append(
        el(
          'tr',
          { class: `rep-row${r.overdue ? ' overdue' : ''}${r.code === S.selected ? ' selected' : ''}`, 'data-code': r.code, tabindex: '0', onclick: () => selectReport(app, r.code) },
          el('td', {}, r.code),
          el('td', {}, valueLabel(r.category)),
          el('td', {}, r.commune_name),
          el('td', {}, statusChip(r)),
          el('td', {}, fmtDate(r.due_at), r.overdue ? el('span', { class: 'rep-late' }, ` ${t('rep.overdue')}`) : null),
        ),
      );
    }
    queue.append(tbl);
    }
  }
  const panel = el('div', { class: 'imp-card rep-panel', id: 'rep-panel' });
  grid.append(panel);
  if (S.report && S.report.code === S.selected) {
    panel.append(el('button', { class: 'btn small ghost rep-back', id: 'rep-back', onclick: () => selectReport(app, null) }, `← ${t('rep.back')}`), reportDetail(app, S.report));
  } else panel.append(el('p', { class: 'muted' }, t('rep.select_report')));
}

async function selectReport(app, code) {
  S.selected = code;
  S.step = null;
  S.report = null;
  if (code) {
    try {
      S.report = await call(`/api/reports/${encodeURIComponent(code)}`);
    } catch (e) {
      S.message = { text: t('rep.error', { detail: e.message }), kind: 'error' };
      S.selected = null;
    }
  }
  renderReportsPage(app);
}

function statusChip(r) {
  return el('span', { class: `rep-status st-${r.status}${r.overdue ? ' overdue' : ''}` }, valueLabel(r.status));
}

// --- one report: description, photos, position, history, steps, rating ------------------------

function reportDetail(app, r) {
  const box = el('div', { class: 'rep-detail', id: 'rep-detail', 'data-code': r.code, 'data-status': r.status });
  box.append(
    el('div', { class: 'rep-item-head' }, el('h3', {}, r.code), statusChip(r)),
    el('div', { class: 'muted' }, `${valueLabel(r.category)} · ${r.commune_name}${r.department ? ` · ${unitName(r.department)}` : ''}`),
    el('p', { class: 'rep-desc', id: 'rep-description-text' }, r.description),
    el(
      'table',
      { class: 'imp-table' },
      el('tr', {}, el('th', {}, t('rep.received_at')), el('td', {}, fmtDate(r.received_at))),
      el('tr', {}, el('th', {}, t('rep.due_at')), el('td', {}, fmtDate(r.due_at), r.overdue ? el('span', { class: 'rep-late' }, ` ${t('rep.overdue')}`) : null)),
      r.assigned_to ? el('tr', {}, el('th', {}, t('rep.assignee')), el('td', {}, r.assigned_to)) : null,
      r.contact && Object.keys(r.contact).length ? el('tr', {}, el('th', {}, t('rep.contact')), el('td', {}, Object.values(r.contact).join(' · '))) : null,
    ),
  );
  if (r.status === 'info_requested') {
    const ask = [...r.history].reverse().find((h) => h.action === 'request_info');
    if (ask) box.append(el('p', { class: 'rep-ask' }, t('rep.info_requested_note', { note: ask.note })));
  }
  if ((r.status === 'resolved' || r.status === 'rejected') && r.resolution_note) {
    box.append(el('div', { class: 'rep-resolution', id: 'rep-resolution' }, el('b', {}, r.status === 'resolved' ? t('rep.resolution') : t('rep.reject_reason')), el('p', {}, r.resolution_note)));
  }
  if (r.photos && r.photos.length) {
    box.append(
      el('div', { class: 'rep-label' }, t('rep.photos_title')),
      el(
        'div',
        { class: 'rep-photos' },
        r.photos.map((p) => el('figure', { class: `rep-photo kind-${p.kind}` }, el('a', { href: p.href, target: '_blank', rel: 'noopener' }, el('img', { src: p.href, alt: t(`rep.photo_kind.${p.kind}`), loading: 'lazy' })), el('figcaption', {}, t(`rep.photo_kind.${p.kind}`)))),
      ),
    );
  }
  const mapBox = el('div', { class: 'rep-map small', id: 'rep-detail-map' });
  box.append(mapBox);
  setTimeout(() => mapBox.isConnected && miniMap(mapBox, [r.lon, r.lat], null), 0);
  box.append(stepsBox(app, r));
  const openInc = openIncidentFromReportButton(app, r);
  if (openInc) box.append(el('div', { class: 'rep-incident' }, openInc));
  if (app.state.user && app.state.user.role === 'citizen' && r.status === 'resolved') box.append(ratingBox(app, r));
  box.append(el('div', { class: 'rep-label' }, t('rep.history')), historyTable(r));
  return box;
}

function historyTable(r) {
  const tbl = el('table', { class: 'imp-table rep-history', id: 'rep-history' });
  const showActor = r.history.some((h) => h.actor);
  tbl.append(el('tr', {}, [t('rep.when'), t('rep.action'), showActor ? t('rep.actor') : null, t('rep.note')].filter(Boolean).map((h) => el('th', {}, h))));
  for (const h of r.history) {
    const note = h.action === 'rate' ? valueLabel(h.note) : h.action === 'overdue' ? '' : h.note;
    tbl.append(
      el(
        'tr',
        { 'data-action': h.action },
        el('td', {}, fmtDate(h.at)),
        el('td', {}, t(`rep.step.${h.action}`), h.to_status && h.to_status !== h.from_status ? el('div', { class: 'muted small' }, `→ ${valueLabel(h.to_status)}`) : null),
        showActor ? el('td', {}, h.actor === 'anonymous' ? valueLabel('citizen') : h.actor || '—') : null,
        el('td', {}, note || '—'),
      ),
    );
  }
  return tbl;
}

function stepsBox(app, r) {
  const steps = r.allowed_steps || [];
  const box = el('div', { class: 'rep-steps', id: 'rep-steps' });
  if (!steps.length) {
    if (isStaff(app)) box.append(el('p', { class: 'muted small' }, t('rep.no_steps')));
    return box;
  }
  if (!S.step) {
    box.append(el('div', { class: 'row wrap' }, steps.map((s) => el('button', { class: `btn${s === 'resolve' || s === 'provide_info' ? ' primary' : ''}`, 'data-step': s, onclick: () => { S.step = s; renderReportsPage(app); } }, t(`rep.step.${s}`)))));
    return box;
  }
  const s = S.step;
  const needsNote = s !== 'accept' && s !== 'start' && s !== 'assign';
  const note = el('textarea', { id: 'rep-step-note', rows: '3', maxlength: '4000', required: needsNote });
  const assignee = s === 'assign' ? el('input', { type: 'text', id: 'rep-step-assignee', maxlength: '120', value: app.state.user ? app.state.user.username : '' }) : null;
  const photo = PHOTO_STEPS.has(s) ? el('input', { type: 'file', id: 'rep-step-photo', class: 'rep-file', accept: 'image/jpeg,image/png' }) : null;
  const photoName = el('span', { class: 'muted small', id: 'rep-step-photo-name' }, t('rep.no_photo'));
  if (photo) photo.addEventListener('change', () => (photoName.textContent = photo.files[0] ? photo.files[0].name : t('rep.no_photo')));
  const confirm = el('button', { class: 'btn primary', type: 'submit', id: 'rep-step-confirm' }, t('rep.confirm'));
  box.append(
    el(
      'form',
      {
        class: 'rep-step-form',
        'data-step': s,
        onsubmit: async (e) => {
          e.preventDefault();
          confirm.disabled = true;
          const url = `/api/reports/${encodeURIComponent(r.code)}/${STEP_PATH[s] || s}`;
          let opts;
          if (photo) {
            const fd = new FormData();
            fd.append('note', note.value);
            if (photo.files[0]) fd.append('photo', photo.files[0], photo.files[0].name);
            opts = { method: 'POST', body: fd };
          } else {
            const body = { note: note.value };
            if (assignee && assignee.value.trim()) body.assignee = assignee.value.trim();
            opts = { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } };
          }
          try {
            S.report = await call(url, opts);
            S.step = null;
            S.queue = null;
            S.mine = null;
            S.message = { text: t('rep.done', { status: valueLabel(S.report.status) }), kind: 'ok' };
          } catch (err) {
            S.message = { text: t('rep.error', { detail: err.message }), kind: 'error' };
          }
          renderReportsPage(app);
        },
      },
      el('h4', {}, t(`rep.step.${s}`)),
      assignee ? el('label', {}, t('rep.assignee'), assignee) : null,
      el('label', {}, needsNote ? t(`rep.note_for.${s}`) : t('rep.note_optional'), note),
      photo ? el('div', { class: 'rep-label' }, s === 'resolve' ? t('rep.resolution_photo') : t('rep.add_photo')) : null,
      photo ? el('div', { class: 'row rep-where-row' }, el('label', { class: 'btn small rep-file-btn', for: 'rep-step-photo' }, `📷 ${t('rep.choose_photo')}`, photo), photoName) : null,
      el('div', { class: 'row' }, confirm, el('button', { class: 'btn ghost', type: 'button', onclick: () => { S.step = null; renderReportsPage(app); } }, t('rep.cancel'))),
    ),
  );
  return box;
}

function ratingBox(app, r) {
  if (r.rating) return el('p', { class: 'rep-rated', id: 'rep-rated' }, t('rep.rated', { rating: valueLabel(r.rating) }));
  return el(
    'div',
    { class: 'rep-rate', id: 'rep-rate' },
    el('div', { class: 'rep-label' }, t('rep.rate')),
    el(
      'div',
      { class: 'row wrap' },
      RATINGS.map((v) =>
        el(
          'button',
          {
            class: 'btn',
            'data-rating': v,
            onclick: async () => {
              try {
                S.report = await call(`/api/reports/${encodeURIComponent(r.code)}/rating`, { method: 'POST', body: JSON.stringify({ rating: v }), headers: { 'Content-Type': 'application/json' } });
                S.mine = null;
                S.message = null;
              } catch (err) {
                S.message = { text: t('rep.error', { detail: err.message }), kind: 'error' };
              }
              renderReportsPage(app);
            },
          },
          valueLabel(v),
        ),
      ),
    ),
  );
}
