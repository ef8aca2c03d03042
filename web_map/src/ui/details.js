// Hover tooltip and the details panel: generic properties, camera (snapshot, status,
// detections, zones), field report (photo, history, unit) and the commune KPI card.

import { fillPath, getJSON } from '../api.js';
import { fmtDate, fmtNumber, lang, layerTitle, propLabel, t, unitLabel, valueLabel } from '../i18n.js';
import { representativePoint } from '../geo.js';
import { communeStats } from './kpi.js';
import { openIncidentFromEventButton, openIncidentFromReportButton, openIncidentHereButton } from './incidents.js';
import { cameraLastFrame, cameraStatus } from '../cameraStatus.js';
import { el, esc } from '../util.js';

const TOOLTIP_KEYS = {
  admin_communes: ['kind', 'population', 'area_km2'],
  hospitals: ['type', 'beds', 'commune_name'],
  schools: ['level', 'pupils', 'commune_name'],
  tourism_sites: ['kind_vi', 'visitors_per_year', 'commune_name'],
  cameras: ['owner', 'status', 'commune_name'],
  field_reports: ['category_vi', 'status', 'received_at', 'commune_name'],
  land_parcels: ['KyHieuMucDichSuDung', 'DienTich', 'SoHieuToBanDo', 'SoThuTuThua'],
};
// layerName is added by the MVT decoder; stream URLs are for the vision workers only
const HIDDEN_PROPS = new Set(['stream_url', 'layerName']);
const MATCH_KEYS = ['code', 'camera_id', 'report_code', 'source_key'];
// features (and communes) that carry sector indicators: their panel shows indicator charts
const INDICATOR_SUBJECTS = new Set(['hospitals', 'schools', 'tourism_sites', 'agencies', 'admin_communes']);
const DATE_PROPS = /(_at|_time|date|time)$/;

/** The slug behind a picked deck layer id ("layer-<slug>"). */
export function slugOf(info) {
  const id = info && info.layer ? info.layer.id : '';
  return id.startsWith('layer-') ? id.slice(6) : null;
}

/** Format a property value for display (numbers, dates, categories, booleans). */
export function fmtValue(key, value) {
  if (value === null || value === undefined || value === '') return '—';
  if (typeof value === 'boolean') return valueLabel(String(value));
  if (typeof value === 'number') return fmtNumber(value, Number.isInteger(value) ? 0 : 2);
  if (typeof value === 'string' && DATE_PROPS.test(key) && !Number.isNaN(Date.parse(value))) return fmtDate(value);
  if (typeof value === 'object') return JSON.stringify(value);
  return valueLabel(value);
}

function featureName(f, layer) {
  const p = f.properties || {};
  // the layer's own name column (set at import) names its features
  const own = layer && layer.name_field ? p[layer.name_field] : null;
  if (own !== null && own !== undefined && own !== '') return String(own);
  return p.name || p.title || p.report_code || p.camera_id || (p.SoThuTuThua !== undefined ? `${t('prop.SoHieuToBanDo')} ${p.SoHieuToBanDo} / ${t('prop.SoThuTuThua')} ${p.SoThuTuThua}` : `#${f.id ?? ''}`);
}

