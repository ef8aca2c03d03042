// Fails when a private deck.gl / maplibre-gl internal used by src/internals.js is gone from the
// installed packages (an upgrade), naming it and the version it was checked against.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { INTERNALS } from '../src/internals.js';

const pkgDir = (name) => new URL(`../node_modules/${name}/`, import.meta.url);

for (const it of INTERNALS) {
  test(`${it.name} (${it.pkg}, checked against ${it.checked})`, () => {
    const installed = JSON.parse(readFileSync(new URL('package.json', pkgDir(it.pkg)), 'utf8')).version;
    const source = readFileSync(new URL(it.file, pkgDir(it.pkg)), 'utf8');
    assert.ok(
      source.includes(it.pattern),
      `${it.name} is gone from ${it.pkg} ${installed} (checked against ${it.checked}): ` +
        `update src/internals.js before upgrading`,
    );
  });
}

test('every internal of src/internals.js is listed for checking', () => {
  const code = readFileSync(new URL('../src/internals.js', import.meta.url), 'utf8');
  const used = new Set([...code.matchAll(/\.(_\w+|layerManager|activateViewport|painter)\b/g)].map((m) => m[1]));
  const listed = new Set(INTERNALS.map((i) => i.name.split('#')[1]));
  for (const name of used) assert.ok(listed.has(name), `${name} is used but not checked`);
});

test('no module but src/internals.js reaches into deck.gl or maplibre internals', async () => {
  const { readdirSync } = await import('node:fs');
  const root = new URL('../src/', import.meta.url);
  const files = readdirSync(root, { recursive: true }).filter((f) => String(f).endsWith('.js'));
  const bad = [];
  for (const f of files) {
    if (String(f) === 'internals.js') continue;
    const code = readFileSync(new URL(String(f), root), 'utf8');
    for (const m of code.matchAll(/\.(_deck|layerManager|activateViewport|_onPointerMove|_resizeInternal|_overridePixelRatio|painter)\b/g)) {
      bad.push(`${f}: ${m[0]}`);
    }
  }
  assert.deepEqual(bad, []);
});
