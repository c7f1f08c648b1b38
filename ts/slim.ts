/**
 * keystate/slim: the browser API without a default place for the wasm. It
 * never fetches anything by itself; call `initKeystate(source)` with the
 * wasm's bytes, a `WebAssembly.Module`, a `Response` or a URL before creating
 * a store. For setups where the default entry's
 * `new URL('./wasm/keystate_wasm_bg.wasm', import.meta.url)` does not fit:
 * a bundler that does not follow it, a CDN, a Content-Security-Policy, a
 * module compiled once and shared with workers.
 *
 * Imports nothing Node-specific, so browser storage adapters (OPFS,
 * IndexedDB) are exported from here, and through it from the browser entry.
 */
export * from './api.js';
