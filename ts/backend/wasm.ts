/**
 * The WebAssembly backend over the wasm-bindgen glue. Instantiation is left
 * to the environment's loader (Node reads the file; browsers fetch a URL or
 * take bytes), which calls `wasmBackend` with the result.
 */
import { WasmInspector, WasmRestorer, WasmStore } from '../wasm/keystate_wasm.js';
import type { Backend, CoreInspector, CoreRestorer, CoreStore } from './types.js';

/**
 * A restorer whose bytes go into linear memory through a buffer the core
 * grows fallibly (`feedBuffer`): wasm-bindgen's own copy of a `Uint8Array`
 * argument aborts the instance when memory cannot grow, where this throws
 * `STORE_FULL`.
 */
function restorer(r: WasmRestorer, memory: WebAssembly.Memory): CoreRestorer {
  return {
    free: () => r.free(),
    setMaxMemory: (bytes) => r.setMaxMemory(bytes),
    beginPiece: (newChain) => r.beginPiece(newChain),
    feed: (bytes) => {
      const at = r.feedBuffer(bytes.length);
      // After the call: growing the buffer may have grown (and replaced) the memory's buffer.
      new Uint8Array(memory.buffer, at, bytes.length).set(bytes);
      r.feedFromBuffer(bytes.length);
    },
    progress: () => r.progress(),
    endPiece: () => r.endPiece(),
    finish: () => r.finish() as unknown as CoreStore,
    finishCompacted: () => r.finishCompacted(),
  };
}

/** An inspector fed the same way as the restorer above. */
function inspector(ins: WasmInspector, memory: WebAssembly.Memory): CoreInspector {
  return {
    free: () => ins.free(),
    feed: (bytes) => {
      const at = ins.feedBuffer(bytes.length);
      new Uint8Array(memory.buffer, at, bytes.length).set(bytes);
      return ins.feedFromBuffer(bytes.length);
    },
    finish: () => ins.finish(),
  };
}

/** Arguments and results both live in linear memory: every view is of it, zero-copy. */
export function wasmBackend(memory: WebAssembly.Memory): Backend {
  return {
    name: 'wasm',
    newStore: (mp, start, end, id) => new WasmStore(mp, start, end, id) as unknown as CoreStore,
    newRestorer: (start, end, id) => restorer(new WasmRestorer(start, end, id), memory),
    newInspector: (list) => inspector(new WasmInspector(list), memory),
    argBuffer: () => memory.buffer,
    resultBuffer: () => memory.buffer,
    memoryBytes: () => memory.buffer.byteLength,
  };
}
