/**
 * keystate/inline: keystate/slim with the wasm inside the JavaScript (base64,
 * about a third larger than the .wasm, decoded once on the first
 * `StateStore.create`/`restore` or `initKeystate()`). For bundlers that do not
 * follow `new URL(..., import.meta.url)`, such as esbuild: nothing to copy or
 * serve beside the bundle. Works in Node and workers too.
 */
import { setLoaders } from './backend/load.js';
import { instantiateWasm } from './backend/source.js';
import wasmBase64 from './wasm/keystate_wasm_inline.js';

function decode(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

setLoaders({ wasm: () => instantiateWasm(decode(wasmBase64)) }, ['wasm']);

export * from './slim.js';
