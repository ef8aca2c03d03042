// Build the web map into dist/: minified, content-hashed ES module chunks and one CSS file under
// dist/assets/ and an index.html that references the entry. The entry (app-*.js) holds maplibre
// and the basemap only; deck.gl and the panels are split into chunks loaded after it. Everything comes from node_modules:
// no CDN, no fonts or tiles from outside.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as zlibConstants, gzipSync } from 'node:zlib';

const root = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(root, 'dist');
const watch = process.argv.includes('--watch');

const options = {
  entryPoints: { app: path.join(root, 'src', 'main.js') },
  bundle: true,
  minify: !watch,
  sourcemap: watch ? 'inline' : false,
  format: 'esm',
  splitting: true,
  chunkNames: 'chunk-[hash]',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: path.join(dist, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  loader: { '.png': 'file', '.svg': 'file', '.woff': 'file', '.woff2': 'file' },
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'info',
  plugins: [],
};

// chunks the first view imports once the basemap is drawn: prefetched by index.html
const LATER = ['src/mapapp.js', 'src/ui/tools.js'];

// Keys of web_map/i18n.json that only the server reads (its error, field, validation and import
// messages): the one catalogue keeps them, the page's bundle leaves them out.
const SERVER_ONLY = /^(err|field|val)\.|^imp\.(note|detail)\./;

/** Load i18n.json without the server-only keys. */
const pageCatalogue = {
  name: 'page-catalogue',
  setup(build) {
    build.onLoad({ filter: /[\\/]i18n\.json$/ }, async (args) => {
      const data = JSON.parse(await readFile(args.path, 'utf8'));
      for (const lang of Object.keys(data)) {
        data[lang] = Object.fromEntries(Object.entries(data[lang]).filter(([key]) => !SERVER_ONLY.test(key)));
      }
      return { contents: JSON.stringify(data), loader: 'json' };
    });
  },
};
options.plugins.push(pageCatalogue);

/** Write index.html for the hashed bundle names in the esbuild metafile. */
async function writeIndex(metafile) {
  const outputs = Object.keys(metafile.outputs).map((p) => path.relative(dist, path.join(root, p)).split(path.sep).join('/'));
  const js = outputs.find((p) => /^assets\/app-[^/]+\.js$/.test(p));
  const css = outputs.find((p) => /^assets\/app-[^/]+\.css$/.test(p));
  // the entry's own static imports (shared chunks) are preloaded, so they arrive with it
  const entryOut = Object.entries(metafile.outputs).find(([p]) => p.endsWith(`/${js}`));
  const preload = (entryOut ? entryOut[1].imports : [])
    .filter((i) => i.kind === 'import-statement')
    .map((i) => `<link rel="modulepreload" href="/${path.relative(dist, path.join(root, i.path)).split(path.sep).join('/')}">`)
    .join('\n    ');
  // the app and tool bar chunks (and what they import): main.js has them fetched at idle priority
  // once the map is created (not from the page itself, where they would compete with maplibre's
  // own download), so importing them after the basemap waits for no download
  const rel = (p) => `/${path.relative(dist, path.join(root, p)).split(path.sep).join('/')}`;
  const closure = (roots) => {
    const seen = new Set();
    const todo = [...roots];
    while (todo.length) {
      const p = todo.pop();
      if (seen.has(p)) continue;
      seen.add(p);
      for (const i of metafile.outputs[p].imports) if (i.kind === 'import-statement') todo.push(i.path);
    }
    return seen;
  };
  const entryClosure = closure(entryOut ? [entryOut[0]] : []);
  const later = Object.entries(metafile.outputs)
    .filter(([, o]) => o.entryPoint && LATER.some((e) => o.entryPoint.endsWith(e)))
    .map(([p]) => p);
  const prefetch = JSON.stringify([...closure(later)].filter((p) => !entryClosure.has(p)).map(rel));
  const template = await readFile(path.join(root, 'src', 'index.html'), 'utf8');
  const html = template
    .replace('<!--CSS-->', (css ? `<link rel="stylesheet" href="/${css}">` : '') + (preload ? `\n    ${preload}` : '') + `\n    <script type="application/json" id="later-chunks">${prefetch}</script>`)
    .replace('<!--JS-->', `<script type="module" src="/${js}"></script>`);
  await writeFile(path.join(dist, 'index.html'), html);
  return { js, css };
}

/**
 * loaders.gl falls back to fetching its workers from a public CDN when a loader runs in a
 * worker. The map disables workers, and this makes sure the fallback can never leave the
 * machine: the CDN base becomes a local path that simply 404s.
 */
async function neuterCdn(metafile) {
  for (const out of Object.keys(metafile.outputs).filter((p) => p.endsWith('.js'))) {
    const file = path.join(root, out);
    const code = await readFile(file, 'utf8');
    const fixed = code.replaceAll('https://unpkg.com/@loaders.gl', '/assets/no-cdn/@loaders.gl');
    if (fixed !== code) await writeFile(file, fixed);
  }
}

/**
 * maplibre-gl 5+ starts its worker from a separate module file next to its own bundle.
 * Copy it under a content-hashed name (as .js, so every server sends a JavaScript MIME type)
 * and hand its URL to the app through a build-time constant.
 */
async function copyMaplibreWorker() {
  const src = path.join(root, 'node_modules', 'maplibre-gl', 'dist', 'maplibre-gl-worker.mjs');
  const hash = createHash('sha256').update(await readFile(src)).digest('hex').slice(0, 10).toUpperCase();
  const name = `maplibre-gl-worker-${hash}.js`;
  await copyFile(src, path.join(dist, 'assets', name));
  return `/assets/${name}`;
}

/**
 * Leaflet for the offline briefing export (web_map/briefing.py inlines it into the HTML):
 * shipped under dist/vendor so an installed package has it without node_modules.
 */
async function copyBriefingVendor() {
  const vendor = path.join(dist, 'vendor', 'leaflet');
  await mkdir(path.join(vendor, 'images'), { recursive: true });
  const src = path.join(root, 'node_modules', 'leaflet', 'dist');
  for (const f of ['leaflet.js', 'leaflet.css', 'images/layers.png', 'images/layers-2x.png', 'images/marker-icon.png', 'images/marker-shadow.png']) {
    await copyFile(path.join(src, f), path.join(vendor, f));
  }
  await copyFile(path.join(root, 'node_modules', 'leaflet', 'LICENSE'), path.join(vendor, 'LICENSE'));
}

/** Swagger UI and ReDoc for the API's /docs and /redoc pages (geo_api/docs.py): no CDN at run time. */
async function copyApiDocs() {
  const files = {
    redoc: ['bundles/redoc.standalone.js', 'LICENSE'],
    swagger: ['swagger-ui-bundle.js', 'swagger-ui.css', 'favicon-32x32.png', 'LICENSE', 'NOTICE'],
  };
  for (const [name, list] of Object.entries(files)) {
    const vendor = path.join(dist, 'vendor', name);
    await mkdir(vendor, { recursive: true });
    const src = path.join(root, 'node_modules', name === 'redoc' ? 'redoc' : 'swagger-ui-dist');
    for (const f of list) await copyFile(path.join(src, f), path.join(vendor, path.basename(f)));
  }
  // ReDoc's sidebar footer shows its logo from cdn.redoc.ly: an empty local image instead
  const redoc = path.join(dist, 'vendor', 'redoc', 'redoc.standalone.js');
  const code = await readFile(redoc, 'utf8');
  await writeFile(redoc, code.replaceAll('https://cdn.redoc.ly/redoc/logo-mini.svg', 'data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22/%3E'));
}

/** loaders.gl's prebuilt MVT worker, served by us (so vector tiles decode off the main thread). */
async function copyMvtWorker() {
  const src = path.join(root, 'node_modules', '@loaders.gl', 'mvt', 'dist', 'mvt-worker.js');
  const hash = createHash('sha256').update(await readFile(src)).digest('hex').slice(0, 10).toUpperCase();
  const name = `mvt-worker-${hash}.js`;
  await copyFile(src, path.join(dist, 'assets', name));
  return `/assets/${name}`;
}

/**
 * A gzip copy (name.gz, best compression) of every script and style sheet under dist/assets:
 * the server sends it as it is (geo_api/web.py) instead of compressing megabytes of
 * JavaScript again for every page load.
 */
async function precompress() {
  const assets = path.join(dist, 'assets');
  for (const name of await readdir(assets)) {
    if (!/\.(js|css)$/.test(name)) continue;
    const file = path.join(assets, name);
    await writeFile(`${file}.gz`, gzipSync(await readFile(file), { level: zlibConstants.Z_BEST_COMPRESSION }));
  }
}

await rm(dist, { recursive: true, force: true });
await mkdir(path.join(dist, 'assets'), { recursive: true });
await copyBriefingVendor();
await copyApiDocs();
options.define.__MVT_WORKER_URL__ = JSON.stringify(await copyMvtWorker());
options.define.__MAPLIBRE_WORKER_URL__ = JSON.stringify(await copyMaplibreWorker());

if (watch) {
  const ctx = await esbuild.context({
    ...options,
    plugins: [...options.plugins, { name: 'index', setup: (b) => b.onEnd(async (r) => r.metafile && writeIndex(r.metafile)) }],
  });
  await ctx.watch();
} else {
  const result = await esbuild.build(options);
  await neuterCdn(result.metafile);
  const { js, css } = await writeIndex(result.metafile);
  await precompress();
  const size = (p) => (result.metafile.outputs[path.relative(root, path.join(dist, p)).split(path.sep).join('/')] || {}).bytes || 0;
  console.log(`web map built: ${js} (${Math.round(size(js) / 1024)} KiB), ${css} (${Math.round(size(css) / 1024)} KiB)`);
}