/** The deck.gl tooltip for a hovered object, in the active language. */
export function tooltipFor(app, info) {
  if (!info || !info.object) return null;
  if (info.layer && info.layer.id === 'h3-view') {
    const d = info.object;
    return { html: `<div class="tt-title">H3 ${esc(d.h3)}</div><div>${esc(t('h3.count'))}: <b>${esc(fmtNumber(d.value))}</b></div>`, className: 'tt' };
  }
  if (info.layer && info.layer.id === 'camera-detections') {
    const d = info.object;
    return { html: `<div class="tt-title">${esc(valueLabel(d.label))}</div><div>${esc(fmtDate(d.time))}</div>`, className: 'tt' };
  }
  const slug = slugOf(info);
  if (!slug) return null;
  const layer = app.state.bySlug[slug];
  const f = info.object;
  const p = f.properties || {};
  // a camera's status is the honest one (fresh picture or not), with its last frame's time
  const shown = slug === 'cameras' ? { ...p, status: cameraStatus(app.state, p) } : p;
  let rows = (TOOLTIP_KEYS[slug] || Object.keys(p).slice(0, 3))
    .filter((k) => shown[k] !== undefined && shown[k] !== null)
    .map((k) => `<div${k === 'status' && slug === 'cameras' ? ' class="tt-camera-status"' : ''}><span class="tt-k">${esc(propLabel(k))}:</span> ${esc(fmtValue(k, shown[k]))}</div>`)
    .join('');
  if (slug === 'cameras' && shown.status !== 'online' && app.state.caps.cameras) {
    const at = cameraLastFrame(app.state, p);
    rows += `<div class="tt-camera-frame">${esc(at ? `${t('camera.last_frame')}: ${fmtDate(at)}` : t('camera.no_frame'))}</div>`;
  }
  const ch = app.state.choropleth;
  const choro = slug === 'admin_communes' && ch ? `<div class="tt-ind">${esc(lang() === 'en' ? ch.indicator.name_en : ch.indicator.name_vi)}: <b>${esc(fmtNumber(ch.values[String(p.code)], 1))}</b>${ch.values[String(p.code)] !== undefined && unitLabel(ch.indicator.unit) ? `${ch.indicator.unit === '%' ? '' : ' '}${esc(unitLabel(ch.indicator.unit))}` : ''}</div>` : '';
  return {
    html: `<div class="tt-layer">${esc(layer ? layerTitle(layer) : slug)}</div><div class="tt-title">${esc(featureName(f, layer))}</div>${choro}${rows}`,
    className: 'tt',
  };
}

/** A click on the map: select the object and open its panel. */
export function showDetails(app, info) {
  const { state } = app;
  const slug = slugOf(info);
  if (!info || !info.object || !slug) {
    if (info && info.layer && info.layer.id === 'h3-view') return;
    return;
  }
  const feature = fullFeature(state, slug, normaliseFeature(info.object));
  state.selected = { slug, feature };
  if (slug === 'admin_communes') state.selectedCommune = feature;
  state.rightTab = 'details';
  clearTimers(app);
  state.detections = [];
  state.zones = [];
  app.update();
  if (slug === 'cameras') loadCamera(app, feature);
  if (slug === 'field_reports') loadReport(app, feature);
}

/**
 * A feature picked from a vector tile is clipped to its tile; prefer the whole feature from
 * the loaded GeoJSON (matched by id or a natural key) so the selection outline is exact.
 */
function fullFeature(state, slug, picked) {
  const data = state.data[slug];
  if (!data || !data.length) return picked;
  const p = picked.properties || {};
  const byId = picked.id !== undefined && picked.id !== null ? data.find((f) => f.id === picked.id) : null;
  if (byId) return byId;
  for (const key of MATCH_KEYS) {
    if (p[key] === undefined || p[key] === null) continue;
    const hit = data.find((f) => f.properties && f.properties[key] === p[key]);
    if (hit) return hit;
  }
  if (p.name) {
    const hit = data.find((f) => f.properties && f.properties.name === p.name);
    if (hit) return hit;
  }
  return picked;
}

/** MVT picks may come back without a geometry in lon/lat; keep what we can. */
function normaliseFeature(obj) {
  return { type: 'Feature', id: obj.id, geometry: obj.geometry, properties: { ...(obj.properties || {}) } };
}

function clearTimers(app) {
  if (app.snapshotTimer) clearInterval(app.snapshotTimer);
  app.snapshotTimer = null;
}

