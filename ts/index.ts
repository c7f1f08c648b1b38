/**
 * keystate: keyed state for Node and the browser, on a Rust/WebAssembly core.
 * This is the Node entry point (it loads the .wasm file from disk).
 */
import { setLoader } from './backend/load.js';
import { loadNodeWasm } from './backend/node.js';

setLoader(loadNodeWasm);

export * from './api.js';
// Node only: the shared API (api.ts) never imports node:fs, so browser bundles stay clean.
export { DirectoryStorage } from './storage/directory.js';
export type { DirectoryStorageOptions, DirectoryLockOptions } from './storage/directory.js';
