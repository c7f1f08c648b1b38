/**
 * The native backend (Node only): the napi-rs addon of crates/keystate-node.
 * Its stores hand the API buffers of their own (V8 `ArrayBuffer`s the addon
 * keeps), and it exports checkpoints and parses restores on worker threads.
 *
 * The addon is looked for where a build of this checkout puts it
 * (dist/native/, beside this file's folder: never in the published
 * package), then in the platform package npm installs as an optional
 * dependency (`keystate-<platform>`, made by `napi create-npm-dirs`).
 */
import { createRequire } from 'node:module';
import { BackendLoadError } from '../errors.js';
import type { Backend, CoreInspector, CoreRestorer, CoreStore } from './types.js';

/** What the addon exports (see crates/keystate-node/src). */
interface Addon {
  NativeStore: new (mp: number, start: number, end: number, id: Uint8Array) => AddonStore;
  NativeRestorer: new (start: number, end: number, id: Uint8Array) => CoreRestorer;
  NativeInspector: new (listRecords: boolean) => CoreInspector;
  memoryBytes(): number;
  version(): string;
}

/** The addon's store: the non-hot calls of `CoreStore`, its buffers, and its hot functions. */
type AddonStore = Omit<CoreStore, HotName> & {
  argBuffer(): ArrayBuffer;
  resultBuffer(): ArrayBuffer;
  hotFunctions(): Record<HotName, () => void>;
};

type HotName = 'ping' | 'setTime' | 'setCurrentKey' | 'keyGroup' | 'get' | 'put' | 'append' | 'remove' | 'writeMany' | 'readMany' | 'mapGet' | 'mapPut' | 'mapRemove' | 'mapLen' | 'mapList' | 'stateList';

/**
 * A `CoreStore` over the addon's store. Hot calls are plain N-API functions
 * without arguments (crates/keystate-node/src/hot.rs): their arguments go
 * into the call header at the start of the argument buffer (u32 state, key,
 * namespace, user-key and value lengths; f64 snapshot at byte 24), their
 * status comes back in result slot 2. That costs a typed-array write per
 * argument instead of an N-API conversion.
 */
class NativeCore {
  private readonly s: AddonStore;
  private readonly hot: Record<HotName, () => void>;
  private h32!: Uint32Array;
  private h64!: Float64Array;
  private r32!: Int32Array;

  constructor(s: AddonStore) {
    this.s = s;
    this.hot = s.hotFunctions();
    this.views();
  }

  private views(): void {
    const a = this.s.argBuffer();
    this.h32 = new Uint32Array(a, 0, 5);
    this.h64 = new Float64Array(a, 24, 1);
    this.r32 = new Int32Array(this.s.resultBuffer(), 0, 4);
  }

  /** Fills the call header (views refreshed if a buffer was replaced). */
  private header(state: number, kl: number, nl: number, ul: number, vl: number, snapshot: number): void {
    if (this.h32.length === 0) this.views();
    const h = this.h32;
    h[0] = state;
    h[1] = kl;
    h[2] = nl;
    h[3] = ul;
    h[4] = vl;
    this.h64[0] = snapshot;
  }

  /** The status the last hot call left. */
  private status(): number {
    if (this.r32.length === 0) this.views();
    return this.r32[2];
  }

  ping(): number {
    this.hot.ping();
    return this.status();
  }
  setTime(now: number): number {
    // The time travels in the header's f64 (the snapshot's place).
    this.header(0, 0, 0, 0, 0, now);
    this.hot.setTime();
    return this.status();
  }
  setCurrentKey(kl: number): number {
    this.header(0, kl, 0, 0, 0, 0);
    this.hot.setCurrentKey();
    return this.status();
  }
  keyGroup(kl: number): number {
    this.header(0, kl, 0, 0, 0, 0);
    this.hot.keyGroup();
    return this.status();
  }
  get(state: number, kl: number, nl: number, snapshot: number): number {
    this.header(state, kl, nl, 0, 0, snapshot);
    this.hot.get();
    return this.status();
  }
  put(state: number, kl: number, nl: number, vl: number): number {
    this.header(state, kl, nl, 0, vl, 0);
    this.hot.put();
    return this.status();
  }
  append(state: number, kl: number, nl: number, vl: number): number {
    this.header(state, kl, nl, 0, vl, 0);
    this.hot.append();
    return this.status();
  }
  remove(state: number, kl: number, nl: number): number {
    this.header(state, kl, nl, 0, 0, 0);
    this.hot.remove();
    return this.status();
  }
  writeMany(state: number, nl: number, len: number): number {
    this.header(state, 0, nl, 0, len, 0);
    this.hot.writeMany();
    return this.status();
  }
  readMany(state: number, nl: number, len: number, snapshot: number): number {
    this.header(state, 0, nl, 0, len, snapshot);
    this.hot.readMany();
    return this.status();
  }
  mapGet(state: number, kl: number, nl: number, ul: number, snapshot: number): number {
    this.header(state, kl, nl, ul, 0, snapshot);
    this.hot.mapGet();
    return this.status();
  }
  mapPut(state: number, kl: number, nl: number, ul: number, vl: number): number {
    this.header(state, kl, nl, ul, vl, 0);
    this.hot.mapPut();
    return this.status();
  }
  mapRemove(state: number, kl: number, nl: number, ul: number): number {
    this.header(state, kl, nl, ul, 0, 0);
    this.hot.mapRemove();
    return this.status();
  }
  mapLen(state: number, kl: number, nl: number, snapshot: number): number {
    this.header(state, kl, nl, 0, 0, snapshot);
    this.hot.mapLen();
    return this.status();
  }
  mapList(state: number, kl: number, nl: number, snapshot: number): number {
    this.header(state, kl, nl, 0, 0, snapshot);
    this.hot.mapList();
    return this.status();
  }
  stateList(state: number, snapshot: number): number {
    this.header(state, 0, 0, 0, 0, snapshot);
    this.hot.stateList();
    return this.status();
  }

