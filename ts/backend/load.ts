/**
 * Which backend the API uses. Each entry point (Node, browser) installs its
 * environment's loader, which runs on first use; `initKeystate` loads now,
 * from the default place or from a source the user hands in; `setBackend`
 * lets a user hand in a backend.
 */
import { WasmLoadError } from '../errors.js';
import { instantiateWasm, type WasmSource } from './source.js';
import type { Backend } from './types.js';

type Loader = () => Backend | Promise<Backend>;

let loader: Loader | undefined;
let current: Promise<Backend> | undefined;

/** Installs the loader an entry point provides. */
export function setLoader(l: Loader): void {
  loader = l;
  current = undefined;
}

/** Uses `b` for stores created from now on. */
export function setBackend(b: Backend): void {
  current = Promise.resolve(b);
}

export function getBackend(): Promise<Backend> {
  if (!current) {
    if (!loader) {
      return Promise.reject(new WasmLoadError('WASM_NOT_LOADED',
        'the keystate WebAssembly core is not loaded: with keystate/slim, call `await initKeystate(wasm)` before creating a store'));
    }
    current = Promise.resolve().then(loader);
    current.catch(() => (current = undefined));
  }
  return current;
}

/**
 * Loads the WebAssembly core now rather than on the first `StateStore.create`
 * or `restore`; resolves when it is ready and rejects with a `WasmLoadError`
 * when it cannot be loaded. Without `source`, loads it from where the entry
 * point finds it (next to the package's code); keystate/slim has no such
 * place and needs a `source`: the wasm's bytes, a `WebAssembly.Module`, a
 * `Response` (or `fetch(url)`), or a URL. One core serves a whole JavaScript
 * realm (page or worker): once it is loaded or loading, `source` is not used.
 */
export async function initKeystate(source?: WasmSource): Promise<void> {
  if (source !== undefined && !current) setLoader(() => instantiateWasm(source));
  await getBackend();
}
