// Ambient declarations for the type check (npm run typecheck): what esbuild and the page
// provide that TypeScript cannot see.

/** Worker bundle URLs, replaced by esbuild's `define` (build.mjs). */
declare const __MVT_WORKER_URL__: string;
declare const __MAPLIBRE_WORKER_URL__: string;

/** CSS imported for its side effect; esbuild bundles it. */
declare module "*.css";

interface Window {
  /** The page's app handle, for tests and benchmarks (main.js, mapapp.js). */
  __iocmap?: any;
}

// querySelector/getElementById answer Element/HTMLElement; the code knows which element it
// asked for. These keep the check loose on that point only.
interface Element {
  hidden: boolean;
}
interface HTMLElement {
  src: string;
  value: string;
}

interface Error {
  /** HTTP status of a failed API call (api.js getJSON). */
  status?: number;
  /** The URL of a failed API call (api.js getJSON). */
  url?: string;
}