  // The rest, as they are.
  free(): void {
    this.s.free();
  }
  scratch(len: number): number {
    const at = this.s.scratch(len);
    this.views();
    return at;
  }
  scratchLen(): number {
    return this.s.scratchLen();
  }
  scratchTrim(len: number): number {
    const at = this.s.scratchTrim(len);
    this.views();
    return at;
  }
  resultPtr(): number {
    return this.s.resultPtr();
  }
  argBuffer(): ArrayBuffer {
    return this.s.argBuffer();
  }
  resultBuffer(): ArrayBuffer {
    return this.s.resultBuffer();
  }
}

/** The non-hot calls forward to the addon's store unchanged. */
const FORWARDED = ['lastError', 'setMaxMemory', 'registerState', 'states', 'maxParallelism', 'keyGroupStart', 'keyGroupEnd', 'snapshot', 'release', 'memory',
  'entries', 'checkpoint', 'setCheckpointPolicy', 'deltaMembers', 'checkpointNext', 'exportJob', 'checkpointProgress', 'checkpointConfirm',
  'checkpointAbort', 'lastConfirmed', 'expire'] as const;
for (const name of FORWARDED) {
  Object.defineProperty(NativeCore.prototype, name, {
    writable: true,
    configurable: true,
    value(this: { s: Record<string, (...a: unknown[]) => unknown> }, ...args: unknown[]) {
      return this.s[name](...args);
    },
  });
}

/** napi-rs's name for this platform (`linux-x64-gnu`, `darwin-arm64`, ...), or null. */
export function platformTriple(): string | null {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    const libc = report?.header?.glibcVersionRuntime ? 'gnu' : 'musl';
    return arch === 'x64' || arch === 'arm64' ? `linux-${arch}-${libc}` : null;
  }
  if (platform === 'darwin') return arch === 'x64' || arch === 'arm64' ? `darwin-${arch}` : null;
  if (platform === 'win32') return arch === 'x64' || arch === 'arm64' ? `win32-${arch}-msvc` : null;
  return null;
}

function nativeBackend(addon: Addon): Backend {
  const core = (s: CoreStore) => s as unknown as NativeCore;
  return {
    name: 'native',
    newStore: (mp, start, end, id) => new NativeCore(new addon.NativeStore(mp, start, end, id)) as unknown as CoreStore,
    newRestorer: (start, end, id) => {
      const r = new addon.NativeRestorer(start, end, id);
      // A restored store comes back as the addon's: wrap it like a new one.
      const finish = r.finish.bind(r) as unknown as () => AddonStore;
      return Object.assign(r, { finish: () => new NativeCore(finish()) as unknown as CoreStore });
    },
    newInspector: (list) => new addon.NativeInspector(list),
    argBuffer: (s) => core(s).argBuffer(),
    resultBuffer: (s) => core(s).resultBuffer(),
    memoryBytes: () => addon.memoryBytes(),
  };
}

let backend: Backend | undefined;

/** Loads the addon, or throws a BackendLoadError naming every place tried. */
export function loadNative(): Backend {
  if (backend) return backend;
  const triple = platformTriple();
  if (triple === null) {
    throw new BackendLoadError('BACKEND_UNAVAILABLE', `the native backend has no build for ${process.platform}-${process.arch}: use the wasm backend`);
  }
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const where of [`../native/keystate.${triple}.node`, `keystate-${triple}`]) {
    try {
      backend = nativeBackend(require(where) as Addon);
      return backend;
    } catch (e) {
      tried.push(`${where} (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
    }
  }
  throw new BackendLoadError('BACKEND_UNAVAILABLE', `the native backend could not be loaded; tried ${tried.join('; ')}. Install the optional dependency keystate-${triple}, build it (node build.mjs native), or use the wasm backend`);
}
