// The KPI strip in the top bar: province-wide, or for the selected commune.

import { fmtNumber, t } from '../i18n.js';
import { el } from '../util.js';
import { cameraStatus } from '../cameraStatus.js';

const OPEN = new Set(['received', 'assigned', 'in_progress']);

/** Counts over the loaded sector layers, optionally for one commune code. */
export function communeStats(app, code) {
  const d = app.state.data;
  const mine = (slug) => (d[slug] || []).filter((f) => !code || (f.properties && String(f.properties.commune_code) === String(code)));
  const reports = mine('field_reports');
  const resolved = reports.filter((f) => f.properties.status === 'resolved');
  const judged = reports.filter((f) => f.properties.on_time === true || f.properties.on_time === false);
  const cams = mine('cameras');
  return {
    schools: mine('schools').length,
    hospitals: mine('hospitals').length,
    cameras: cams.length,
    // online only while the camera's picture is fresh (the vision service's word, not the worker's)
    camerasOnline: cams.filter((f) => cameraStatus(app.state, f.properties) === 'online' && f.properties.enabled !== false).length,
    open: reports.filter((f) => OPEN.has(f.properties.status)).length,
    resolved: resolved.length,
    onTime: judged.length ? judged.filter((f) => f.properties.on_time === true).length / judged.length : null,
  };
}

/** Draw the strip. */
export function renderKpis(app) {
  const box = document.getElementById('kpis');
  if (!box) return;
  const { state } = app;
  const commune = state.selectedCommune;
  const code = commune ? commune.properties.code : null;
  const s = communeStats(app, code);
  const communes = state.data.admin_communes || [];
  const population = commune ? commune.properties.population : communes.reduce((acc, f) => acc + (Number(f.properties.population) || 0), 0);
  const items = [
    ['population', fmtNumber(population)],
    commune ? null : ['communes', fmtNumber(communes.length)],
    ['reports_open', fmtNumber(s.open)],
    ['reports_resolved', fmtNumber(s.resolved)],
    ['on_time', s.onTime === null ? '—' : `${fmtNumber(s.onTime * 100)}%`],
    ['schools', fmtNumber(s.schools)],
    ['hospitals', fmtNumber(s.hospitals)],
    ['cameras_online', `${fmtNumber(s.camerasOnline)}/${fmtNumber(s.cameras)}`],
  ].filter(Boolean);
  box.innerHTML = '';
  box.append(
    el(
      'div',
      { class: 'kpi-scope' },
      commune ? t('kpi.scope_commune', { name: commune.properties.name }) : t('kpi.scope_province'),
      commune
        ? el(
            'button',
            {
              class: 'btn tiny ghost',
              onclick: () => {
                state.selectedCommune = null;
                app.renderPanels();
              },
            },
            t('kpi.clear'),
          )
        : null,
    ),
  );
  for (const [key, value] of items) box.append(el('div', { class: 'kpi', 'data-kpi': key }, el('div', { class: 'kpi-v' }, value), el('div', { class: 'kpi-l' }, t(`kpi.${key}`))));
}
