// Server-side query presets (POST /api/query/...), used when the Map API offers them.
// Returns null when the server cannot answer, so the browser fallback runs instead.

import { sendJSON } from '../api.js';
import { fmtNumber } from '../i18n.js';
import { representativePoint } from '../geo.js';

const ENDPOINTS = {
  within: '/api/query/within',
  radius: '/api/query/radius',
  nearest: '/api/query/nearest',
  per_commune: '/api/query/per-commune',
  gaps: '/api/query/gaps',
};

function body(state) {
  const q = state.query;
  const d = state.draw;
  switch (q.preset) {
    case 'within':
      if (!d.area) return null;
      return d.communeCode ? { layer: q.target, admin_code: String(d.communeCode), limit: 5000 } : { layer: q.target, polygon: d.area, limit: 5000 };
    case 'radius':
      return d.center ? { layer: q.target, lon: d.center[0], lat: d.center[1], radius_m: q.radius, limit: 5000 } : null;
    case 'nearest':
      return d.center ? { layer: q.target, lon: d.center[0], lat: d.center[1], k: q.nearest } : null;
    case 'per_commune':
      return { layer: q.target };
    case 'gaps':
      return { layer: q.target, radius_m: q.radius };
    default:
      return null;
  }
}

/** Turn the server's GeoJSON answer into result rows for the table and the map. */
function rows(state, fc) {
  const q = state.query;
  const perCommune = q.preset === 'per_commune' || q.preset === 'gaps';
  return (fc.features || []).map((f) => {
    const p = f.properties || {};
    let value = null;
    let valueLabel = '';
    if (q.preset === 'gaps' && p.nearest_m !== undefined && p.nearest_m !== null) {
      // the server says how far the nearest one is: that, not a column of zeros
      value = Number(p.nearest_m);
      valueLabel = value >= 1000 ? `${fmtNumber(value / 1000, 1)} km` : `${fmtNumber(value)} m`;
    } else if (p.distance_m !== undefined && p.distance_m !== null) {
      value = Number(p.distance_m);
      valueLabel = `${fmtNumber(value)} m`;
    } else if (p.count !== undefined) {
      value = Number(p.count);
      valueLabel = fmtNumber(value);
    } else if (q.preset === 'gaps') {
      value = 0;
      valueLabel = '0';
    }
    return {
      slug: perCommune ? 'admin_communes' : q.target,
      feature: f,
      point: representativePoint(f.geometry),
      name: p.name || p.title || p.report_code || p.camera_id || `#${f.id ?? ''}`,
      commune: p.commune_name || '',
      value,
      valueLabel,
    };
  });
}

/** Run the active preset on the server; null when there is no matching endpoint or it fails. */
export async function runServerPreset(app) {
  const { state } = app;
  const { caps } = state;
  const path = ENDPOINTS[state.query.preset];
  if (!caps || !caps.query || !caps.query.includes(path)) return null;
  const b = body(state);
  if (!b) return null;
  const fc = await sendJSON(path, b);
  const out = rows(state, fc);
  if (state.query.preset === 'per_commune') out.sort((a, c) => (c.value ?? 0) - (a.value ?? 0));
  return { rows: out };
}
