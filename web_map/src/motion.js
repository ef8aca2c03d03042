// Smooth panning without a GPU. On a software WebGL renderer (SwiftShader, llvmpipe: a server
// or a thin client with no graphics driver) every frame is rasterised, read back and
// composited by the CPU, so a frame costs about its pixel count (the PNG overview of the
// parcels alone, sampled per pixel, is a third of it). While the map moves it is drawn at a
// reduced pixel ratio (maplibre's canvas and deck's overlay canvas), lower still while the
// moving frames stay slow; the frame after the movement ends is full resolution again. On a
// GPU nothing changes.

import { canResizeQuietly, glContext, overriddenPixelRatio, resizeQuietly } from './internals.js';

const SOFTWARE = /swiftshader|llvmpipe|softpipe|software|basic render/i;

/** The WebGL renderer string of the map's context ('' when the browser hides it). */
export function glRenderer(map) {
  try {
    const gl = glContext(map);
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    return String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER) || '');
  } catch {
    return '';
  }
}

// The ratios (of the device pixel ratio) drawn at while moving, finest first. The map starts at
// the first and steps down while the moving frames are slow, back up while they are fast: a
// busy or slow machine keeps its frame rate, an idle one its sharpness.
const MOTION_RATIOS = [0.5, 0.42, 0.35];
// Frames between decisions, and the mean frame times (ms) that step down / up: frames come at
// the display's rate (16.7 ms steps), and 30 fps is the floor aimed at.
const WINDOW = 8;
const SLOW_MS = 36;
const FAST_MS = 21;
const GAP_MS = 250;

/**
 * Draw at a reduced pixel ratio while the map moves, when the renderer is software (or ?lowres=1;
 * ?lowres=0 turns it off; ?lowres=0.35 forces it on at that one ratio): MOTION_RATIOS, chosen by
 * the frame times of the movement. Returns whether it is on.
 */
export function motionResolution(app) {
  const map = app.map;
  const param = new URLSearchParams(location.search).get('lowres');
  const forced = Number(param);
  const fixed = param && forced > 0 && forced < 1;
  const ratios = fixed ? [forced] : MOTION_RATIOS;
  const on = param === '1' || fixed || (param !== '0' && SOFTWARE.test(glRenderer(map)));
  // maplibre's public setPixelRatio() goes through resize(), which stops a running camera
  // animation and fires movestart/moveend of its own; the internal resize does neither
  if (!on || !canResizeQuietly(map)) return false;
  const full = map.getPixelRatio();
  const own = overriddenPixelRatio(map);
  let low = false;
  // the step of MOTION_RATIOS in use; kept from one movement to the next
  let level = 0;
  let frames = [];
  let last = 0;
  const apply = (r) => {
    resizeQuietly(map, r === full ? own : r);
    if (app.overlay) app.overlay.setProps({ useDevicePixels: r === full ? true : r });
    map.triggerRepaint();
    // a resized canvas costs a frame or two of its own: judge the new ratio on the frames after
    frames = [];
    last = 0;
  };
  app.motionRatio = () => (low ? ratios[level] : 1);
  map.on('movestart', () => {
    if (low) return;
    low = true;
    apply(full * ratios[level]);
  });
  map.on('render', () => {
    if (!low) return;
    const now = performance.now();
    // a gap (a drag held still: nothing to draw) is no slow frame
    if (last && now - last < GAP_MS) frames.push(now - last);
    last = now;
    if (frames.length < WINDOW) return;
    const mean = frames.reduce((a, b) => a + b, 0) / frames.length;
    frames = [];
    const next = mean > SLOW_MS ? Math.min(level + 1, ratios.length - 1) : mean < FAST_MS ? Math.max(level - 1, 0) : level;
    if (next !== level) {
      level = next;
      apply(full * ratios[level]);
    }
  });
  map.on('moveend', () => {
    // a chained easeTo starts in the same task as the previous one ends: stay low through it
    setTimeout(() => {
      if (!low || map.isMoving()) return;
      low = false;
      apply(full);
    }, 0);
  });
  return true;
}