/** Draw the details tab. */
export function renderDetails(app) {
  const box = document.getElementById('tab-details');
  if (!box) return;
  const { state } = app;
  box.innerHTML = '';
  if (!state.selected) {
    box.append(el('p', { class: 'muted' }, t('details.empty')));
    return;
  }
  const { slug, feature } = state.selected;
  const layer = state.bySlug[slug];
  const p = feature.properties || {};
  const pt = representativePoint(feature.geometry);
  box.append(
    el(
      'div',
      { class: 'details-head' },
      el('div', { class: 'muted small' }, layer ? layerTitle(layer) : slug),
      el('h2', { class: 'details-title', id: 'details-title' }, featureName(feature, layer)),
      el(
        'div',
        { class: 'row' },
        pt ? el('button', { class: 'btn small', onclick: () => app.flyTo(pt, slug === 'admin_communes' ? 12 : 16) }, t('details.fly')) : null,
        // a report opens an incident linked to it (in its card); anything else at its place
        slug === 'field_reports' ? null : openIncidentHereButton(app, pt, featureName(feature, layer)),
        el(
          'button',
          {
            class: 'btn small ghost',
            onclick: () => {
              state.selected = null;
              state.detections = [];
              state.zones = [];
              clearTimers(app);
              app.update();
            },
          },
          t('panel.close'),
        ),
      ),
    ),
  );
  if (slug === 'admin_communes') box.append(communeCard(app, feature));
  if (slug === 'cameras') box.append(cameraSection(app, feature));
  if (slug === 'field_reports') box.append(reportSection(app, feature));
  if (INDICATOR_SUBJECTS.has(slug) && state.caps && state.caps.indicators && state.caps.indicators.length && app.lazy) {
    box.append(el('div', { class: 'card ind-card', id: 'ind-card' }, el('h3', {}, t('ind.charts'))));
    app.lazy.indicators().then((m) => m.renderSubjectCharts(app, slug, feature));
  }
  const table = el('table', { class: 'props' });
  for (const [k, v] of Object.entries(p)) {
    // a coded value with a Vietnamese twin (owner/owner_vi…) is shown once, via the twin
    if (HIDDEN_PROPS.has(k) || `${k}_vi` in p) continue;
    table.append(el('tr', {}, el('th', {}, propLabel(k)), el('td', {}, fmtValue(k, v))));
  }
  if (pt) table.append(el('tr', {}, el('th', {}, t('details.coordinates')), el('td', {}, `${pt[1].toFixed(5)}, ${pt[0].toFixed(5)}`)));
  box.append(table);
}

function communeCard(app, feature) {
  const p = feature.properties || {};
  const s = communeStats(app, p.code);
  const cells = [
    ['kpi.population', fmtNumber(p.population)],
    ['prop.area_km2', fmtNumber(p.area_km2, 1)],
    ['kpi.schools', fmtNumber(s.schools)],
    ['kpi.hospitals', fmtNumber(s.hospitals)],
    ['kpi.cameras_online', `${fmtNumber(s.camerasOnline)}/${fmtNumber(s.cameras)}`],
    ['kpi.reports_open', fmtNumber(s.open)],
    ['kpi.reports_resolved', fmtNumber(s.resolved)],
    ['kpi.on_time', s.onTime === null ? '—' : `${fmtNumber(s.onTime * 100, 0)}%`],
  ];
  // the analytics service's per-commune indicators, when it is there
  const ind = app.state.indicators && app.state.indicators[String(p.code)];
  if (ind) {
    const pct = (v) => (v === null || v === undefined ? '—' : `${fmtNumber(v * 100, 0)}%`);
    cells.push(
      ['kpi.density', fmtNumber(ind.population_density)],
      ['kpi.resolution_rate', pct(ind.resolution_rate)],
      ['kpi.schools_per_10k', fmtNumber(ind.schools_per_10k, 1)],
      ['kpi.hospitals_per_10k', fmtNumber(ind.hospitals_per_10k, 2)],
    );
  }
  return el(
    'div',
    { class: 'card commune-card', id: 'commune-card' },
    el('h3', {}, t('details.commune_card')),
    el('div', { class: 'kgrid' }, cells.map(([k, v]) => el('div', { class: 'kcell' }, el('div', { class: 'kval' }, v), el('div', { class: 'klabel' }, t(k))))),
  );
}

function cameraId(feature) {
  return (feature.properties || {}).camera_id || feature.id;
}

/** When the picture was taken, and a notice when it is not live (camera stale or offline). */
function pictureTime(picture) {
  const box = el('div', { class: 'snapshot-time', id: 'camera-picture' });
  fillPictureTime(box, picture);
  return box;
}

function fillPictureTime(box, picture) {
  box.replaceChildren();
  if (!picture || !picture.at) {
    box.append(el('span', { class: 'muted' }, t('camera.picture_none')));
    return;
  }
  box.append(el('span', { class: 'muted' }, `${t('camera.picture_at')}: `), el('span', { id: 'camera-picture-at' }, fmtDate(picture.at)));
  if (!picture.live) {
    box.append(el('div', { class: 'snapshot-old', id: 'camera-picture-old', role: 'status' }, t('camera.picture_old')));
  }
}

