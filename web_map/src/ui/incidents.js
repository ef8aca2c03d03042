// Incident command (issue 21): open incidents on the map with severity styling, the incident
// panel (timeline, tasks, links, what is around), agency users' tasks, directives, the SOP
// editor for admins, and live updates from /api/incidents/stream.

import { GeoJsonLayer, ScatterplotLayer } from '@deck.gl/layers';

import { getJSON, sendJSON } from '../api.js';
import { fmtDate, fmtNumber, t } from '../i18n.js';
import { el } from '../util.js';
import { picksAt } from './picker.js';

const TYPES = ['flood', 'fire', 'traffic_accident', 'crowd', 'infrastructure', 'health', 'environment', 'other'];
const SEV_COLORS = { 1: [251, 192, 45], 2: [251, 140, 0], 3: [229, 57, 53], 4: [142, 36, 170] };
const NEXT = {
  new: ['confirmed', 'false_alarm'],
  confirmed: ['responding', 'contained', 'closed', 'false_alarm'],
  responding: ['contained', 'closed'],
  contained: ['closed', 'responding'],
  closed: [],
  false_alarm: [],
};
const AGENCY_KINDS = ['ubnd_xa', 'cong_an_xa', 'cong_an_tinh', 'pccc', 'cap_cuu_115', 'so_nganh'];
const ROLES = ['commander', 'operator', 'leader'];

function role(app) {
  return app.state.user ? app.state.user.role : null;
}
const can = {
  read: (r) => ['admin', 'operator', 'leader', 'planner', 'commune_staff'].includes(r),
  run: (r) => ['admin', 'operator', 'leader'].includes(r),
  direct: (r) => ['admin', 'leader'].includes(r),
  tasks: (r) => ['admin', 'operator', 'agency_staff', 'commune_staff'].includes(r),
  board: (r) => ['admin', 'operator', 'leader', 'planner'].includes(r),
  cameras: (r) => ['admin', 'operator'].includes(r),
};

function inc(app) {
  app.state.incidents = app.state.incidents || { list: [], selected: null, detail: null, around: null, suggested: [], tasks: [], picking: false, draft: null, sops: null, sopEdit: null, toast: null, view: 'board' };
  return app.state.incidents;
}

function ageLabel(iso) {
  const m = Math.max(0, (Date.now() - new Date(iso).getTime()) / 60000);
  return m < 90 ? `${fmtNumber(m)} ${t('inc.minutes')}` : `${fmtNumber(m / 60, 1)} ${t('inc.hours')}`;
}

function sevBadge(s) {
  const c = SEV_COLORS[s] || SEV_COLORS[2];
  return el('span', { class: 'inc-sev', style: `background: rgb(${c.join(',')})`, title: t('inc.field.severity') }, String(s));
}

