/**
 * Which backend the API uses. Each entry point installs its environment's
 * loaders (Node: the native addon, then wasm; browsers: wasm) and their
 * order of preference; a loader runs on first use. A store can ask for one
 * by name (`StateStore.create({ backend })`), `KEYSTATE_BACKEND` forces one
 * in Node, `initKeystate(source)` loads wasm from a source the user hands
 * in, and `setBackend` lets a user hand in a backend of their own.
 */
import { BackendLoadError, WasmLoadError } from '../errors.js';
import { instantiateWasm, type WasmSource } from './source.js';
import type { Backend, BackendName } from './types.js';

type Loader = () => Backend | Promise<Backend>;

const NAMES: readonly BackendName[] = ['native', 'wasm'];

let loaders: Partial<Record<BackendName, Loader>> = {};
/** Backends in order of preference when none is asked for. */
let order: BackendName[] = ['wasm'];
/** A backend forced by the environment (KEYSTATE_BACKEND), if any. */
let forced: string | undefined;
const loading = new Map<BackendName, Promise<Backend>>();
/** The backend stores use when none is asked for, once chosen. */
let chosen: Promise<Backend> | undefined;

/**
 * Installs the loaders an entry point provides, in order of preference, and
 * the backend its environment forces (`KEYSTATE_BACKEND`), if any.
 */
export function setLoaders(l: Partial<Record<BackendName, Loader>>, preference: BackendName[], force?: string): void {
  loaders = l;
  order = preference;
  forced = force === '' ? undefined : force;
  loading.clear();
  chosen = undefined;
}

/** Uses `b` for stores created from now on. */
export function setBackend(b: Backend): void {
  loading.set(b.name, Promise.resolve(b));
  chosen = Promise.resolve(b);
}

function unavailable(name: string): BackendLoadError {
  if (!(NAMES as readonly string[]).includes(name)) {
    return new BackendLoadError('BACKEND_UNAVAILABLE', `unknown backend "${name}": keystate's backends are 'native' and 'wasm'`);
  }
  const here = Object.keys(loaders);
  return new BackendLoadError('BACKEND_UNAVAILABLE', `the ${name} backend is not available in this environment (${here.length ? `only ${here.join(', ')}` : 'none is'}): the native one runs in Node only`);
}

/** Loads backend `name` (once; a failed load is tried again next time). */
function load(name: BackendName): Promise<Backend> {
  let p = loading.get(name);
  if (!p) {
    const loader = loaders[name];
    if (!loader) {
      if (name === 'wasm') {
        return Promise.reject(new WasmLoadError('WASM_NOT_LOADED',
          'the keystate WebAssembly core is not loaded: with keystate/slim, call `await initKeystate(wasm)` before creating a store'));
      }
      return Promise.reject(unavailable(name));
    }
    p = Promise.resolve().then(loader);
    loading.set(name, p);
    p.catch(() => loading.delete(name));
  }
  return p;
}

/** The first backend of the preference order that loads; its error if none does. */
async function firstThatLoads(): Promise<Backend> {
  const errors: unknown[] = [];
  for (const name of order) {
    try {
      return await load(name);
    } catch (e) {
      errors.push(e);
    }
  }
  throw errors[errors.length - 1] ?? unavailable('wasm');
}

/**
 * The backend named, or (none named) the one forced by `KEYSTATE_BACKEND`,
 * else the first of the preference order that loads.
 */
export function getBackend(name?: BackendName): Promise<Backend> {
  if (name !== undefined) {
    if (!(NAMES as readonly string[]).includes(name)) return Promise.reject(unavailable(name));
    return load(name);
  }
  if (!chosen) {
    chosen = forced === undefined ? firstThatLoads() : (NAMES as readonly string[]).includes(forced) ? load(forced as BackendName) : Promise.reject(forcedUnknown(forced));
    chosen.catch(() => (chosen = undefined));
  }
  return chosen;
}

function forcedUnknown(v: string): BackendLoadError {
  return new BackendLoadError('BACKEND_UNAVAILABLE', `KEYSTATE_BACKEND is "${v}": it must be 'native' or 'wasm'`);
}

/**
 * Loads the core now rather than on the first `StateStore.create` or
 * `restore`; resolves when it is ready and rejects with a typed error
 * (`WasmLoadError`, `BackendLoadError`) when it cannot be loaded. Without
 * `source`, loads the environment's default backend (in Node the native
 * addon where it loads, else wasm) from where the entry point finds it;
 * keystate/slim has no such place and needs a `source`. With `source` (the
 * wasm's bytes, a `WebAssembly.Module`, a `Response` (or `fetch(url)`), or a
 * URL), loads WebAssembly from it, and stores use wasm from then on unless
 * they ask for another backend. One wasm core serves a whole JavaScript
 * realm (page or worker): once it is loaded or loading, `source` is not used.
 */
export async function initKeystate(source?: WasmSource): Promise<void> {
  if (source !== undefined) {
    // A wasm source is a choice of wasm: stores use it from now on (and a
    // failed load fails them the same way), whatever the environment prefers.
    if (!loading.has('wasm')) loaders = { ...loaders, wasm: () => instantiateWasm(source) };
    order = ['wasm'];
    forced = undefined;
    chosen = undefined;
  }
  await getBackend();
}
