// The light theme (for daylight rooms and print-like reading): page colours by CSS variables,
// basemap colours by paint properties re-applied after each redraw. Saved per browser and
// carried in the URL (?theme=light).

const LIGHT_PAINT = [
  ['background', 'background-color', '#eef2f7'],
  ['communes-fill', 'fill-color', '#fbfcfe'],
  ['communes-line', 'line-color', '#8a9bb5'],
  ['province-line', 'line-color', '#33415c'],
];

/** 'light' or 'dark'. */
export function theme() {
  return document.documentElement.dataset.theme === 'light' ? 'light' : 'dark';
}

function applyBasemap(app) {
  const { map } = app;
  if (theme() !== 'light' || !map.isStyleLoaded()) return;
  for (const [id, prop, value] of LIGHT_PAINT) {
    if (!map.getLayer(id)) continue;
    // an indicator on the wards keeps its own colours
    if (id === 'communes-fill' && app.state.choropleth) continue;
    if (map.getPaintProperty(id, prop) !== value) map.setPaintProperty(id, prop, value);
  }
}

/** Switch the theme ('light' / 'dark'). */
export function setTheme(app, name) {
  const light = name === 'light';
  if (light) document.documentElement.dataset.theme = 'light';
  else delete document.documentElement.dataset.theme;
  document.querySelector('meta[name="color-scheme"]')?.setAttribute('content', light ? 'light' : 'dark');
  try {
    localStorage.setItem('iocmap.theme', light ? 'light' : 'dark');
  } catch {
    // private mode
  }
  const p = new URLSearchParams(location.search);
  if (light) p.set('theme', 'light');
  else p.delete('theme');
  history.replaceState(history.state, '', `${location.pathname}?${p}${location.hash}`);
  // dark again: forget the basemap's paint cache so its own colours are set back
  if (!light) app.map.__paintCache = {};
  app.redraw();
}

/** Restore the theme from the URL or the saved choice; re-apply after every redraw. */
export function initTheme(app) {
  const redraw = app.redraw;
  app.redraw = (...args) => {
    redraw(...args);
    applyBasemap(app);
  };
  app.map.on('styledata', () => applyBasemap(app));
  let saved = null;
  try {
    saved = localStorage.getItem('iocmap.theme');
  } catch {
    saved = null;
  }
  const fromUrl = new URLSearchParams(location.search).get('theme');
  if ((fromUrl || saved) === 'light') setTheme(app, 'light');
}