function cameraSection(app, feature) {
  const { caps } = app.state;
  const p = feature.properties || {};
  const id = cameraId(feature);
  const status = (app.cameraInfo?.id === id && app.cameraInfo.status) || cameraStatus(app.state, p);
  const wrap = el('div', { class: 'card camera-card', id: 'camera-card' });
  wrap.append(el('h3', {}, t('camera.snapshot')));
  if (caps && caps.cameraSnapshot) {
    const url = fillPath(caps.cameraSnapshot, { camera_id: id, id });
    // boxes and zones drawn by the server on the picture itself, so they match its pixels
    const img = el('img', { class: 'snapshot', id: 'camera-snapshot', alt: t('camera.snapshot'), src: `${url}?boxes=1&zones=1&t=${Date.now()}` });
    const missing = el('div', { class: 'snapshot-missing', hidden: true }, t('camera.no_snapshot'));
    img.addEventListener('error', () => {
      img.hidden = true;
      missing.hidden = false;
    });
    img.addEventListener('load', () => {
      img.hidden = false;
      missing.hidden = true;
    });
    const info = app.cameraInfo && app.cameraInfo.id === id ? app.cameraInfo : null;
    wrap.append(img, missing, pictureTime(info && info.picture));
  } else {
    wrap.append(el('div', { class: 'snapshot-missing' }, t('camera.no_snapshot')));
  }
  wrap.append(
    el(
      'div',
      { class: 'row' },
      el('span', { class: 'muted' }, `${t('camera.status')}: `),
      el('span', { class: `badge ${['offline', 'stale', 'error', 'stopped'].includes(status) ? 'bad' : status === 'online' ? 'good' : 'neutral'}`, id: 'camera-status' }, valueLabel(status || 'unknown')),
    ),
  );
  const info = app.cameraInfo && app.cameraInfo.id === id ? app.cameraInfo : null;
  if (info && info.zones && info.zones.length) {
    wrap.append(el('h4', {}, t('camera.zones')), el('ul', { class: 'plain' }, info.zones.map((z) => el('li', {}, `${z.name || z.label || z.id}${z.kind ? ` · ${valueLabel(z.kind)}` : ''}`))));
  }
  wrap.append(el('h4', {}, t('camera.detections')));
  const list = el('ul', { class: 'events', id: 'camera-events' });
  const events = info ? info.events : [];
  if (!events.length) list.append(el('li', { class: 'muted' }, t('camera.no_detections')));
  const camPoint = feature.geometry && feature.geometry.type === 'Point' ? feature.geometry.coordinates : null;
  for (const ev of events.slice(0, 20)) {
    list.append(el('li', { 'data-event': ev.id }, el('span', { class: 'ev-time' }, fmtDate(ev.time)), ' ', el('b', {}, valueLabel(ev.label)), ev.score ? ` (${Math.round(ev.score * 100)}%) ` : ' ', openIncidentFromEventButton(app, ev, camPoint)));
  }
  wrap.append(list);
  return wrap;
}

/** Pull a list out of the common envelope shapes ({items}, {events}, {features}, [..]). */
export function listOf(body, ...keys) {
  if (Array.isArray(body)) return body;
  for (const k of [...keys, 'items', 'data', 'results', 'features', 'events', 'alerts']) {
    if (body && Array.isArray(body[k])) return body[k];
  }
  return [];
}

/** A detection/event record as {time, label, score, position}. */
export function normaliseEvent(raw) {
  const e = raw && raw.type === 'Feature' ? { ...(raw.properties || {}), geometry: raw.geometry, id: raw.id ?? raw.properties?.id } : raw || {};
  let position = null;
  if (e.geometry && e.geometry.type === 'Point') position = e.geometry.coordinates;
  else if (typeof e.lon === 'number' && typeof e.lat === 'number') position = [e.lon, e.lat];
  else if (typeof e.longitude === 'number') position = [e.longitude, e.latitude];
  return {
    id: e.id,
    time: e.time || e.observed_at || e.ts || e.created_at || e.detected_at || e.raised_at,
    label: e.label || e.class_name || e.kind || e.type || e.rule || e.category || 'event',
    score: e.score || e.confidence || null,
    position,
    raw: e,
  };
}

