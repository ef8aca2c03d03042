// The one search box: communes and wards (also "TP Vinh", "cua lo"), named features of every
// layer the user may read, report codes (PA-…), camera ids and coordinates (WGS 84 or VN-2000),
// answered by GET /api/search, grouped by kind. Choosing a result flies there and highlights it.

import { getJSON } from '../api.js';
import { lang, layerTitle, t } from '../i18n.js';
import { debounce, el } from '../util.js';
import { showDetails } from './details.js';

const HIT_SOURCE = 'search-hit';

/** Outline/marker of the chosen result on the map (a maplibre source: no glyphs needed). */
function ensureHitLayers(map) {
  if (map.getSource(HIT_SOURCE)) return;
  map.addSource(HIT_SOURCE, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({ id: 'search-hit-fill', type: 'fill', source: HIT_SOURCE, filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': '#ff4081', 'fill-opacity': 0.12 } });
  map.addLayer({ id: 'search-hit-line', type: 'line', source: HIT_SOURCE, filter: ['!=', ['geometry-type'], 'Point'], paint: { 'line-color': '#ff4081', 'line-width': 3 } });
  map.addLayer({ id: 'search-hit-point', type: 'circle', source: HIT_SOURCE, filter: ['==', ['geometry-type'], 'Point'], paint: { 'circle-radius': 11, 'circle-color': 'rgba(255,64,129,0.25)', 'circle-stroke-color': '#ff4081', 'circle-stroke-width': 3 } });
}

/** Show these features as the highlighted search result. */
export function setHit(app, features) {
  ensureHitLayers(app.map);
  app.map.getSource(HIT_SOURCE).setData({ type: 'FeatureCollection', features });
  app.searchHit = features;
}

function groupTitle(kind) {
  return t(`search.kind.${kind}`);
}

function resultLabel(r) {
  if (r.kind === 'feature' && r.layer) {
    const layer = { title_vi: r.layer_title_vi, title_en: r.layer_title_en };
    return [r.label, [layerTitle(layer), r.sublabel].filter(Boolean).join(' · ')];
  }
  if (r.kind === 'commune') {
    // the unit's kind as stored (Vietnamese), shown in the page's language
    const kind = String(r.sublabel || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
    return [r.label, kind === 'phuong' ? t('search.ward') : kind === 'xa' ? t('search.commune') : r.sublabel];
  }
  if (r.kind === 'place') return [r.label, t('search.former', { names: r.sublabel })];
  if (r.kind === 'report') return [r.label, [r.sublabel, r.status ? t(`search.status.${r.status}`) : ''].filter(Boolean).join(' · ')];
  return [r.label, r.sublabel];
}

/** Fly to a result and highlight it (and select it when it is a feature the map shows). */
export async function choose(app, r) {
  const { map } = app;
  const narrow = window.innerWidth < 700;
  const pad = narrow ? 30 : { top: 60, bottom: 100, left: 310, right: 370 };
  if (r.bbox && (r.bbox[2] - r.bbox[0] > 1e-4 || r.bbox[3] - r.bbox[1] > 1e-4)) {
    map.fitBounds([[r.bbox[0], r.bbox[1]], [r.bbox[2], r.bbox[3]]], { padding: pad, maxZoom: 16, duration: 900 });
  } else {
    map.flyTo({ center: [r.lon, r.lat], zoom: Math.max(map.getZoom(), 16), speed: 1.8 });
  }
  const point = { type: 'Feature', geometry: { type: 'Point', coordinates: [r.lon, r.lat] }, properties: {} };
  setHit(app, [point]);
  app.searchPopup?.remove();
  if (r.kind === 'coordinate') {
    // both readings of the point: as typed, and in the other system
    const body = el('div', { class: 'coord-popup' }, el('strong', {}, r.label), el('div', { class: 'muted small' }, r.sublabel));
    // maplibre is the entry's (main.js hands it over): importing it here would move it out of the entry
    app.searchPopup = new app.Popup({ closeButton: true, offset: 14 }).setLngLat([r.lon, r.lat]).setDOMContent(body).addTo(map);
  }
  if (r.kind === 'place' && r.codes) {
    const wards = (app.state.data.admin_communes || []).filter((f) => r.codes.includes(String(f.properties.code)));
    if (wards.length) setHit(app, wards);
    return;
  }
  if (r.layer && r.feature_id !== null && r.feature_id !== undefined) {
    try {
      const f = await getJSON(`/ogc/collections/${encodeURIComponent(r.layer)}/items/${r.feature_id}`);
      if (f.geometry && f.geometry.type !== 'Point') setHit(app, [f]);
      if (!app.state.visible[r.layer] && app.state.bySlug[r.layer]) {
        app.state.visible[r.layer] = true;
        await app.loadLayer(app.state.bySlug[r.layer]);
      }
      showDetails(app, { object: f, layer: { id: `layer-${r.layer}` }, picked: true });
    } catch {
      // the feature is gone: the flight and the marker are enough
    }
  } else if (r.kind === 'report' && r.code) {
    const f = (app.state.data.field_reports || []).find((x) => x.properties && x.properties.code === r.code);
    if (f) showDetails(app, { object: f, layer: { id: 'layer-field_reports' }, picked: true });
  }
}

/** The search box in the map toolbar. */
export function buildSearch(app) {
  const input = el('input', {
    id: 'search-input',
    type: 'search',
    autocomplete: 'off',
    spellcheck: 'false',
    role: 'combobox',
    'aria-expanded': 'false',
    'aria-controls': 'search-results',
    'aria-autocomplete': 'list',
  });
  const list = el('div', { id: 'search-results', class: 'search-results panel', role: 'listbox', hidden: true });
  const box = el('div', { class: 'search', role: 'search' }, input, list);
  let flat = [];
  let active = -1;
  let seq = 0;
  const close = () => {
    list.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    active = -1;
  };
  const mark = () => {
    [...list.querySelectorAll('.sr-item')].forEach((n, i) => n.classList.toggle('active', i === active));
    const cur = list.querySelectorAll('.sr-item')[active];
    if (cur) {
      cur.scrollIntoView({ block: 'nearest' });
      input.setAttribute('aria-activedescendant', cur.id);
    }
  };
  const pick = (r) => {
    close();
    input.value = r.label;
    input.blur();
    choose(app, r);
  };
  const render = (body) => {
    list.innerHTML = '';
    flat = [];
    if (!body.groups.length) {
      list.append(el('div', { class: 'sr-empty muted' }, t('search.none')));
    }
    for (const g of body.groups) {
      list.append(el('div', { class: 'sr-group' }, groupTitle(g.kind)));
      for (const r of g.results) {
        const i = flat.length;
        flat.push(r);
        const [main, sub] = resultLabel(r);
        list.append(
          el(
            'button',
            { type: 'button', class: 'sr-item', id: `sr-${i}`, role: 'option', 'data-kind': r.kind, onmousedown: (e) => e.preventDefault(), onclick: () => pick(r) },
            el('span', { class: 'sr-main' }, main),
            sub ? el('span', { class: 'sr-sub' }, sub) : null,
          ),
        );
      }
    }
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    active = flat.length ? 0 : -1;
    mark();
  };
  const run = debounce(async () => {
    const q = input.value.trim();
    const mine = ++seq;
    if (!q) {
      close();
      return;
    }
    try {
      const body = await getJSON(`/api/search?q=${encodeURIComponent(q)}&limit=20&lang=${lang()}`);
      if (mine === seq) render(body);
    } catch (err) {
      if (mine !== seq) return;
      list.innerHTML = '';
      list.append(el('div', { class: 'sr-empty warn' }, t('search.error')));
      list.hidden = false;
      console.warn(err);
    }
  }, 180);
  input.addEventListener('input', run);
  input.addEventListener('focus', () => {
    if (input.value.trim() && flat.length) list.hidden = false;
  });
  input.addEventListener('blur', () => setTimeout(close, 150));
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      if (!flat.length) return;
      active = (active + (e.key === 'ArrowDown' ? 1 : -1) + flat.length) % flat.length;
      mark();
    } else if (e.key === 'Enter') {
      e.preventDefault();
      if (flat[active]) pick(flat[active]);
      else run();
    } else if (e.key === 'Escape') {
      close();
    }
  });
  const relabel = () => {
    input.placeholder = t('search.placeholder');
    input.setAttribute('aria-label', t('search.placeholder'));
  };
  relabel();
  box.relabel = relabel;
  return box;
}