/** Load what the user may see; subscribe to the stream. */
export async function initIncidents(app) {
  const r = role(app);
  const s = inc(app);
  if (!r || !(can.read(r) || can.tasks(r))) return;
  await refresh(app);
  if (typeof EventSource !== 'undefined' && (can.read(r) || r === 'agency_staff')) {
    const es = new EventSource('/api/incidents/stream');
    const onChange = (ev) => {
      let doc = null;
      try {
        doc = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (ev.type === 'escalated' && doc && app.state.user && doc.commander === app.state.user.username) {
        s.toast = `${t('inc.toast.escalated')}: #${doc.id} ${doc.title}`;
      }
      refresh(app, doc ? doc.id : null);
    };
    for (const kind of ['opened', 'status', 'linked', 'tasks_created', 'task_ack', 'task_note', 'task_done', 'escalated', 'directive', 'updated']) es.addEventListener(kind, onChange);
    es.onerror = () => {}; // EventSource reconnects on its own
    app.incidentStream = es;
  }
}

async function refresh(app, changedId = null) {
  const s = inc(app);
  const r = role(app);
  try {
    if (can.board(r)) s.list = (await getJSON('/api/incidents/board')).incidents;
    else if (can.read(r)) s.list = await getJSON('/api/incidents?status=new&status=confirmed&status=responding&status=contained');
    if (can.tasks(r)) s.tasks = await getJSON('/api/tasks?mine=1&open_only=1');
    if (s.selected && (changedId === null || changedId === s.selected) && can.read(r)) await loadDetail(app, s.selected, false);
  } catch (err) {
    console.warn(err);
  }
  app.redraw();
  app.renderRight();
}

// The API commits a request's transaction as its response goes out: a read right after a
// create may briefly not see the new row, so a 404 is asked again a few times.
async function loadDetail(app, id, fly = true, tries = 5) {
  try {
    await loadDetailOnce(app, id, fly);
  } catch (err) {
    if (err.status !== 404 || tries <= 1) throw err;
    await new Promise((r) => setTimeout(r, 250));
    await loadDetail(app, id, fly, tries - 1);
  }
}

async function loadDetailOnce(app, id, fly) {
  const s = inc(app);
  s.selected = id;
  const r = role(app);
  const [detail, around, suggested] = await Promise.all([
    getJSON(`/api/incidents/${id}`),
    getJSON(`/api/incidents/${id}/around`),
    can.run(r) ? getJSON(`/api/incidents/${id}/suggested-links`) : Promise.resolve([]),
  ]);
  Object.assign(s, { detail, around, suggested });
  if (fly && detail) app.flyTo([detail.lng, detail.lat], 14);
}

/** Select an incident (from the list or the map) and show it in the incidents tab. */
export async function selectIncident(app, id) {
  app.state.rightTab = 'incidents';
  try {
    await loadDetail(app, id);
  } catch (err) {
    app.setStatus(`${t('app.error')}: ${err.message}`, 'error');
  }
  app.redraw();
  app.renderRight();
}

/** deck.gl layers: an incident's area (when it is one), its affected radius and its point,
 * coloured by severity. */
export function incidentLayers(app) {
  const s = app.state.incidents;
  if (!s || !s.list.length) return [];
  const sel = s.selected;
  const color = (d, a) => [...(SEV_COLORS[d.severity] || SEV_COLORS[2]), a];
  const areas = s.list.filter((d) => d.geometry && d.geometry.type !== 'Point').map((d) => ({ type: 'Feature', geometry: d.geometry, properties: d }));
  return [
    new GeoJsonLayer({
      id: 'incidents-area',
      data: areas,
      filled: true,
      stroked: true,
      getFillColor: (f) => color(f.properties, f.properties.id === sel ? 110 : 70),
      getLineColor: (f) => color(f.properties, 255),
      lineWidthUnits: 'pixels',
      getLineWidth: 2,
      pickable: false,
      updateTriggers: { getFillColor: sel },
    }),
    new ScatterplotLayer({
      id: 'incidents-radius',
      data: s.list,
      getPosition: (d) => [d.lng, d.lat],
      getRadius: (d) => d.radius_m,
      radiusUnits: 'meters',
      getFillColor: (d) => color(d, d.id === sel ? 70 : 40),
      getLineColor: (d) => color(d, 230),
      stroked: true,
      lineWidthUnits: 'pixels',
      getLineWidth: (d) => (d.id === sel ? 3 : 1.5),
      pickable: false,
      updateTriggers: { getFillColor: sel, getLineWidth: sel },
    }),
    new ScatterplotLayer({
      id: 'incidents-point',
      data: s.list,
      getPosition: (d) => [d.lng, d.lat],
      getRadius: (d) => 6 + 2 * d.severity,
      radiusUnits: 'pixels',
      getFillColor: (d) => color(d, 255),
      getLineColor: [255, 255, 255, 255],
      stroked: true,
      lineWidthUnits: 'pixels',
      getLineWidth: 2,
      pickable: true,
      onClick: (info) => {
        // Features under the incident's marker (a camera first): the map's own click decides,
        // with its chooser, so an incident opened at a camera never hides that camera.
        if (picksAt(app, info).length) return false;
        if (info.object) selectIncident(app, info.object.id);
        return true;
      },
    }),
  ];
}

/** A map click while picking a point for a new incident; true when it was used. */
export function incidentMapClick(app, lngLat) {
  const s = app.state.incidents;
  if (!s || !s.picking) return false;
  s.picking = false;
  s.pickedAt = Date.now();
  s.draft = { lng: lngLat[0], lat: lngLat[1], type: 'flood', severity: 2, title: '', radius_m: 500 };
  app.state.rightTab = 'incidents';
  app.renderRight();
  return true;
}

/** True while a map click is (or just was) placing a new incident: no ward selection then. */
export function incidentPicking(app) {
  const s = app.state.incidents;
  return !!s && (s.picking || Date.now() - (s.pickedAt || 0) < 500);
}

/** The tooltip of an incident point. */
export function incidentTooltip(info) {
  if (!info || !info.object || !info.layer || info.layer.id !== 'incidents-point') return null;
  const d = info.object;
  return { text: `${t(`inc.type.${d.type}`)} · ${t('inc.field.severity')} ${d.severity}\n${d.title}\n${t(`inc.status.${d.status}`)}` };
}

function act(app, fn) {
  return async () => {
    try {
      await fn();
    } catch (err) {
      app.setStatus(`${t('app.error')}: ${err.message}`, 'error');
      setTimeout(() => app.setStatus(''), 6000);
    }
    await refresh(app);
  };
}

/** The incidents tab. */
export function renderIncidents(app) {
  const body = document.getElementById('tab-incidents');
  if (!body) return;
  const s = inc(app);
  const r = role(app);
  body.innerHTML = '';
  if (!r || !(can.read(r) || can.tasks(r))) {
    body.append(el('p', { class: 'muted' }, t('inc.signin')));
    return;
  }
  if (s.toast) {
    body.append(el('div', { class: 'inc-toast', role: 'alert' }, s.toast, el('button', { class: 'btn tiny ghost', onclick: () => { s.toast = null; app.renderRight(); } }, '×')));
  }
  const views = [];
  if (can.read(r)) views.push('board');
  if (can.tasks(r)) views.push('tasks');
  if (r === 'admin') views.push('sops');
  if (!views.includes(s.view)) s.view = views[0];
  if (views.length > 1) {
    body.append(
      el('div', { class: 'inc-views' }, ...views.map((v) => el('button', { class: `btn small${s.view === v ? ' active' : ''}`, 'data-incview': v, onclick: () => { s.view = v; if (v === 'sops') loadSops(app); app.renderRight(); } }, t(`inc.view.${v}`)))),
    );
  }
  if (s.view === 'tasks') return renderTasks(app, body, s.tasks);
  if (s.view === 'sops') return renderSops(app, body);
  if (can.run(r)) {
    body.append(
      el('button', { class: `btn small${s.picking ? ' active' : ''}`, id: 'inc-pick', onclick: () => { s.picking = !s.picking; app.renderRight(); } }, s.picking ? t('inc.pick_hint') : t('inc.open_at_point')),
    );
  }
  if (s.draft) body.append(draftForm(app, s));
  if (s.detail && s.selected) return renderDetail(app, body, s);
  const counts = [4, 3, 2, 1].map((v) => el('span', { class: 'inc-count' }, sevBadge(v), ` ${s.list.filter((i) => i.severity === v).length}`));
  body.append(el('h3', {}, t('inc.board')), el('div', { class: 'inc-counts' }, ...counts));
  if (!s.list.length) body.append(el('p', { class: 'muted' }, t('inc.none')));
  const ul = el('ul', { class: 'inc-list' });
  for (const i of s.list) {
    ul.append(
      el(
        'li',
        { class: 'inc-item', 'data-incident': i.id, onclick: () => selectIncident(app, i.id) },
        sevBadge(i.severity),
        el('div', { class: 'inc-main' }, el('div', { class: 'inc-title' }, `#${i.id} ${i.title}`), el('div', { class: 'muted small' }, `${t(`inc.type.${i.type}`)} · ${t(`inc.status.${i.status}`)} · ${i.commune_name || '—'} · ${ageLabel(i.opened_at)}`)),
        i.overdue_tasks ? el('span', { class: 'inc-late', title: t('inc.overdue_tasks') }, `⚠ ${i.overdue_tasks}`) : null,
      ),
    );
  }
  body.append(ul);
}

function draftForm(app, s) {
  const d = s.draft;
  const f = el('form', { class: 'inc-form', id: 'inc-new' });
  const typeSel = el('select', { name: 'type' }, ...TYPES.map((x) => el('option', { value: x, selected: x === d.type }, t(`inc.type.${x}`))));
  const sevSel = el('select', { name: 'severity' }, ...[1, 2, 3, 4].map((x) => el('option', { value: x, selected: x === d.severity }, String(x))));
  const title = el('input', { name: 'title', required: true, maxlength: 300, value: d.title, placeholder: t('inc.field.title') });
  const radius = el('input', { name: 'radius_m', type: 'number', min: 10, max: 50000, value: d.radius_m });
  f.append(
    el('h3', {}, t('inc.new')),
    el('div', { class: 'muted small' }, `${d.lat.toFixed(5)}, ${d.lng.toFixed(5)}`),
    el('label', {}, t('inc.field.type'), typeSel),
    el('label', {}, t('inc.field.severity'), sevSel),
    el('label', {}, t('inc.field.title'), title),
    el('label', {}, `${t('inc.field.radius')} (m)`, radius),
    el('div', { class: 'row' }, el('button', { class: 'btn primary small', type: 'submit' }, t('inc.create')), el('button', { class: 'btn small ghost', type: 'button', onclick: () => { s.draft = null; app.renderRight(); } }, t('inc.cancel'))),
  );
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(app, async () => {
      const doc = await sendJSON('/api/incidents', {
        geometry: { type: 'Point', coordinates: [d.lng, d.lat] },
        type: typeSel.value,
        severity: Number(sevSel.value),
        title: title.value,
        radius_m: Number(radius.value),
      });
      s.draft = null;
      await loadDetail(app, doc.id, false);
    })();
  });
  return f;
}