async function loadCamera(app, feature) {
  const { caps } = app.state;
  const id = cameraId(feature);
  app.cameraInfo = { id, events: [], zones: [], status: null };
  const jobs = [];
  if (caps.cameraEvents) {
    jobs.push(
      getJSON(`${fillPath(caps.cameraEvents, { camera_id: id, id })}?limit=20`)
        .then((body) => {
          app.cameraInfo.events = listOf(body).map(normaliseEvent);
        })
        .catch(() => {}),
    );
  }
  if (caps.cameraZones) {
    jobs.push(
      getJSON(fillPath(caps.cameraZones, { camera_id: id, id }))
        .then((body) => {
          app.cameraInfo.zones = listOf(body, 'zones').map((z) => (z.type === 'Feature' ? { ...z.properties, geometry: z.geometry } : z));
        })
        .catch(() => {}),
    );
  }
  if (caps.cameraDetail) {
    jobs.push(
      getJSON(fillPath(caps.cameraDetail, { camera_id: id, id }))
        .then((body) => {
          const b = body && body.properties ? body.properties : body;
          app.cameraInfo.status = b && (b.status || (b.online === false ? 'offline' : b.online ? 'online' : null));
          app.cameraInfo.picture = b && b.picture ? b.picture : null;
        })
        .catch(() => {}),
    );
  }
  await Promise.all(jobs);
  if (!app.state.selected || cameraId(app.state.selected.feature) !== id) return;
  app.state.detections = app.cameraInfo.events.filter((e) => e.position);
  app.state.zones = app.cameraInfo.zones.filter((z) => z.geometry);
  app.update();
  // the snapshot is refreshed in place so the panel does not flicker
  app.snapshotTimer = setInterval(() => {
    const img = document.getElementById('camera-snapshot');
    if (!img) return;
    const base = img.src.split('?')[0];
    img.src = `${base}?boxes=1&zones=1&t=${Date.now()}`;
    if (!caps.cameraDetail) return;
    // the picture's time and freshness move with it
    getJSON(fillPath(caps.cameraDetail, { camera_id: id, id }))
      .then((body) => {
        const b = body && body.properties ? body.properties : body;
        const box = document.getElementById('camera-picture');
        if (box && b) fillPictureTime(box, b.picture);
        const badge = document.getElementById('camera-status');
        if (badge && b && b.status) {
          badge.textContent = valueLabel(b.status);
          badge.className = `badge ${b.status === 'online' ? 'good' : ['offline', 'stale', 'error', 'stopped'].includes(b.status) ? 'bad' : 'neutral'}`;
        }
      })
      .catch(() => {});
  }, 3000);
}

function reportSection(app, feature) {
  const p = feature.properties || {};
  const wrap = el('div', { class: 'card report-card' });
  const photo = p.photo_url || p.photo || (app.reportInfo && app.reportInfo.photo_url);
  if (photo && !/^https?:/i.test(photo)) {
    wrap.append(el('h4', {}, t('report.photo')), el('img', { class: 'snapshot', src: photo, alt: t('report.photo') }));
  }
  const unit = p.unit || p.responsible_unit || p.assigned_unit || (app.reportInfo && (app.reportInfo.unit || app.reportInfo.responsible_unit));
  if (unit) wrap.append(el('div', {}, el('span', { class: 'muted' }, `${t('report.unit')}: `), unit));
  const history = (app.reportInfo && app.reportInfo.history) || [];
  wrap.append(el('h4', {}, t('report.history')));
  const list = el('ul', { class: 'events' });
  const steps = history.length
    ? history
    : [
        { status: 'received', at: p.received_at },
        p.resolved_at ? { status: p.status, at: p.resolved_at } : { status: p.status, at: null },
      ];
  for (const h of steps) list.append(el('li', {}, el('span', { class: 'ev-time' }, fmtDate(h.at || h.time || h.changed_at)), ' ', el('b', {}, valueLabel(h.status))));
  wrap.append(list);
  const code = p.report_code || (app.reportInfo && app.reportInfo.code);
  const openInc = code ? openIncidentFromReportButton(app, { code }, 'details-open-incident') : null;
  if (openInc) wrap.append(el('div', { class: 'rep-incident' }, openInc));
  return wrap;
}

async function loadReport(app, feature) {
  const { caps } = app.state;
  app.reportInfo = null;
  if (!caps.reportDetail) return;
  const p = feature.properties || {};
  try {
    const body = await getJSON(fillPath(caps.reportDetail, { report_id: p.report_code || feature.id, id: p.report_code || feature.id }));
    app.reportInfo = body && body.properties ? { ...body.properties, history: body.history || body.properties.history } : body;
    app.renderRight();
  } catch {
    // the report service is optional: the layer's properties are enough to show
  }
}
