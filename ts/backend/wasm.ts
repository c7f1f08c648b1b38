/**
 * The WebAssembly backend over the wasm-bindgen glue. Instantiation is left
 * to the environment's loader (Node reads the file; browsers fetch a URL or
 * take bytes), which calls `wasmBackend` with the result.
 */
import { WasmRestorer, WasmStore } from '../wasm/keystate_wasm.js';
import type { Backend, CoreRestorer, CoreStore } from './types.js';

export function wasmBackend(memory: WebAssembly.Memory, name = 'wasm'): Backend {
  return {
    name,
    memory,
    newStore: (mp, start, end, id) => new WasmStore(mp, start, end, id) as unknown as CoreStore,
    newRestorer: (start, end, id) => new WasmRestorer(start, end, id) as unknown as CoreRestorer,
  };
}
