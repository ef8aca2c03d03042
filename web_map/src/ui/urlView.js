// The part of the URL state the first paint needs (centre, zoom, visible layers), read before
// the map is created; the rest (mode, time window, selection, history) is in urlState.js.

/** {center:[lon,lat], zoom} from ?c=lon,lat&z=zoom, or null. */
export function viewFromUrl(search = location.search) {
  const p = new URLSearchParams(search);
  const c = (p.get('c') || '').split(',').map(Number);
  const z = Number(p.get('z'));
  if (c.length !== 2 || !c.every(Number.isFinite) || !Number.isFinite(z) || p.get('z') === null) return null;
  if (Math.abs(c[0]) > 180 || Math.abs(c[1]) > 85) return null;
  return { center: c, zoom: Math.min(22, Math.max(0, z)) };
}

/** The set of visible layer slugs from ?l=a,b (empty string: none), or null when absent. */
export function layersFromUrl(search = location.search) {
  const p = new URLSearchParams(search);
  if (!p.has('l')) return null;
  return new Set((p.get('l') || '').split(',').filter(Boolean));
}

/** Set the light theme before the first paint when the URL or the saved choice asks for it. */
export function initialTheme() {
  let saved = null;
  try {
    saved = localStorage.getItem('iocmap.theme');
  } catch {
    saved = null;
  }
  const fromUrl = new URLSearchParams(location.search).get('theme');
  if ((fromUrl || saved) === 'light') document.documentElement.dataset.theme = 'light';
}
