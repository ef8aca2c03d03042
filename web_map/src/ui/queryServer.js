// Server-side query presets (/api/query/...), used when the Map API offers them.
// Returns null when the server cannot answer, so the browser fallback runs instead.

/** Run the active preset on the server; null when there is no matching endpoint. */
export async function runServerPreset(app) {
  const { caps } = app.state;
  if (!caps || !caps.query || !caps.query.length) return null;
  return null;
}
