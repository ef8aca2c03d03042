// Talking to geo_api: JSON helpers, paged GeoJSON loading and one-time feature detection.
// Every optional backend (tiles, H3, cameras, alerts, query, imports) is detected from
// /openapi.json so the map keeps working when a router is not there yet.

/** GET a JSON document; throws on a non-2xx answer with the API's error text. */
export async function getJSON(url, opts = {}) {
  const res = await fetch(url, { headers: { Accept: 'application/json' }, ...opts });
  if (!res.ok) {
    let detail = `${res.status}`;
    try {
      const body = await res.json();
      detail = body.detail || body.message || JSON.stringify(body);
    } catch {
      // not JSON: keep the status code
    }
    // the server's message (in the page's language) is what a person reads; the URL stays on the error
    const err = new Error(typeof detail === 'string' ? detail : JSON.stringify(detail));
    err.status = res.status;
    err.url = url;
    throw err;
  }
  return res.json();
}

/** Remember an answer main.js asks for before the app chunk needs it (see `early`). */
export function askEarly(app, key, promise) {
  promise.catch(() => {}); // handled by whoever takes it
  app.prefetched[key] = promise;
  return promise;
}

/** The answer asked for early under this key (taken once), else null. */
export function early(app, key) {
  const p = app.prefetched && app.prefetched[key];
  if (!p) return null;
  delete app.prefetched[key];
  return p;
}

/** POST (or other method) a JSON body and return the JSON answer. */
export async function sendJSON(url, body, method = 'POST') {
  return getJSON(url, {
    method,
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/**
 * Load every page of a layer's features (following `next` links) up to maxFeatures.
 * Returns the feature array; aborts cleanly through signal.
 * @param {string} slug
 * @param {{bbox?: number[], limit?: number, maxFeatures?: number, signal?: AbortSignal, params?: Record<string, string>}} [options]
 */
export async function loadFeatures(slug, { bbox, limit = 10000, maxFeatures = 60000, signal, params } = {}) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (bbox) q.set('bbox', bbox.map((v) => v.toFixed(6)).join(','));
  if (params) for (const [k, v] of Object.entries(params)) q.set(k, v);
  let url = `/api/layers/${encodeURIComponent(slug)}/features?${q}`;
  const out = [];
  while (url && out.length < maxFeatures) {
    const page = await getJSON(url, { signal });
    for (const f of page.features || []) out.push(f);
    const next = (page.links || []).find((l) => l.rel === 'next');
    url = next ? sameOrigin(next.href) : null;
  }
  return out;
}

/** Keep only path+query of an absolute link, so a proxy in front never sends us elsewhere. */
function sameOrigin(href) {
  try {
    const u = new URL(href, location.href);
    return u.pathname + u.search;
  } catch {
    return href;
  }
}

/** What the server offers, detected once from its OpenAPI document. */
export async function detectCapabilities() {
  let paths = {};
  try {
    const doc = await getJSON('/openapi.json');
    paths = doc.paths || {};
  } catch {
    paths = {};
  }
  const keys = Object.keys(paths);
  const has = (re) => keys.find((k) => re.test(k)) || null;
  const method = (path, m) => (path && paths[path] && paths[path][m] ? path : null);
  return {
    paths,
    tiles: has(/^\/tiles\/\{[^}]+\}\/\{z\}\/\{x\}\/\{y\}/),
    tilejson: has(/^\/tiles\/\{[^}]+\}\.json$/),
    h3: has(/^\/api\/h3\/\{[^}]+\}$/),
    cameras: has(/^\/api\/cameras$/),
    cameraSnapshot: has(/^\/api\/cameras\/\{[^}]+\}\/snapshot/),
    cameraEvents: has(/^\/api\/cameras\/\{[^}]+\}\/events$/),
    cameraZones: has(/^\/api\/cameras\/\{[^}]+\}\/zones$/),
    cameraDetail: has(/^\/api\/cameras\/\{[^}]+\}$/),
    alertsStream: has(/^\/api\/alerts\/stream$/),
    eventsStream: has(/^\/api\/events\/stream$/),
    alerts: method(has(/^\/api\/alerts$/), 'get'),
    alertAck: has(/^\/api\/alerts\/\{[^}]+\}\/ack/),
    events: method(has(/^\/api\/events$/), 'get'),
    query: keys.filter((k) => k.startsWith('/api/query')),
    imports: method(has(/^\/api\/imports$/), 'post'),
    importsList: method(has(/^\/api\/imports$/), 'get'),
    importDetail: has(/^\/api\/imports\/\{[^}]+\}$/),
    importCommit: has(/^\/api\/imports\/\{[^}]+\}\/commit$/),
    importRejects: has(/^\/api\/imports\/\{[^}]+\}\/rejects/),
    reportDetail: has(/^\/api\/reports\/\{[^}]+\}$/),
    indicators: keys.filter((k) => k.startsWith('/api/indicators')),
  };
}

/** Fill {name} placeholders of an OpenAPI path template. */
export function fillPath(template, values) {
  return template.replace(/\{([^}]+)\}/g, (_, name) => {
    const v = values[name] ?? Object.values(values)[0];
    return encodeURIComponent(String(v));
  });
}
