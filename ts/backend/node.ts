/** Loads the WebAssembly backend in Node: the .wasm file beside the glue. */
import { readFileSync } from 'node:fs';
import { initSync } from '../wasm/keystate_wasm.js';
import type { Backend } from './types.js';
import { wasmBackend } from './wasm.js';

let backend: Backend | undefined;

export function loadNodeWasm(): Backend {
  if (!backend) {
    const bytes = readFileSync(new URL('../wasm/keystate_wasm_bg.wasm', import.meta.url));
    const out = initSync({ module: bytes });
    backend = wasmBackend(out.memory);
  }
  return backend;
}
