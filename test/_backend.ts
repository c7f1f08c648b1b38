/**
 * The package under test, loaded through its public entry point for the
 * backend named by TEST_BACKEND (default `node`). Suites import keystate only
 * from here, so the same suites run against every backend:
 * - `wasm`: dist/index.js, the Node entry, with KEYSTATE_BACKEND=wasm (the
 *   wasm read from disk);
 * - `native`: dist/index.js with KEYSTATE_BACKEND=native (the napi addon
 *   built into dist/native/);
 * - `node`: dist/index.js as a user gets it (native where it loads, else wasm);
 * - `browser`: dist/index.browser.js, the browser entry (the wasm fetched from
 *   its URL), in Chromium: scripts/browser-test.mjs bundles each suite with
 *   esbuild and runs it in a page.
 *
 * In a browser there is no `process`; the runner sets `globalThis.TEST_BACKEND`.
 */
// The API every entry point shares (the Node entry adds DirectoryStorage).
import type * as Keystate from '../dist/slim.js';

type Api = typeof Keystate;

const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
export const backendName: string =
  env?.TEST_BACKEND || (globalThis as { TEST_BACKEND?: string }).TEST_BACKEND || 'node';

/** The Node entry, with the backend forced the way a user forces it. */
function nodeEntry(force?: string): () => Promise<Api> {
  return () => {
    if (force !== undefined && env) env.KEYSTATE_BACKEND = force;
    return import('../dist/index.js');
  };
}

const loaders: Record<string, () => Promise<Api>> = {
  node: nodeEntry(),
  wasm: nodeEntry('wasm'),
  native: nodeEntry('native'),
  browser: () => import('../dist/index.browser.js'),
};

const load = loaders[backendName];
if (!load) throw new Error(`unknown TEST_BACKEND "${backendName}"; known: ${Object.keys(loaders).join(', ')}`);
const api: Api = await load();

export const {
  StateStore,
  ValueState,
  ListState,
  MapState,
  ReducingState,
  AggregatingState,
  Snapshot,
  Checkpoint,
  KeystateError,
  InvalidArgumentError,
  KeyGroupOutOfRangeError,
  StateDefinitionError,
  SnapshotReleasedError,
  CheckpointStateError,
  CorruptCheckpointError,
  BrokenChainError,
  StoreClosedError,
  StoreFullError,
  WasmLoadError,
  BackendLoadError,
  StorageError,
  OpfsStorage,
  IndexedDbStorage,
  openBrowserStorage,
  initKeystate,
  compact,
  inspectCheckpoint,
} = api;

// Instance types under the same names as the values above.
export type StateStore = Keystate.StateStore;
export type ValueState<T> = Keystate.ValueState<T>;
export type ListState<T> = Keystate.ListState<T>;
export type MapState<K, V> = Keystate.MapState<K, V>;
export type ReducingState<T> = Keystate.ReducingState<T>;
export type AggregatingState<IN, ACC, OUT> = Keystate.AggregatingState<IN, ACC, OUT>;
export type Snapshot = Keystate.Snapshot;
export type Checkpoint = Keystate.Checkpoint;
export type KeystateError = Keystate.KeystateError;
export type InvalidArgumentError = Keystate.InvalidArgumentError;
export type KeyGroupOutOfRangeError = Keystate.KeyGroupOutOfRangeError;
export type StateDefinitionError = Keystate.StateDefinitionError;
export type SnapshotReleasedError = Keystate.SnapshotReleasedError;
export type CheckpointStateError = Keystate.CheckpointStateError;
export type CorruptCheckpointError = Keystate.CorruptCheckpointError;
export type BrokenChainError = Keystate.BrokenChainError;
export type StoreClosedError = Keystate.StoreClosedError;
export type StoreFullError = Keystate.StoreFullError;
export type WasmLoadError = Keystate.WasmLoadError;
export type BackendLoadError = Keystate.BackendLoadError;
export type StorageError = Keystate.StorageError;
export type OpfsStorage = Keystate.OpfsStorage;
export type IndexedDbStorage = Keystate.IndexedDbStorage;
/**
 * A file under test/ (e.g. `vectors/basic.full-v2.bin`, or `../dist/...`): read
 * from disk in Node, fetched from the test server (which serves test/ at /test/
 * and dist/ at /dist/) in a browser.
 */
export async function readFixture(path: string): Promise<Uint8Array> {
  if (backendName === 'browser') {
    const res = await fetch(new URL(`/test/${path}`, location.href));
    if (!res.ok) throw new Error(`fetching fixture ${path}: ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  const { readFile } = await import('node:fs/promises');
  return new Uint8Array(await readFile(new URL(path, import.meta.url)));
}

export type {
  Key, Codec, KeyGroupRange, StoreOptions, MemoryInfo, WasmSource, BrowserStorage, BrowserStorageOptions, CheckpointStorage, StoredCheckpoint,
} from '../dist/slim.js';
