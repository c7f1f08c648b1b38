// Pipeline smoke test: the generated wasm glue loads in Node and answers.
// Placeholder until the real suites arrive.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initSync, version } from '../dist/wasm/keystate_wasm.js';

test('wasm glue loads and reports the crate version', () => {
  initSync({ module: readFileSync(new URL('../dist/wasm/keystate_wasm_bg.wasm', import.meta.url)) });
  assert.match(version(), /^\d+\.\d+\.\d+/);
});

test.run();
