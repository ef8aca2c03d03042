// Honest camera status on the map: what the vision service says an operator may rely on
// (online only while the camera's picture is fresh, else stale/offline with the time of its
// last frame), never the worker's own word that the cameras layer carries.

import { getJSON } from './api.js';

// The service judges freshness against IOC_VISION_STALE_AFTER_S (30 s by default): asking
// again well within that keeps a camera that stops sending from showing online for long.
const REFRESH_MS = 10_000;

/** The live row of a camera (`status`, `picture`) from /api/cameras, or null. */
export function cameraLive(state, props) {
  const live = state.cameraLive;
  return live && props ? live.get(String(props.camera_id)) || null : null;
}

/**
 * The status to show for a camera feature's properties. With the vision service present, a
 * camera it has not reported on is `unknown` (the layer's own `status` is the worker's raw
 * word, written when it last changed, so it may say online long after frames stopped).
 */
export function cameraStatus(state, props) {
  if (!state.caps || !state.caps.cameras) return (props && props.status) || 'unknown';
  const live = cameraLive(state, props);
  return (live && live.status) || 'unknown';
}

/** When the camera's last frame arrived (ISO time), or null when none has. */
export function cameraLastFrame(state, props) {
  const live = cameraLive(state, props);
  return live && live.picture ? live.picture.at || null : null;
}

async function refresh(app) {
  const { state } = app;
  // Only where cameras are on the map for this user: a visitor who may not see them gets
  // nothing to ask about (and no 401 in the console).
  if (!state.data.cameras || !state.data.cameras.length) return;
  let rows;
  try {
    rows = await getJSON('/api/cameras');
  } catch {
    // signed out, or no right to the cameras: nothing live is known
    rows = [];
  }
  const next = new Map((Array.isArray(rows) ? rows : []).map((c) => [String(c.camera_id), { status: c.status, picture: c.picture || null }]));
  const key = (m) => JSON.stringify([...m].map(([id, v]) => [id, v.status, v.picture && v.picture.at]));
  const changed = !state.cameraLive || key(next) !== key(state.cameraLive);
  state.cameraLive = next;
  if (changed) {
    // the cones and the header count follow the status
    state.dataVersion.cameras = (state.dataVersion.cameras || 0) + 1;
    app.update();
  }
}

/** Load the live status now and keep it fresh while the page is open. */
export function startCameraStatus(app) {
  const { caps } = app.state;
  if (!caps.cameras || app.cameraStatusTimer) return;
  refresh(app);
  app.cameraStatusTimer = setInterval(() => {
    if (document.visibilityState !== 'hidden') refresh(app);
  }, REFRESH_MS);
}
