// Live operations feed: alerts (/api/alerts + SSE /api/alerts/stream) and camera events
// (/api/events + SSE /api/events/stream). A click flies the map there; alerts can be
// acknowledged. Streams reconnect on their own (EventSource) and are optional.

import { fillPath, getJSON, sendJSON } from '../api.js';
import { fmtDate, t, valueLabel } from '../i18n.js';
import { geometryBBox, representativePoint } from '../geo.js';
import { el } from '../util.js';
import { listOf, normaliseEvent } from './details.js';
import { alertFilterBar, alertRow, focusAlert, passesFilter } from './alertsPanel.js';
import { openIncidentButton } from './incidents.js';

const MAX_ITEMS = 200;

function alertItem(a) {
  return {
    kind: 'alert',
    key: `alert-${a.id}`,
    id: a.id,
    title: a.title || a.rule || `#${a.id}`,
    severity: a.severity || 'info',
    status: a.status,
    // the time the alert was raised, not the rule's last evaluation
    time: a.first_seen_at || a.last_seen_at,
    geometry: a.geometry || null,
    acked: a.status && a.status !== 'open',
    raw: a,
  };
}

function eventItem(raw) {
  const e = normaliseEvent(raw);
  return {
    kind: 'event',
    key: `event-${e.id}`,
    id: e.id,
    // "Phát hiện: xe tải", not "detection · Xe tải"
    title: raw.class_name ? t('feed.event_title', { type: valueLabel(raw.event_type || e.label), what: valueLabel(raw.class_name).toLowerCase() }) : valueLabel(raw.event_type || e.label),
    camera: raw.camera_id,
    time: e.time,
    geometry: e.position ? { type: 'Point', coordinates: e.position } : null,
    acked: true,
  };
}

function upsert(app, item) {
  const feed = app.state.feed;
  const i = feed.findIndex((f) => f.key === item.key);
  if (i >= 0) feed[i] = item;
  else feed.unshift(item);
  feed.sort((a, b) => String(b.time || '').localeCompare(String(a.time || '')));
  if (feed.length > MAX_ITEMS) feed.length = MAX_ITEMS;
}

/** Load the recent alerts and events, then subscribe to both streams. */
export async function initFeed(app) {
  const { caps, user } = app.state;
  app.feedStatus = caps.alerts || caps.events ? 'live' : 'unavailable';
  // alerts and events need a signed-in role: a visitor is asked to sign in, not shown 401s
  if (!user && caps.paths && caps.paths['/api/auth/login']) {
    app.feedStatus = 'signin';
    app.renderRight();
    return;
  }
  const jobs = [];
  if (caps.alerts) {
    jobs.push(
      getJSON('/api/alerts?limit=50')
        .then((body) => listOf(body, 'alerts').forEach((a) => upsert(app, alertItem(a))))
        .catch(() => {}),
    );
  }
  if (caps.events) {
    jobs.push(
      getJSON('/api/events?limit=30')
        .then((body) => listOf(body, 'events').forEach((e) => upsert(app, eventItem(e))))
        .catch(() => {}),
    );
  }
  await Promise.all(jobs);
  app.renderRight();
  if (typeof EventSource === 'undefined') return;
  if (caps.alertsStream) subscribe(app, caps.alertsStream, ['new', 'acknowledged', 'resolved', 'changed'], (doc) => alertItem(doc));
  if (caps.eventsStream) subscribe(app, caps.eventsStream, null, (doc) => eventItem(doc));
}

function subscribe(app, path, names, toItem) {
  const source = new EventSource(path);
  const handle = (msg) => {
    try {
      const doc = JSON.parse(msg.data);
      if (!doc || doc.id === undefined) return;
      upsert(app, toItem(doc));
      app.renderRight();
    } catch {
      // a ping or a malformed message: nothing to show
    }
  };
  source.onmessage = handle;
  if (names) for (const n of names) source.addEventListener(n, handle);
  else {
    // events are named after their type; listen to the usual ones and to the default channel
    for (const n of ['intrusion', 'line_crossing', 'loitering', 'wrong_way', 'crowd', 'congestion', 'stopped_vehicle', 'detection', 'count']) source.addEventListener(n, handle);
  }
  source.onerror = () => {
    // EventSource retries by itself; a 401/403 closes it for good, which is fine
    // (a role may read alerts but not camera events): only when every stream is closed is
    // the feed unavailable
    if (source.readyState === EventSource.CLOSED && (app.streams || []).every((x) => x.readyState === EventSource.CLOSED)) app.feedStatus = 'unavailable';
  };
  (app.streams = app.streams || []).push(source);
}

