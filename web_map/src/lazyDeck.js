// Loads deckExtras.js (the deck.gl layers the first view does not draw) when a layer first asks
// for it. Layers are built synchronously, so a builder that finds the chunk missing leaves its
// layer out for now; the app redraws when the chunk has arrived (onDeckExtras).

let loaded = null;
let loading = null;
const listeners = new Set();

/** The extra layers' module, or null while it is not loaded yet (its import is then started). */
export function deckExtras() {
  if (!loaded) loadDeckExtras();
  return loaded;
}

/** The extra layers' module, once loaded (a promise). */
export function loadDeckExtras() {
  if (!loading) {
    loading = import('./deckExtras.js').then(
      (m) => {
        loaded = m;
        for (const fn of listeners) fn();
        return m;
      },
      (err) => {
        loading = null; // a failed download is tried again next time
        throw err;
      },
    );
  }
  return loading;
}

/** True while the chunk is being downloaded (the test hook's "settled" waits for it). */
export function deckExtrasPending() {
  return !!loading && !loaded;
}

/** Call fn whenever the chunk arrives (the app redraws its layers). */
export function onDeckExtras(fn) {
  listeners.add(fn);
}
