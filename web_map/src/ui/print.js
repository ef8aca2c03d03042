// Print and share: the current map as PNG or PDF (A4/A3, landscape/portrait) with its title,
// legend, scale bar, north arrow, date and data sources; the offline HTML briefing of the
// visible layers (GET /api/export/briefing); and the link of this view.

import { fmtDate, lang, layerTitle, t, valueLabel } from '../i18n.js';
import { isPoint, rgba, styleOf, swatch } from '../style.js';
import { el } from '../util.js';
import { lockedLayer } from './layerPanel.js';
import { openModal } from './dialog.js';
import { overlayDeck } from '../internals.js';
import { shareUrl } from './urlState.js';

const PAPER_MM = { A4: [297, 210], A3: [420, 297] };
const DPI = 150;
const MM_PER_IN = 25.4;
const PT_PER_MM = 72 / MM_PER_IN;

/** The map (maplibre and deck canvases) as one canvas, read right after a fresh render. */
export function grabMap(app) {
  const { map } = app;
  return new Promise((resolve) => {
    map.once('render', () => {
      const src = map.getCanvas();
      const c = document.createElement('canvas');
      c.width = src.width;
      c.height = src.height;
      const ctx = c.getContext('2d');
      ctx.drawImage(src, 0, 0);
      const deck = app.overlay && overlayDeck(app.overlay);
      const dc = deck && deck.getCanvas && deck.getCanvas();
      if (dc && dc.style.visibility !== 'hidden') {
        // deck keeps no drawing buffer: draw it now, in this same task, and copy it
        deck.redraw('print');
        ctx.drawImage(dc, 0, 0, c.width, c.height);
      }
      resolve(c);
    });
    map.triggerRepaint();
  });
}

function shownLayers(app) {
  const { state } = app;
  return state.catalog.filter((l) => state.visible[l.slug] && !lockedLayer(app, l));
}

/** Metres per CSS pixel at the map's centre. */
function metresPerPixel(map) {
  const lat = map.getCenter().lat;
  return (40075016.686 * Math.cos((lat * Math.PI) / 180)) / (512 * 2 ** map.getZoom());
}

function niceLength(m) {
  const p = 10 ** Math.floor(Math.log10(m));
  const d = m / p;
  return (d >= 5 ? 5 : d >= 2 ? 2 : 1) * p;
}

/** Compose the page: title, map, legend, scale bar, north arrow, date and sources. */
/**
 * @param {any} app
 * @param {{title?: string, paper?: string, orientation?: string}} [opts]
 */