function section(title, ...children) {
  return el('section', { class: 'inc-section' }, el('h4', {}, title), ...children);
}

function renderDetail(app, body, s) {
  const d = s.detail;
  const r = role(app);
  body.append(
    el('button', { class: 'btn tiny ghost', id: 'inc-back', onclick: () => { s.selected = null; s.detail = null; app.redraw(); app.renderRight(); } }, `← ${t('inc.board')}`),
    el('h3', { class: 'inc-head' }, sevBadge(d.severity), ` #${d.id} ${d.title}`),
    el(
      'dl',
      { class: 'inc-facts' },
      el('dt', {}, t('inc.field.status')), el('dd', { 'data-status': d.status }, t(`inc.status.${d.status}`)),
      el('dt', {}, t('inc.field.type')), el('dd', {}, t(`inc.type.${d.type}`)),
      el('dt', {}, t('inc.field.commune')), el('dd', {}, d.commune_name || '—'),
      el('dt', {}, t('inc.commander')), el('dd', {}, d.commander || '—'),
      el('dt', {}, t('inc.field.sop')), el('dd', {}, d.sop ? `${t('inc.lang') === 'en' ? d.sop.title_en : d.sop.title_vi} · v${d.sop.version}` : '—'),
      el('dt', {}, t('inc.field.opened')), el('dd', {}, `${fmtDate(d.opened_at)} · ${ageLabel(d.opened_at)}`),
    ),
  );
  if (can.run(r) && NEXT[d.status].length) {
    body.append(
      el('div', { class: 'inc-actions' }, ...NEXT[d.status].map((to) => el('button', { class: `btn small${to === 'confirmed' ? ' primary' : ''}`, 'data-to': to, onclick: act(app, () => sendJSON(`/api/incidents/${d.id}/transition`, { to })) }, `→ ${t(`inc.status.${to}`)}`))),
    );
  }
  body.append(
    el('div', { class: 'inc-actions' }, el('a', { class: 'btn tiny', href: `/api/incidents/${d.id}/report.pdf?lang=${t('inc.lang')}`, target: '_blank', rel: 'noopener' }, t('inc.report_pdf')), el('a', { class: 'btn tiny', href: `/api/incidents/${d.id}/report.html?lang=${t('inc.lang')}`, target: '_blank', rel: 'noopener' }, t('inc.report_html'))),
  );
  body.append(section(t('inc.report.tasks'), taskList(app, d.tasks, false)));
  if (can.direct(r) && NEXT[d.status].length) body.append(section(t('inc.directive'), directiveForm(app, d)));
  body.append(section(t('inc.report.links'), linksList(app, d, s)));
  if (s.around) body.append(section(t('inc.around'), aroundView(app, s.around)));
  const tl = el('ol', { class: 'inc-timeline' });
  for (const e of [...d.log].reverse()) {
    tl.append(el('li', {}, el('span', { class: 'muted small' }, `${fmtDate(e.at)} · ${e.actor}`), el('div', {}, t(`inc.log.${e.action}`), e.to_status ? ` → ${t(`inc.status.${e.to_status}`)}` : '', e.detail && (e.detail.text || e.detail.title) ? el('div', { class: 'muted small' }, e.detail.text || e.detail.title) : null)));
  }
  body.append(section(t('inc.report.timeline'), tl));
}

