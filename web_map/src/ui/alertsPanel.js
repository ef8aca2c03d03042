// Alerts in the feed tab: a filter by state, each alert with the time it was raised, why it
// fired (value against the rule's threshold, over which window), who acknowledged or resolved
// it and when, with their note; acknowledge and resolve with a note; a click highlights the
// alert's area on the map (its commune's outline, or its own geometry) and flies there.

import { fillPath, getJSON, sendJSON } from '../api.js';
import { fmtDate, fmtNumber, has, t, valueLabel } from '../i18n.js';
import { geometryBBox, representativePoint } from '../geo.js';
import { el } from '../util.js';

export const ALERT_STATES = ['', 'open', 'acknowledged', 'resolved'];
const ACTORS = new Set(['operator', 'leader', 'admin']);
const SOURCE = 'alert-area';

/** The state filter above the list. */
export function alertFilterBar(app, onChange) {
  const current = app.state.alertFilter || '';
  return el(
    'label',
    { class: 'alert-filter' },
    t('alert.filter'),
    el(
      'select',
      {
        id: 'alert-filter',
        onchange: (e) => {
          app.state.alertFilter = e.target.value;
          onChange();
        },
      },
      ALERT_STATES.map((s) => el('option', { value: s, selected: s === current }, s ? valueLabel(s) : t('alert.all_states'))),
    ),
  );
}

/** Whether a feed item passes the state filter (events always do when no filter is set). */
export function passesFilter(app, item) {
  const f = app.state.alertFilter || '';
  if (!f) return true;
  return item.kind === 'alert' && item.status === f;
}

/** Why the alert fired, in words: value against threshold over a window. */
function why(a) {
  const parts = [];
  if (a.value !== null && a.value !== undefined && a.threshold !== null && a.threshold !== undefined) {
    parts.push(t('alert.why_value', { value: fmtNumber(a.value, 2), threshold: fmtNumber(a.threshold, 2) }));
  }
  if (a.window_start && a.window_end) parts.push(t('alert.why_window', { from: fmtDate(a.window_start), to: fmtDate(a.window_end) }));
  // a rule without a name in the catalogue is not shown by its code
  if (a.rule && has(`value.${a.rule}`)) parts.push(t('alert.rule', { rule: valueLabel(a.rule) }));
  return parts.join(' · ');
}

/** The body of one alert in the list. */
export function alertRow(app, item) {
  const a = item.raw || {};
  const box = el('div', { class: 'alert-body' });
  box.append(
    el('div', { class: 'row between' }, el('span', { class: 'ftitle' }, item.title), el('span', { class: `badge sev-${item.severity}` }, valueLabel(item.severity))),
    el('div', { class: 'small muted' }, t('alert.raised', { when: fmtDate(a.first_seen_at || item.time) }), ' · ', el('b', { class: `alert-status st-${item.status}` }, valueLabel(item.status))),
  );
  const reason = why(a);
  if (reason && app.state.focusAlert === item.id) box.append(el('div', { class: 'small alert-why', id: `alert-why-${item.id}` }, reason));
  if (a.acknowledged_at) box.append(el('div', { class: 'small' }, t('alert.acked_by', { who: a.acknowledged_by || '—', when: fmtDate(a.acknowledged_at) })));
  if (a.resolved_at) box.append(el('div', { class: 'small' }, t('alert.resolved_by', { who: a.resolved_by || '—', when: fmtDate(a.resolved_at) })));
  if (a.note) box.append(el('div', { class: 'small alert-note' }, `${t('alert.note')}: ${a.note}`));
  const role = app.state.user && app.state.user.role;
  if (!ACTORS.has(role) || item.status === 'resolved') return box;
  const steps = item.status === 'open' ? ['ack', 'resolve'] : ['resolve'];
  if (app.state.alertStep && app.state.alertStep.id === item.id) {
    const step = app.state.alertStep.step;
    const note = el('input', { type: 'text', class: 'alert-note-input', id: `alert-note-${item.id}`, maxlength: '2000', placeholder: t('alert.note_hint') });
    box.append(
      el(
        'form',
        {
          class: 'alert-step',
          onclick: (e) => e.stopPropagation(),
          onsubmit: async (e) => {
            e.preventDefault();
            await act(app, item, step, note.value.trim());
          },
        },
        note,
        el('button', { class: 'btn tiny primary', type: 'submit', 'data-confirm': step }, t(step === 'ack' ? 'feed.ack' : 'alert.resolve')),
        el('button', { class: 'btn tiny ghost', type: 'button', onclick: () => { app.state.alertStep = null; app.renderRight(); } }, t('rep.cancel')),
      ),
    );
    setTimeout(() => note.isConnected && note.focus(), 0);
  } else {
    box.append(
      el(
        'div',
        { class: 'row wrap' },
        steps.map((s) =>
          el(
            'button',
            {
              class: 'btn tiny',
              'data-alert-step': s,
              onclick: (e) => {
                e.stopPropagation();
                app.state.alertStep = { id: item.id, step: s };
                app.renderRight();
              },
            },
            t(s === 'ack' ? 'feed.ack' : 'alert.resolve'),
          ),
        ),
      ),
    );
  }
  return box;
}