export async function composePage(app, { title, paper = 'A4', orientation = 'landscape' } = {}) {
  const [a, b] = PAPER_MM[paper] || PAPER_MM.A4;
  const [wmm, hmm] = orientation === 'portrait' ? [b, a] : [a, b];
  const W = Math.round((wmm / MM_PER_IN) * DPI);
  const H = Math.round((hmm / MM_PER_IN) * DPI);
  const u = W / 1000; // a layout unit that scales with the paper
  const shot = await grabMap(app);
  const page = document.createElement('canvas');
  page.width = W;
  page.height = H;
  const ctx = page.getContext('2d');
  const font = (px, weight = 400) => `${weight} ${Math.round(px)}px system-ui, 'Noto Sans', 'DejaVu Sans', Arial, sans-serif`;
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, W, H);
  const m = Math.round(14 * u);
  const headH = Math.round(52 * u);
  const footH = Math.round(34 * u);
  const legendW = orientation === 'landscape' ? Math.round(230 * u) : 0;
  const legendH = orientation === 'portrait' ? Math.round(200 * u) : 0;
  // title and date
  ctx.fillStyle = '#0d1526';
  ctx.font = font(24 * u, 700);
  ctx.textBaseline = 'middle';
  ctx.fillText(title || t('app.title'), m, m + headH / 2 - 6 * u);
  ctx.font = font(12 * u);
  ctx.fillStyle = '#44546a';
  ctx.fillText(`${t('print.date')}: ${fmtDate(new Date())} · ${t('app.subtitle')}`, m, m + headH / 2 + 16 * u);
  // the map, cropped to cover its box
  const mx = m;
  const my = m + headH;
  const mw = W - 2 * m - (legendW ? legendW + m : 0);
  const mh = H - my - m - footH - (legendH ? legendH + m : 0);
  const scale = Math.max(mw / shot.width, mh / shot.height);
  const sw = mw / scale;
  const sh = mh / scale;
  const sx = (shot.width - sw) / 2;
  const sy = (shot.height - sh) / 2;
  ctx.drawImage(shot, sx, sy, sw, sh, mx, my, mw, mh);
  // the place names (page text over the map, ui/labels.js) drawn where the page shows them
  const ratio = shot.width / app.map.getCanvas().clientWidth;
  ctx.save();
  ctx.beginPath();
  ctx.rect(mx, my, mw, mh);
  ctx.clip();
  ctx.textAlign = 'center';
  ctx.lineJoin = 'round';
  for (const l of app.labelPlacements || []) {
    const p = app.map.project(l.lonlat);
    const x = mx + (p.x * ratio - sx) * scale;
    let y = my + (p.y * ratio - sy) * scale;
    const px = l.size * ratio * scale;
    ctx.font = font(px, l.weight);
    ctx.textBaseline = l.kind === 'point' ? 'bottom' : 'middle';
    if (l.kind === 'point') y -= 12 * ratio * scale;
    ctx.lineWidth = Math.max(2, px / 4);
    ctx.strokeStyle = document.documentElement.dataset.theme === 'light' ? '#ffffff' : '#070d1a';
    ctx.strokeText(l.text, x, y);
    ctx.fillStyle = document.documentElement.dataset.theme === 'light' ? '#14202f' : l.kind === 'point' ? '#fff3c4' : '#eef3fb';
    ctx.fillText(l.text, x, y);
  }
  ctx.restore();
  ctx.textBaseline = 'middle';
  ctx.strokeStyle = '#0d1526';
  ctx.lineWidth = Math.max(1, 1.5 * u);
  ctx.strokeRect(mx, my, mw, mh);
  // scale bar: the map image is in device pixels, the map's metres are per CSS pixel
  const dpr = shot.width / app.map.getCanvas().clientWidth;
  const mPerPagePx = (metresPerPixel(app.map) * dpr) / scale;
  const target = niceLength(mPerPagePx * 160 * u);
  const barPx = target / mPerPagePx;
  const bx = mx + 16 * u;
  const by = my + mh - 22 * u;
  ctx.fillStyle = 'rgba(255,255,255,0.85)';
  ctx.fillRect(bx - 8 * u, by - 22 * u, barPx + 90 * u, 36 * u);
  ctx.fillStyle = '#0d1526';
  ctx.fillRect(bx, by, barPx, 5 * u);
  ctx.fillRect(bx, by - 6 * u, 2 * u, 11 * u);
  ctx.fillRect(bx + barPx - 2 * u, by - 6 * u, 2 * u, 11 * u);
  ctx.font = font(12 * u, 600);
  ctx.textBaseline = 'alphabetic';
  ctx.fillText(target >= 1000 ? `${target / 1000} km` : `${target} m`, bx + barPx + 8 * u, by + 5 * u);
  // north arrow (the map is never rotated unless bearing is set)
  const nx = mx + mw - 34 * u;
  const ny = my + 40 * u;
  ctx.save();
  ctx.translate(nx, ny);
  ctx.rotate((-app.map.getBearing() * Math.PI) / 180);
  ctx.fillStyle = 'rgba(255,255,255,0.85)';
  ctx.beginPath();
  ctx.arc(0, 0, 24 * u, 0, 2 * Math.PI);
  ctx.fill();
  ctx.fillStyle = '#0d1526';
  ctx.beginPath();
  ctx.moveTo(0, -18 * u);
  ctx.lineTo(9 * u, 12 * u);
  ctx.lineTo(0, 5 * u);
  ctx.lineTo(-9 * u, 12 * u);
  ctx.closePath();
  ctx.fill();
  ctx.restore();
  // the letter under the arrow, on its own light plate (readable over a dark basemap)
  ctx.fillStyle = 'rgba(255,255,255,0.85)';
  ctx.fillRect(nx - 11 * u, ny + 27 * u, 22 * u, 20 * u);
  ctx.font = font(14 * u, 700);
  ctx.textAlign = 'center';
  ctx.fillStyle = '#0d1526';
  ctx.fillText(lang() === 'vi' ? 'B' : 'N', nx, ny + 43 * u);
  ctx.textAlign = 'left';
  // legend
  const layers = shownLayers(app);
  const lx = legendW ? mx + mw + m : mx;
  let ly = legendW ? my : my + mh + m;
  const colW = legendW || Math.round((W - 2 * m) / 2);
  ctx.font = font(14 * u, 700);
  ctx.fillStyle = '#0d1526';
  ctx.fillText(t('print.legend'), lx, ly + 14 * u);
  ly += 26 * u;
  let col = 0;
  let full = false;
  const y0 = ly;
  const bottom = legendW ? my + mh : H - m - footH;
  const cols = legendW ? 1 : 2;
  const fit = (text, width) => {
    let s = text;
    while (s.length > 3 && ctx.measureText(s).width > width) s = s.slice(0, -2);
    return s === text ? s : `${s.trimEnd()}…`;
  };
  for (const layer of layers) {
    if (full) break;
    const s = styleOf(layer);
    const entries = [[layerTitle(layer), swatch(layer), true]];
    for (const [k, c] of Object.entries(s.palette || {}).slice(0, 8)) entries.push([valueLabel(k), rgba(c), false]);
    for (const [label, colour, head] of entries) {
      if (ly + 18 * u > bottom) {
        col += 1;
        ly = y0;
        if (col >= cols) {
          full = true;
          break;
        }
      }
      const x = lx + col * colW + (head ? 0 : 14 * u);
      ctx.fillStyle = colour;
      if (isPoint(layer) && head) {
        ctx.beginPath();
        ctx.arc(x + 7 * u, ly + 6 * u, 6 * u, 0, 2 * Math.PI);
        ctx.fill();
      } else ctx.fillRect(x, ly, 14 * u, 12 * u);
      ctx.strokeStyle = '#44546a';
      ctx.lineWidth = u;
      ctx.strokeRect(x, ly, 14 * u, 12 * u);
      ctx.fillStyle = '#0d1526';
      ctx.font = font((head ? 12 : 11) * u, head ? 600 : 400);
      ctx.fillText(fit(label, colW - (x - lx - col * colW) - 26 * u), x + 20 * u, ly + 11 * u);
      ly += (head ? 18 : 15) * u;
    }
  }
  // sources
  const sources = [...new Set(layers.map((l) => l.attribution || l.source_system).filter(Boolean))];
  const synthetic = layers.filter((l) => l.synthetic).map((l) => layerTitle(l));
  let foot = `${t('print.sources')}: ${sources.join('; ') || '—'}`;
  if (synthetic.length) foot += ` · ${t('print.synthetic')}: ${synthetic.join(', ')}`;
  ctx.font = font(10 * u);
  ctx.fillStyle = '#44546a';
  const maxW = W - 2 * m;
  while (ctx.measureText(foot).width > maxW && foot.length > 10) foot = `${foot.slice(0, -2)}…`;
  ctx.fillText(foot, m, H - m - footH / 2 + 4 * u);
  return { canvas: page, widthMm: wmm, heightMm: hmm };
}