function taskList(app, tasks, withIncident) {
  const ul = el('ul', { class: 'inc-tasks' });
  const r = role(app);
  if (!tasks.length) return el('p', { class: 'muted' }, t('inc.no_tasks'));
  for (const k of tasks) {
    const late = ['open', 'acknowledged'].includes(k.status) && new Date(k.due_at) < new Date();
    const owner = k.agency_name || t(`inc.role.${k.role || 'commander'}`);
    const li = el(
      'li',
      { class: `inc-task${late ? ' late' : ''}`, 'data-task': k.id, 'data-status': k.status },
      withIncident ? el('div', { class: 'muted small' }, `#${k.incident_id} · ${k.incident_title} · ${t(`inc.type.${k.incident_type}`)}`) : null,
      el('div', { class: 'inc-title' }, k.title),
      el('div', { class: 'muted small' }, `${owner} · ${t(`inc.task.${k.status}`)} · ${t('inc.report.due')} ${fmtDate(k.due_at)}${late ? ` · ${t('inc.late')}` : ''}${k.evidence !== 'none' ? ` · ${t(`inc.evidence.${k.evidence}`)}` : ''}`),
    );
    if (can.tasks(r) && ['open', 'acknowledged'].includes(k.status) && (r !== 'operator' || !k.agency_code || withIncident)) {
      const note = el('input', { class: 'inc-note', placeholder: t('inc.note_ph'), maxlength: 5000 });
      const photo = el('input', { type: 'file', accept: 'image/jpeg,image/png', class: 'inc-photo', hidden: true });
      const photoName = el('span', { class: 'muted small' });
      photo.addEventListener('change', () => {
        photoName.textContent = photo.files[0] ? photo.files[0].name : '';
      });
      li.append(
        el(
          'div',
          { class: 'inc-actions' },
          k.status === 'open' ? el('button', { class: 'btn tiny', 'data-act': 'ack', onclick: act(app, () => sendJSON(`/api/tasks/${k.id}/ack`, {})) }, t('inc.ack')) : null,
          note,
          el('label', { class: 'btn tiny' }, t('inc.choose_photo'), photo),
          photoName,
          el('button', { class: 'btn tiny', 'data-act': 'note', onclick: act(app, () => sendNote(k.id, note.value, photo.files[0])) }, t('inc.add_note')),
          el('button', { class: 'btn tiny primary', 'data-act': 'complete', onclick: act(app, () => sendJSON(`/api/tasks/${k.id}/complete`, { note: note.value })) }, t('inc.complete')),
        ),
      );
    }
    ul.append(li);
  }
  return ul;
}