async function act(app, item, step, note) {
  const { caps } = app.state;
  const template = step === 'ack' ? caps.alertAck : caps.alertAck && caps.alertAck.replace(/ack[^/]*$/, 'resolve');
  try {
    const doc = await sendJSON(fillPath(template, { alert_id: item.id, id: item.id }), { note });
    Object.assign(item, { status: doc.status, acked: doc.status !== 'open', raw: doc });
    app.state.alertStep = null;
  } catch (err) {
    app.setStatus(err.message, 'error');
  }
  app.renderRight();
}

/** Highlight the alert's area (its commune, or its own geometry) and fly there. */
export async function focusAlert(app, item) {
  const a = item.raw || {};
  app.state.focusAlert = item.id;
  let geometry = item.geometry;
  if (a.area_kind === 'commune' && a.area_ref) {
    try {
      const fc = await getJSON(`/api/layers/admin_communes/features?code=${encodeURIComponent(a.area_ref)}&limit=1`);
      if (fc.features && fc.features[0]) geometry = fc.features[0].geometry;
    } catch {
      // the alert's own geometry still shows where it is
    }
  }
  showArea(app.map, geometry, item.severity);
  app.renderRight();
  if (!geometry) return;
  if (geometry.type === 'Point') app.flyTo(geometry.coordinates, 14);
  else {
    const b = geometryBBox(geometry);
    if (Number.isFinite(b[0])) app.fitBounds(b);
    else {
      const p = representativePoint(geometry);
      if (p) app.flyTo(p, 13);
    }
  }
}

const SEVERITY_COLOURS = { critical: '#ff1744', warning: '#ffa000', info: '#29b6f6' };

function showArea(map, geometry, severity) {
  const data = { type: 'FeatureCollection', features: geometry ? [{ type: 'Feature', properties: {}, geometry }] : [] };
  const colour = SEVERITY_COLOURS[severity] || SEVERITY_COLOURS.warning;
  if (map.getSource(SOURCE)) map.getSource(SOURCE).setData(data);
  else {
    map.addSource(SOURCE, { type: 'geojson', data });
    map.addLayer({ id: `${SOURCE}-fill`, type: 'fill', source: SOURCE, filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': colour, 'fill-opacity': 0.22 } });
    map.addLayer({ id: `${SOURCE}-line`, type: 'line', source: SOURCE, paint: { 'line-color': colour, 'line-width': 3 } });
    map.addLayer({ id: `${SOURCE}-point`, type: 'circle', source: SOURCE, filter: ['==', ['geometry-type'], 'Point'], paint: { 'circle-radius': 14, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-color': colour, 'circle-stroke-width': 3 } });
  }
  for (const id of [`${SOURCE}-fill`, `${SOURCE}-line`, `${SOURCE}-point`]) map.setPaintProperty(id, id.endsWith('point') ? 'circle-stroke-color' : id.endsWith('fill') ? 'fill-color' : 'line-color', colour);
}
