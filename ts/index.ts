/**
 * keystate: keyed state for Node and the browser, on a Rust core. This is
 * the Node entry point: it runs the native addon where it loads, else the
 * WebAssembly core (read from disk); `KEYSTATE_BACKEND=native|wasm` forces one.
 */
import { setLoaders } from './backend/load.js';
import { loadNative } from './backend/native.js';
import { loadNodeWasm } from './backend/node.js';

setLoaders({ native: loadNative, wasm: loadNodeWasm }, ['native', 'wasm'], process.env.KEYSTATE_BACKEND);

export * from './api.js';
// Node only: the shared API (api.ts) never imports node:fs, so browser bundles stay clean.
export { DirectoryStorage } from './storage/directory.js';
export type { DirectoryStorageOptions, DirectoryLockOptions } from './storage/directory.js';