async function sendNote(id, text, file) {
  const form = new FormData();
  form.append('text', text || '');
  if (file) form.append('photo', file);
  const res = await fetch(`/api/tasks/${id}/note`, { method: 'POST', body: form });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(body.detail || String(res.status));
  }
}

function renderTasks(app, body, tasks) {
  body.append(el('h3', {}, t('inc.my_tasks')), taskList(app, tasks, true));
}

function directiveForm(app, d) {
  const text = el('textarea', { rows: 2, maxlength: 2000, placeholder: t('inc.directive_ph'), id: 'inc-directive-text' });
  const agencies = new Map();
  for (const k of d.tasks) if (k.agency_code) agencies.set(k.agency_code, k.agency_name);
  const sel = el('select', { id: 'inc-directive-agency' }, el('option', { value: '' }, t('inc.role.commander')), ...[...agencies].map(([c, n]) => el('option', { value: c }, n)));
  const sla = el('input', { type: 'number', min: 5, max: 43200, value: 60 });
  return el('div', { class: 'inc-form' }, text, el('label', {}, t('inc.report.owner'), sel), el('label', {}, `${t('inc.sla')} (${t('inc.minutes')})`, sla), el('button', { class: 'btn small primary', id: 'inc-directive-send', onclick: act(app, () => sendJSON(`/api/incidents/${d.id}/directives`, { text: text.value, agency_code: sel.value || null, sla_minutes: Number(sla.value) })) }, t('inc.send_directive')));
}

