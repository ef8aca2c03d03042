// What a click on the map means where features overlap: every feature under the pointer (deck's
// and maplibre's), the camera first (an operator clicking a camera means the camera, even under
// a traffic-count point drawn above it), and a chooser "1 of 3" in the details panel to step
// through the others.

import { layerTitle, t } from '../i18n.js';
import { el } from '../util.js';
import { showDetails, slugOf } from './details.js';

// layers a click prefers, in order, over whatever is drawn above them
const PREFERRED = ['cameras'];
const MAX_CHOICES = 12;

function keyOf(pick) {
  const o = pick.object || {};
  const p = o.properties || o;
  return `${slugOf(pick)}|${o.id ?? p.id ?? p.camera_id ?? p.source_key ?? JSON.stringify(o.geometry && o.geometry.coordinates)}`;
}

function nativeLayerIds(map, state) {
  const ids = [];
  for (const layer of state.catalog) {
    for (const suffix of ['circle', 'fill', 'line']) {
      const id = `native-${layer.slug}-${suffix}`;
      if (map.getLayer(id) && map.getLayoutProperty(id, 'visibility') === 'visible') ids.push(id);
    }
  }
  return ids;
}

/** Every sector feature under the click, preferred layers first, without duplicates. */
export function picksAt(app, info) {
  const out = [];
  const seen = new Set();
  const add = (pick) => {
    if (!pick || !pick.object || !slugOf(pick) || slugOf(pick) === 'admin_communes') return;
    const key = keyOf(pick);
    if (seen.has(key)) return;
    seen.add(key);
    out.push(pick);
  };
  if (!info || info.x === undefined || info.x < 0) return out;
  const overlay = app.overlay;
  if (overlay && typeof overlay.pickMultipleObjects === 'function') {
    try {
      for (const p of overlay.pickMultipleObjects({ x: info.x, y: info.y, radius: 4, depth: MAX_CHOICES })) add(p);
    } catch {
      add(info);
    }
  } else add(info);
  const ids = nativeLayerIds(app.map, app.state);
  if (ids.length) {
    for (const f of app.map.queryRenderedFeatures([[info.x - 3, info.y - 3], [info.x + 3, info.y + 3]], { layers: ids })) {
      const slug = f.layer.id.replace(/^native-/, '').replace(/-(fill|line|circle)$/, '');
      add({ object: { type: 'Feature', id: f.id, geometry: f.geometry, properties: { ...f.properties } }, layer: { id: `layer-${slug}` }, native: true });
    }
  }
  const rank = (p) => {
    const i = PREFERRED.indexOf(slugOf(p));
    return i < 0 ? PREFERRED.length : i;
  };
  return out.map((p, i) => [p, i]).sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1]).map(([p]) => p).slice(0, MAX_CHOICES);
}

/** Open the preferred feature under a click; remember the others for the chooser. */
export function openPicks(app, picks) {
  app.state.pickChoices = picks.length > 1 ? { picks, index: 0 } : null;
  showDetails(app, picks[0]);
}

/** The "1 of 3" bar at the top of the details tab. */
export function renderChooser(app) {
  const box = document.getElementById('tab-details');
  const choices = app.state.pickChoices;
  if (!box || !choices || !app.state.selected) return;
  const { picks, index } = choices;
  const go = (d) => {
    const i = (index + d + picks.length) % picks.length;
    app.state.pickChoices = { picks, index: i };
    showDetails(app, picks[i]);
  };
  const layer = app.state.bySlug[slugOf(picks[index])];
  box.prepend(
    el(
      'div',
      { class: 'pick-chooser', id: 'pick-chooser' },
      el('button', { class: 'btn tiny', id: 'pick-prev', title: t('pick.prev'), 'aria-label': t('pick.prev'), onclick: () => go(-1) }, '‹'),
      el('span', { id: 'pick-count' }, t('pick.n_of', { i: index + 1, n: picks.length }), layer ? el('span', { class: 'muted' }, ` · ${layerTitle(layer)}`) : null),
      el('button', { class: 'btn tiny', id: 'pick-next', title: t('pick.next'), 'aria-label': t('pick.next'), onclick: () => go(1) }, '›'),
    ),
  );
}
