/**
 * The WebAssembly backend over the wasm-bindgen glue. Instantiation is left
 * to the environment's loader (Node reads the file; browsers fetch a URL or
 * take bytes), which calls `wasmBackend` with the result.
 */
import { WasmInspector, WasmRestorer, WasmStore } from '../wasm/keystate_wasm.js';
import type { Backend, CoreInspector, CoreRestorer, CoreStore } from './types.js';

/** Arguments and results both live in linear memory: every view is of it, zero-copy. */
export function wasmBackend(memory: WebAssembly.Memory): Backend {
  return {
    name: 'wasm',
    newStore: (mp, start, end, id) => new WasmStore(mp, start, end, id) as unknown as CoreStore,
    newRestorer: (start, end, id) => new WasmRestorer(start, end, id) as unknown as CoreRestorer,
    newInspector: (list) => new WasmInspector(list) as unknown as CoreInspector,
    argBuffer: () => memory.buffer,
    resultBuffer: () => memory.buffer,
    memoryBytes: () => memory.buffer.byteLength,
  };
}