function linksList(app, d, s) {
  const wrap = el('div', {});
  const ul = el('ul', { class: 'inc-links' });
  for (const l of d.links) ul.append(el('li', {}, `${t(`inc.link.${l.kind}`)} ${l.ref} — ${l.title}`));
  if (!d.links.length) ul.append(el('li', { class: 'muted' }, '—'));
  wrap.append(ul);
  if (s.suggested && s.suggested.length && can.run(role(app))) {
    wrap.append(el('div', { class: 'muted small' }, t('inc.suggested')));
    const sl = el('ul', { class: 'inc-links' });
    for (const c of s.suggested) {
      sl.append(el('li', { 'data-suggested': `${c.kind}:${c.ref}` }, `${t(`inc.link.${c.kind}`)} ${c.ref} — ${c.title} (${fmtNumber(c.distance_m)} m) `, el('button', { class: 'btn tiny', onclick: act(app, () => sendJSON(`/api/incidents/${d.id}/links`, { kind: c.kind, ref: c.ref })) }, t('inc.link_it'))));
    }
    wrap.append(sl);
  }
  return wrap;
}

/** People, schools and health facilities inside the radius under the last flood extent
 * (POST /api/query/flood-exposure writes it); the after-action report shows the same. */
function floodView(f) {
  const when = f.written_at ? ` · ${fmtDate(f.written_at)}` : '';
  return el(
    'div',
    { class: 'inc-counts inc-flood', id: 'inc-flood' },
    el('div', { class: 'small muted' }, `${t('inc.flood.title')}${when}${f.synthetic ? ` · ${t('inc.flood.synthetic')}` : ''}`),
    el('span', {}, `${t('inc.flood.population')}: `, el('b', { id: 'inc-flood-pop' }, fmtNumber(f.population))),
    el('span', {}, ` · ${t('inc.flood.schools')}: `, el('b', { id: 'inc-flood-schools' }, `${f.schools.length} (${fmtNumber(f.pupils)} ${t('inc.pupils')})`)),
    f.hospitals ? el('span', {}, ` · ${t('inc.flood.hospitals')}: `, el('b', { id: 'inc-flood-hospitals' }, `${f.hospitals.length} (${fmtNumber(f.beds)} ${t('inc.beds')})`)) : null,
    el('div', { class: 'small muted' }, `${t('inc.flood.area')}: ${fmtNumber(f.flooded_km2, 2, 2)} km²`),
  );
}

function aroundView(app, a) {
  const list = (title, rows, fmt) => el('div', { class: 'inc-around' }, el('div', { class: 'small' }, el('b', {}, title)), el('ul', {}, ...(rows || []).map((x) => el('li', { class: 'small' }, fmt(x)))));
  const km = (m) => `${fmtNumber(m / 1000, 1)} km`;
  const out = el(
    'div',
    {},
    el('div', { class: 'inc-counts' }, el('span', {}, `${t('inc.field.population')}: `, el('b', { id: 'inc-pop' }, fmtNumber(a.population))), el('span', {}, ` · ${t('inc.field.schools')}: `, el('b', {}, `${a.schools.length} (${fmtNumber(a.pupils)} ${t('inc.pupils')})`))),
    a.flood ? floodView(a.flood) : null,
    list(t('inc.report.hospitals'), a.hospitals, (h) => `${h.name} · ${fmtNumber(h.beds)} ${t('inc.beds')} · ${km(h.distance_m)}`),
    list(t('inc.police'), a.police, (h) => `${h.name} · ${km(h.distance_m)}`),
    list(t('inc.fire'), a.fire, (h) => `${h.name} · ${km(h.distance_m)}`),
    list(t('inc.ambulance'), a.ambulance, (h) => `${h.name} · ${km(h.distance_m)}`),
  );
  if (a.cameras) {
    const cams = el('ul', {});
    for (const c of a.cameras) {
      const li = el('li', { class: 'small', 'data-camera': c.camera_id }, `${c.name} · ${fmtNumber(c.distance_m)} m `);
      if (can.cameras(role(app))) {
        li.append(
          el('button', {
            class: 'btn tiny',
            onclick: () => {
              const img = el('img', { class: 'inc-snap', alt: c.name, src: `${c.snapshot}?t=${Date.now()}` });
              li.append(img);
            },
          }, t('inc.camera_picture')),
        );
      }
      cams.append(li);
    }
    if (!a.cameras.length) cams.append(el('li', { class: 'muted small' }, '—'));
    out.append(el('div', { class: 'inc-around' }, el('div', { class: 'small' }, el('b', {}, t('inc.cameras'))), cams));
  }
  return out;
}

