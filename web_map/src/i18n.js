// Every user-visible string of the web map lives in ONE file, web_map/i18n.json
// (Vietnamese first, English second); the briefing export (web_map/briefing.py) reads it too.
// Keys missing in English fall back to Vietnamese, keys missing in both show the key itself.

import STRINGS_JSON from '../i18n.json';

export const STRINGS = STRINGS_JSON;

let current = 'vi';
const listeners = [];

/** The active language code. */
export function lang() {
  return current;
}

/** The server answers errors in the page's language: it reads this cookie. */
function langCookie() {
  document.cookie = `lang=${current}; path=/; SameSite=Strict; max-age=31536000`;
}

/** Switch language and notify every subscriber so it can redraw its strings. */
export function setLang(code) {
  current = code === 'en' ? 'en' : 'vi';
  document.documentElement.lang = current;
  langCookie();
  try {
    localStorage.setItem('iocmap.lang', current);
  } catch {
    // private mode: the choice just does not persist
  }
  for (const fn of listeners) fn(current);
}

/** Call fn on every language change. */
export function onLang(fn) {
  listeners.push(fn);
}

/** Restore the saved language (Vietnamese unless the user chose English). */
export function initLang() {
  let saved = null;
  try {
    saved = localStorage.getItem('iocmap.lang');
  } catch {
    saved = null;
  }
  const fromUrl = new URLSearchParams(location.search).get('lang');
  current = fromUrl === 'en' || (!fromUrl && saved === 'en') ? 'en' : 'vi';
  document.documentElement.lang = current;
  langCookie();
}

/** Translate a key, filling {placeholders} from vars. */
export function t(key, vars) {
  let s = STRINGS[current][key] ?? STRINGS.vi[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

/** Whether a key has a translation (so callers can fall back to raw values). */
export function has(key) {
  return key in STRINGS.vi || key in STRINGS[current];
}

/** Human label of a property name. */
export function propLabel(name) {
  return has(`prop.${name}`) ? t(`prop.${name}`) : name;
}

/** Human label of a categorical value or boolean. */
export function valueLabel(value) {
  if (value === null || value === undefined) return '—';
  const key = `value.${value}`;
  return has(key) ? t(key) : String(value);
}

/** A layer's title in the active language. */
export function layerTitle(layer) {
  return current === 'en' ? layer.title_en || layer.title_vi : layer.title_vi || layer.title_en;
}

/** Locale-aware number formatting (Vietnamese uses dots for thousands). */
export function fmtNumber(n, digits = 0, minDigits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return Number(n).toLocaleString(current === 'en' ? 'en-GB' : 'vi-VN', {
    maximumFractionDigits: digits,
    minimumFractionDigits: Math.min(minDigits, digits),
  });
}

/** A unit of measure (stored in Vietnamese) in the active language: hồ sơ → dossiers; may be ''. */
export function unitLabel(unit) {
  if (!unit) return '';
  const key = `unit.${unit}`;
  const label = key in STRINGS[current] ? STRINGS[current][key] : unit;
  // "–" marks a unit with no word in that language ("lượt": the English name says Visitors)
  return label === '–' ? '' : label;
}

let abbrCache = null;

/**
 * Shorten a Vietnamese unit name the usual way (Bệnh viện đa khoa → BVĐK, Trạm y tế → TYT),
 * from the `abbr.*` entries of the translation file, longest prefix first.
 */
export function abbreviate(name) {
  if (!name) return name;
  if (!abbrCache) {
    abbrCache = Object.keys(STRINGS.vi)
      .filter((k) => k.startsWith('abbr.'))
      .map((k) => [k.slice(5), STRINGS.vi[k]])
      .sort((a, b) => b[0].length - a[0].length);
  }
  for (const [prefix, short] of abbrCache) {
    if (name.startsWith(`${prefix} `)) return `${short} ${name.slice(prefix.length + 1)}`;
    if (name === prefix) return short;
  }
  return name;
}

/** Locale-aware date-time formatting. */
export function fmtDate(value) {
  if (!value) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(current === 'en' ? 'en-GB' : 'vi-VN', {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
  });
}

/** Locale-aware date (no time of day). */
export function fmtDay(value) {
  if (!value) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleDateString(current === 'en' ? 'en-GB' : 'vi-VN', { year: 'numeric', month: '2-digit', day: '2-digit' });
}