const enc = new TextEncoder();

/** A one-page PDF holding a JPEG at the page size (no library: five objects and an xref). */
export function pdfFromJpeg(jpeg, pxW, pxH, widthMm, heightMm) {
  const w = (widthMm * PT_PER_MM).toFixed(2);
  const h = (heightMm * PT_PER_MM).toFixed(2);
  const content = `q ${w} 0 0 ${h} 0 0 cm /Im0 Do Q`;
  const parts = [];
  const offsets = [];
  let size = 0;
  const push = (x) => {
    const bytes = typeof x === 'string' ? enc.encode(x) : x;
    parts.push(bytes);
    size += bytes.length;
  };
  push('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n');
  const obj = (n, body, stream) => {
    offsets[n] = size;
    push(`${n} 0 obj\n${body}\n`);
    if (stream) {
      push('stream\n');
      push(stream);
      push('\nendstream\n');
    }
    push('endobj\n');
  };
  obj(1, '<< /Type /Catalog /Pages 2 0 R >>');
  obj(2, '<< /Type /Pages /Kids [3 0 R] /Count 1 >>');
  obj(3, `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${w} ${h}] /Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>`);
  obj(4, `<< /Type /XObject /Subtype /Image /Width ${pxW} /Height ${pxH} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode /Length ${jpeg.length} >>`, jpeg);
  obj(5, `<< /Length ${enc.encode(content).length} >>`, enc.encode(content));
  const xref = size;
  let table = 'xref\n0 6\n0000000000 65535 f \n';
  for (let n = 1; n <= 5; n++) table += `${String(offsets[n]).padStart(10, '0')} 00000 n \n`;
  push(table);
  push(`trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return new Blob(parts, { type: 'application/pdf' });
}

function blobOf(canvas, type, quality) {
  return new Promise((resolve) => canvas.toBlob(resolve, type, quality));
}

function fileName(ext) {
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return `iocmap-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}.${ext}`;
}

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

/** Save the composed page as PNG or PDF. */
export async function exportMap(app, kind, opts) {
  const { canvas, widthMm, heightMm } = await composePage(app, opts);
  if (kind === 'png') {
    save(await blobOf(canvas, 'image/png'), fileName('png'));
    return;
  }
  const jpeg = new Uint8Array(await (await blobOf(canvas, 'image/jpeg', 0.92)).arrayBuffer());
  save(pdfFromJpeg(jpeg, canvas.width, canvas.height, widthMm, heightMm), fileName('pdf'));
}

/** The print and share dialog. */
export function openPrint(app) {
  const { body, close } = openModal({ id: 'print-dialog', title: t('print.title') });
  const title = el('input', { type: 'text', id: 'print-title', value: t('app.title'), maxlength: '120' });
  const paper = el('select', { id: 'print-paper' }, ['A4', 'A3'].map((p) => el('option', { value: p }, p)));
  const orient = el('select', { id: 'print-orient' }, ['landscape', 'portrait'].map((o) => el('option', { value: o }, t(`print.${o}`))));
  const status = el('p', { class: 'muted small', role: 'status' });
  const opts = () => ({ title: title.value.trim(), paper: paper.value, orientation: orient.value });
  const run = async (kind) => {
    status.textContent = t('print.working');
    try {
      await exportMap(app, kind, opts());
      status.textContent = t('print.done');
    } catch (err) {
      console.warn(err);
      status.textContent = `${t('app.error')}: ${err.message}`;
    }
  };
  const slugs = shownLayers(app)
    .map((l) => l.slug)
    .filter((s) => s !== 'admin_communes' && s !== 'admin_province');
  const bounds = app.map.getBounds();
  const bbox = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()].map((v) => v.toFixed(5)).join(',');
  const briefing = `/api/export/briefing?${new URLSearchParams({ layers: slugs.join(','), lang: lang(), bbox, title: title.value })}`;
  const link = el('input', { type: 'text', id: 'share-link', readonly: true, value: shareUrl(app) });
  body.append(
    el('label', {}, t('print.map_title'), title),
    el('div', { class: 'row' }, el('label', {}, t('print.paper'), paper), el('label', {}, t('print.orientation'), orient)),
    el('div', { class: 'row wrap' }, el('button', { type: 'button', class: 'btn primary', id: 'print-png', onclick: () => run('png') }, t('print.png')), el('button', { type: 'button', class: 'btn primary', id: 'print-pdf', onclick: () => run('pdf') }, t('print.pdf'))),
    el(
      'div',
      { class: 'row wrap' },
      el('a', { class: 'btn', id: 'print-briefing', href: briefing, download: '', onclick: (e) => { if (!slugs.length) e.preventDefault(); e.currentTarget.href = `/api/export/briefing?${new URLSearchParams({ layers: slugs.join(','), lang: lang(), bbox, title: title.value })}`; } }, t('print.briefing')),
    ),
    el('label', {}, t('print.share'), link),
    el(
      'div',
      { class: 'row' },
      el(
        'button',
        {
          type: 'button',
          class: 'btn',
          id: 'share-copy',
          onclick: async () => {
            link.select();
            try {
              await navigator.clipboard.writeText(link.value);
            } catch {
              document.execCommand('copy');
            }
            status.textContent = t('print.copied');
          },
        },
        t('print.copy'),
      ),
    ),
    status,
  );
  return close;
}