// --- SOP editor (admins) -------------------------------------------------------------------

async function loadSops(app) {
  const s = inc(app);
  try {
    s.sops = await getJSON('/api/sops');
  } catch (err) {
    console.warn(err);
  }
  app.renderRight();
}

function renderSops(app, body) {
  const s = inc(app);
  body.append(el('h3', {}, t('inc.view.sops')));
  if (!s.sops) {
    body.append(el('p', { class: 'muted' }, t('app.loading')));
    return;
  }
  const pick = el('select', { id: 'sop-pick', onchange: (e) => { s.sopEdit = JSON.parse(JSON.stringify(s.sops.find((x) => x.slug === e.target.value))); app.renderRight(); } }, el('option', { value: '' }, '—'), ...s.sops.map((x) => el('option', { value: x.slug, selected: s.sopEdit && s.sopEdit.slug === x.slug }, `${x.title_vi} (v${x.current_version})`)));
  body.append(pick);
  const e = s.sopEdit;
  if (!e) return;
  const table = el('div', { class: 'sop-steps' });
  e.steps.forEach((st, i) => {
    const owner = el('select', { onchange: (ev) => { const v = ev.target.value; if (ROLES.includes(v)) { st.role = v; delete st.agency_kind; delete st.agency_name; } else { st.agency_kind = v; delete st.role; } } }, ...[...AGENCY_KINDS, ...ROLES].map((k) => el('option', { value: k, selected: (st.agency_kind || st.role) === k }, AGENCY_KINDS.includes(k) ? t(`inc.agency.${k}`) : t(`inc.role.${k}`))));
    table.append(
      el(
        'div',
        { class: 'sop-step', 'data-step': i + 1 },
        el('span', { class: 'muted' }, `${i + 1}.`),
        el('input', { value: st.title_vi, class: 'sop-title', oninput: (ev) => { st.title_vi = ev.target.value; } }),
        owner,
        el('label', { class: 'small' }, `${t('inc.sla')} (${t('inc.minutes')})`, el('input', { type: 'number', min: 1, value: st.sla_minutes, class: 'sop-sla', oninput: (ev) => { st.sla_minutes = Number(ev.target.value); } })),
        el('label', { class: 'small' }, t('inc.evidence'), el('select', { onchange: (ev) => { st.evidence = ev.target.value; } }, ...['none', 'note', 'photo'].map((v) => el('option', { value: v, selected: (st.evidence || 'none') === v }, t(`inc.evidence.${v}`))))),
        el('label', { class: 'small' }, t('inc.min_severity'), el('select', { onchange: (ev) => { st.min_severity = Number(ev.target.value); } }, ...[1, 2, 3, 4].map((v) => el('option', { value: v, selected: (st.min_severity || 1) === v }, `≥ ${v}`)))),
        el('button', { class: 'btn tiny ghost', title: t('inc.remove_step'), onclick: () => { e.steps.splice(i, 1); app.renderRight(); } }, '×'),
      ),
    );
  });
  const note = el('input', { id: 'sop-note', placeholder: t('inc.version_note'), maxlength: 2000 });
  body.append(
    table,
    el('button', { class: 'btn tiny', onclick: () => { e.steps.push({ title_vi: '', title_en: '', role: 'operator', sla_minutes: 30, evidence: 'none', min_severity: 1 }); app.renderRight(); } }, t('inc.add_step')),
    note,
    el(
      'button',
      {
        class: 'btn small primary',
        id: 'sop-save',
        onclick: act(app, async () => {
          const steps = e.steps.map((st) => ({ ...st, title_en: st.title_en || st.title_vi }));
          const spec = { slug: e.slug, incident_type: e.incident_type, min_severity: e.min_severity, max_severity: e.max_severity, title_vi: e.title_vi, title_en: e.title_en, steps, note: note.value };
          await sendJSON('/api/sops', spec, 'PUT');
          s.sops = await getJSON('/api/sops');
          s.sopEdit = JSON.parse(JSON.stringify(s.sops.find((x) => x.slug === e.slug)));
        }),
      },
      t('inc.save_version'),
    ),
    el('ul', { class: 'small muted' }, ...(e.versions || []).map((v) => el('li', {}, `v${v.version} · ${fmtDate(v.created_at)} · ${v.created_by}${v.note ? ` · ${v.note}` : ''}`))),
  );
}

