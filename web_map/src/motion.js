// Smooth panning without a GPU. On a software WebGL renderer (SwiftShader, llvmpipe: a server
// or a thin client with no graphics driver) every frame is rasterised, read back and
// composited by the CPU, so a frame costs about its pixel count. While the map moves it is
// drawn at a reduced pixel ratio (maplibre's canvas and deck's overlay canvas); the frame after
// the movement ends is full resolution again. On a GPU nothing changes.

const SOFTWARE = /swiftshader|llvmpipe|softpipe|software|basic render/i;

/** The WebGL renderer string of the map's context ('' when the browser hides it). */
export function glRenderer(map) {
  try {
    const gl = map.painter.context.gl;
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    return String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER) || '');
  } catch {
    return '';
  }
}

/**
 * Draw at `ratio` of the device pixel ratio while the map moves, when the renderer is software
 * (or ?lowres=1; ?lowres=0 turns it off). Returns whether it is on.
 */
export function motionResolution(app, ratio = 0.5) {
  const map = app.map;
  const param = new URLSearchParams(location.search).get('lowres');
  const on = param === '1' || (param !== '0' && SOFTWARE.test(glRenderer(map)));
  // maplibre's public setPixelRatio() goes through resize(), which stops a running camera
  // animation and fires movestart/moveend of its own; the internal resize does neither
  if (!on || typeof map._resizeInternal !== 'function') return false;
  const full = map.getPixelRatio();
  const own = map._overridePixelRatio;
  let low = false;
  const apply = (r) => {
    map._overridePixelRatio = r === full ? own : r;
    map._resizeInternal(false);
    if (app.overlay) app.overlay.setProps({ useDevicePixels: r === full ? true : r });
    map.triggerRepaint();
  };
  map.on('movestart', () => {
    if (low) return;
    low = true;
    apply(full * ratio);
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