async function acknowledge(app, item) {
  const { caps } = app.state;
  if (!caps.alertAck) return;
  try {
    const doc = await sendJSON(fillPath(caps.alertAck, { alert_id: item.id, id: item.id }), {});
    upsert(app, alertItem(doc && doc.id !== undefined ? doc : { ...item, status: 'acknowledged' }));
  } catch (err) {
    app.setStatus(err.message, 'error');
  }
  app.renderRight();
}

function flyToItem(app, item) {
  if (!item.geometry) return;
  if (item.geometry.type === 'Point') app.flyTo(item.geometry.coordinates, 15);
  else {
    const b = geometryBBox(item.geometry);
    if (Number.isFinite(b[0])) app.fitBounds(b);
    else {
      const p = representativePoint(item.geometry);
      if (p) app.flyTo(p, 13);
    }
  }
}

/** Draw the feed tab. */
export function renderFeed(app) {
  const box = document.getElementById('tab-feed');
  if (!box) return;
  const { state } = app;
  box.innerHTML = '';
  if (app.feedStatus === 'signin') {
    box.append(el('p', { class: 'muted', id: 'feed-signin' }, t('feed.sign_in')), el('button', { class: 'btn small primary', onclick: () => document.getElementById('login-btn')?.click() }, t('auth.sign_in')));
    return;
  }
  if (app.feedStatus === 'unavailable' && !state.feed.length) {
    box.append(el('p', { class: 'muted' }, t('feed.unavailable')));
    return;
  }
  box.append(el('div', { class: 'row between' }, el('b', {}, `${t('feed.alerts')} & ${t('feed.events')}`), el('span', { class: 'badge good' }, `● ${t('feed.live')}`)));
  box.append(alertFilterBar(app, () => renderFeed(app)));
  if (!state.feed.length) {
    box.append(el('p', { class: 'muted' }, t('feed.empty')));
    return;
  }
  const list = el('ul', { class: 'feed', id: 'feed-list' });
  for (const item of state.feed.filter((f) => passesFilter(app, f)).slice(0, 100)) {
    if (item.kind === 'alert') {
      list.append(el('li', { class: `alert${item.acked ? ' acked' : ''}${state.focusAlert === item.id ? ' focused' : ''}`, 'data-key': item.key, onclick: () => focusAlert(app, item) }, alertRow(app, item), openIncidentButton(app, item)));
      continue;
    }
    list.append(
      el(
        'li',
        { class: `${item.kind}${item.acked && item.kind === 'alert' ? ' acked' : ''}`, 'data-key': item.key, onclick: () => flyToItem(app, item) },
        el('div', { class: 'row between' }, el('span', { class: 'ftitle' }, item.title), el('span', { class: 'ev-time' }, fmtDate(item.time))),
        el(
          'div',
          { class: 'row between small' },
          el('span', { class: 'muted' }, item.kind === 'alert' ? `${valueLabel(item.severity)} · ${valueLabel(item.status)}` : item.camera || ''),
          item.kind === 'alert' && !item.acked && state.caps.alertAck
            ? el(
                'button',
                {
                  class: 'btn tiny',
                  onclick: (e) => {
                    e.stopPropagation();
                    acknowledge(app, item);
                  },
                },
                t('feed.ack'),
              )
            : item.kind === 'alert'
              ? el('span', { class: 'muted' }, t('feed.acked'))
              : null,
        ),
        openIncidentButton(app, item),
      ),
    );
  }
  box.append(list);
}