/** POST /api/incidents with this body, then show the new incident in the incidents tab on
 * the map; a click while the first is on its way is ignored (no second incident). */
function opener(app, body) {
  let busy = false;
  return act(app, async () => {
    if (busy) return;
    busy = true;
    try {
      const doc = await sendJSON('/api/incidents', body());
      if (location.hash) location.hash = '';
      await selectIncident(app, doc.id);
    } finally {
      busy = false;
    }
  });
}

/** A feed item's "open an incident from this" button (operators and leaders), or null. */
export function openIncidentButton(app, item) {
  if (!can.run(role(app)) || !['alert', 'event'].includes(item.kind) || !item.geometry) return null;
  const severity = { critical: 3, warning: 2 }[item.severity] || 1;
  const open = opener(app, () => ({ source: { kind: item.kind, ref: String(item.id) }, severity }));
  // a link styled as a button: the feed's own button (acknowledge) stays the item's only <button>
  return el(
    'a',
    {
      class: 'btn tiny',
      href: '#',
      role: 'button',
      'data-open-incident': item.key,
      onclick: (e) => {
        e.preventDefault();
        e.stopPropagation();
        open();
      },
    },
    t('inc.open_from_source'),
  );
}

/** A citizen report's "open an incident" button (operators and leaders), or null: the new
 * incident is linked to the report and shown on the map's incident panel. `id` names the
 * button where the report is shown (the staff report panel, the map's report card). */
export function openIncidentFromReportButton(app, report, id = 'rep-open-incident') {
  if (!can.run(role(app)) || !report || !report.code) return null;
  return el(
    'button',
    {
      type: 'button',
      class: 'btn small',
      id,
      'data-open-incident': `report-${report.code}`,
      title: t('inc.open_from_report_hint'),
      onclick: opener(app, () => ({ source: { kind: 'report', ref: String(report.code) }, severity: 2 })),
    },
    t('inc.open_from_report'),
  );
}

/** A camera event's "open an incident" link on the map's camera card (operators and leaders),
 * or null. An event without its own place is opened at its camera. */
export function openIncidentFromEventButton(app, ev, cameraPoint) {
  if (!can.run(role(app)) || !ev || ev.id === undefined || ev.id === null || !(ev.position || cameraPoint)) return null;
  const body = () => ({ source: { kind: 'event', ref: String(ev.id) }, severity: 2, ...(ev.position ? {} : { geometry: { type: 'Point', coordinates: cameraPoint } }) });
  const open = opener(app, body);
  return el(
    'a',
    {
      class: 'btn tiny',
      href: '#',
      role: 'button',
      'data-open-incident': `event-${ev.id}`,
      title: t('inc.open_from_event_hint'),
      onclick: (e) => {
        e.preventDefault();
        open();
      },
    },
    t('inc.open_from_source'),
  );
}

/** "Open an incident here" on any feature's card (operators and leaders), or null: the new
 * incident form opens at the feature's place, named after it. */
export function openIncidentHereButton(app, point, title) {
  if (!can.run(role(app)) || !point) return null;
  return el(
    'button',
    {
      type: 'button',
      class: 'btn small',
      id: 'details-open-here',
      title: t('inc.open_here_hint'),
      onclick: () => {
        const s = inc(app);
        s.picking = false;
        s.selected = null;
        s.detail = null;
        s.view = 'board';
        s.draft = { lng: point[0], lat: point[1], type: 'other', severity: 2, title: title || '', radius_m: 500 };
        app.state.rightTab = 'incidents';
        app.renderRight();
      },
    },
    t('inc.open_here'),
  );
}
