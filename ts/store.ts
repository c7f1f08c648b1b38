/**
 * StateStore: the entry point. Owns one core store, declares states, keeps
 * the keyed context, takes snapshots and checkpoints, restores.
 */
import { getBackend } from './backend/load.js';
import type { Backend, BackendName, CoreStore } from './backend/types.js';
import { Bridge } from './bridge.js';
import { Checkpoint } from './checkpoint.js';
import {
  checkpointTo,
  enableCheckpointing,
  restoreFrom,
  type CheckpointingController,
  type CheckpointingOptions,
  type CheckpointToOptions,
  type RestoreFromOptions,
} from './checkpointing.js';
import { builtinCodec, resolveCodec, writeKey, type Codec, type CodecName, type FastCodec, type Key } from './codecs.js';
import { checkU32, core, InvalidArgumentError, maxMemory, StateDefinitionError, StoreClosedError } from './errors.js';
import { restoreInto, type RestoreOptions, type CheckpointSource } from './restore.js';
import { Snapshot } from './snapshot.js';
import { everyRecord, ttlArgs, type Clock, type StateTtlConfig } from './ttl.js';
import type { CheckpointStorage, StoredCheckpoint } from './storage/types.js';
import {
  AggregatingState,
  ListState,
  MapState,
  ReducingState,
  ValueState,
  type AggregateFunction,
  type StoreContext,
} from './states.js';

/** Inclusive range of key groups, as Flink's `KeyGroupRange`. */
export interface KeyGroupRange {
  start: number;
  end: number;
}

export interface StoreOptions {
  /** Number of key groups (Flink's max parallelism); default 128. Fixed for the store's lineage. */
  maxParallelism?: number;
  /** Key groups this store owns; default all. Keys of other groups are refused. */
  keyGroupRange?: KeyGroupRange;
  /** Lineage id written into checkpoints (16 bytes); random by default. For reproducible output. */
  storeId?: Uint8Array;
  /** Checkpoint policy: incremental checkpoints and when to materialize a full one. */
  checkpoints?: CheckpointPolicy;
  /**
   * A memory budget for this store, in bytes: a write that would take it
   * past this (counted as `memory().totalBytes` counts: records, indexes,
   * what snapshots and checkpoints pin, the delta log) throws a
   * `StoreFullError` (`STORE_FULL`) and changes nothing. Reads, deletes
   * (which are not held to the budget), snapshots and checkpoints go on
   * working, and deleting makes room again. Default: no budget (a write
   * still throws `STORE_FULL` when the backend's memory cannot grow).
   */
  maxMemoryBytes?: number;
  /**
   * The backend to run on: `'native'` (the Node addon) or `'wasm'`. Default:
   * in Node the native addon where it loads, else wasm (`KEYSTATE_BACKEND`
   * forces one); in browsers wasm. A backend asked for that cannot load
   * rejects with a `BackendLoadError` naming what was tried.
   */
  backend?: BackendName;
  /**
   * The store's clock for states with a time to live: milliseconds, an
   * integer >= 0 (a fraction is dropped). Default `Date.now`. Inject one to
   * control time in tests and replays; it is read before each operation on
   * a state with TTL, and by `snapshot()`, `checkpoint()` and `expire()`.
   */
  clock?: Clock;
}

/**
 * Checkpoint policy. With `incremental`, the store tracks changed entries
 * (a delta log of distinct changed keys) and `checkpoint()` writes only what
 * changed since the last confirmed checkpoint. A full checkpoint is taken
 * instead after `maxIncrementals` incremental ones, or once the chain's
 * incremental bytes pass `maxChainRatio` times its full checkpoint's bytes,
 * which keeps restore time bounded (Flink's materialization).
 */
export interface CheckpointPolicy {
  incremental?: boolean;
  /** Default 100; 0 for no limit. */
  maxIncrementals?: number;
  /** Default 1.0; 0 for no limit. */
  maxChainRatio?: number;
}

/** The last confirmed checkpoint of a store's chain. */
export interface ConfirmedCheckpoint {
  id: number;
  /** Incremental checkpoints since the chain's full checkpoint. */
  chainLength: number;
  chainBytes: number;
  fullBytes: number;
}

export interface CheckpointOptions {
  /** Incremental (when a confirmed base exists and the policy allows), or full; default: the policy's. */
  incremental?: boolean;
}

/** A codec option: a built-in codec's name or a user codec. */
export type CodecOption<T> = CodecName | Codec<T>;

/** Options every state kind takes. */
export interface StateOptions {
  /**
   * A time to live for the state's values (Flink's `StateTtlConfig`): each
   * value, list element or map entry expires `ttlMs` after it was last
   * written (or read, with `update: 'onReadAndWrite'`). See `StateTtlConfig`.
   */
  ttl?: StateTtlConfig;
}

export interface ValueStateOptions<T> extends StateOptions {
  default?: T;
  codec?: CodecOption<T>;
}

export interface ListStateOptions<T> extends StateOptions {
  codec?: CodecOption<T>;
}

export interface MapStateOptions<K, V> extends StateOptions {
  /** Codec of the map's keys; default: typed keys like the store's own. */
  keyCodec?: CodecOption<K>;
  valueCodec?: CodecOption<V>;
}

export interface ReducingStateOptions<T> extends StateOptions {
  reduce: (a: T, b: T) => T;
  codec?: CodecOption<T>;
}

export interface AggregatingStateOptions<IN, ACC, OUT> extends AggregateFunction<IN, ACC, OUT>, StateOptions {
  /** Codec of the accumulator. */
  codec?: CodecOption<ACC>;
}

/** Where a store's memory goes (bytes). */
export interface MemoryInfo {
  /** Live entries' records and the indexes over them. */
  liveBytes: number;
  /** Held only for open snapshots: copies of what was written while they are open. */
  pinnedBytes: number;
  /** Delta tracking for incremental checkpoints. */
  deltaLogBytes: number;
  /** Arena space free for reuse (WebAssembly memory never shrinks, so it is reused), slots a large table has claimed for its next records included. */
  freeBytes: number;
  /** Everything the core's record arena holds. */
  arenaBytes: number;
  /**
   * What the `maxMemoryBytes` budget counts: the arena (live, pinned and
   * free records), every index (live, undo layers for snapshots, copies
   * kept for running checkpoints) and the delta log.
   */
  totalBytes: number;
  /** Which backend runs the store. */
  backend: BackendName;
  /**
   * Bytes the backend holds from the system for all its stores: the
   * WebAssembly memory (it never shrinks), or the native addon's heap.
   */
  backendBytes: number;
  /** The WebAssembly memory's size (all stores of the instance share it); 0 on the native backend. */
  wasmMemoryBytes: number;
  entries: number;
  openSnapshots: number;
  /**
   * Of `liveBytes`, the timestamps of states with a time to live: 6 bytes
   * per value, list element or map entry.
   */
  ttlBytes: number;
  states: { name: string; entries: number; liveBytes: number; ttlBytes: number }[];
}

const enum Kind {
  Value = 0,
  List = 1,
  Map = 2,
  Reducing = 3,
  Aggregating = 4,
}

/** A declared state's codecs, for snapshot reads. */
export interface Declared {
  id: number;
  kind: Kind;
  codec: FastCodec<unknown>;
  keyCodec?: FastCodec<unknown>;
  /** For value state: the default, as in the live handle. */
  defaultValue?: unknown;
  /** For aggregating state: the function's getResult. */
  result?: (acc: unknown) => unknown;
}

function randomId(): Uint8Array {
  const id = new Uint8Array(16);
  globalThis.crypto.getRandomValues(id);
  return id;
}

export class StateStore implements StoreContext {
  /** @internal */
  readonly impl: Backend;
  private inner: CoreStore | null;
  private readonly b: Bridge;
  private readonly declared = new Map<string, Declared>();
  private current: Key | undefined;
  private readonly clock: Clock;
  /** The time last handed to the core (NaN: none yet). */
  private now = NaN;
  /** Some state has cleanup on every record: `setCurrentKey` hands the core the time. */
  private everyRecord = false;

  /** @internal Use `StateStore.create` or `StateStore.restore`. */
  constructor(backend: Backend, inner: CoreStore, clock?: Clock) {
    if (clock !== undefined && typeof clock !== 'function') throw new InvalidArgumentError('INVALID_ARGUMENT', 'clock must be a function returning ms');
    this.impl = backend;
    this.inner = inner;
    this.b = new Bridge(inner, backend);
    this.clock = clock ?? Date.now;
    // A restored state with cleanup on every record counts before it is declared.
    this.everyRecord = inner.states().some((st) => everyRecord(st.ttlFlags));
  }

  /** A new, empty store. */
  static async create(opts: StoreOptions = {}): Promise<StateStore> {
    const backend = await getBackend(opts.backend);
    const mp = opts.maxParallelism ?? 128;
    const range = opts.keyGroupRange ?? { start: 0, end: mp - 1 };
    // The binding truncates numbers to u32 (1.5 -> 1, 2**32 + 1 -> 1): check them here.
    checkU32(mp, 'maxParallelism');
    checkU32(range.start, 'keyGroupRange.start');
    checkU32(range.end, 'keyGroupRange.end');
    const budget = maxMemory(opts.maxMemoryBytes);
    const inner = core(() => backend.newStore(mp, range.start, range.end, opts.storeId ?? randomId()));
    if (budget !== undefined) {
      try {
        core(() => inner.setMaxMemory(budget));
      } catch (e) {
        inner.free();
        throw e;
      }
    }
    let store: StateStore;
    try {
      store = new StateStore(backend, inner, opts.clock);
    } catch (e) {
      inner.free();
      throw e;
    }
    if (opts.checkpoints) store.setCheckpointPolicy(opts.checkpoints);
    return store;
  }

  /**
   * Restores a store from a chain of checkpoints `[full, delta1, ...]`, or
   * from several chains (`[[...], [...]]`, one per source store) when
   * rescaling. Every byte is verified before the store is returned; on any
   * error nothing is returned and nothing is kept.
   */
  static async restore(pieces: CheckpointSource[] | CheckpointSource[][], opts: RestoreOptions = {}): Promise<StateStore> {
    const backend = await getBackend(opts.backend);
    if (opts.clock !== undefined && typeof opts.clock !== 'function') throw new InvalidArgumentError('INVALID_ARGUMENT', 'clock must be a function returning ms');
    const inner = await restoreInto(backend, pieces, opts, randomId());
    const store = new StateStore(backend, inner, opts.clock);
    if (opts.checkpoints) store.setCheckpointPolicy(opts.checkpoints);
    return store;
  }

  /** @internal True once `close()` was called. */
  get closed(): boolean {
    return this.inner === null;
  }

  /** @internal */
  bridge(): Bridge {
    if (this.inner === null) throw new StoreClosedError('STORE_CLOSED', 'the store is closed');
    return this.b;
  }

  /**
   * @internal Hands the core the clock's time, for states with TTL (before
   * each of their operations, snapshots, checkpoints and `expire()`).
   */
  tick(): void {
    const t = this.clock();
    if (t === this.now) return;
    const b = this.bridge();
    b.check(b.core.setTime(t));
    this.now = t;
  }

  /**
   * Removes every expired value of every state with a time to live (a
   * pass over all their entries, whatever their cleanup settings): for a
   * store that is idle. Returns how many values went (entries of value,
   * reducing and aggregating states, list elements, map entries). The
   * removals travel in the next incremental checkpoint as deletes; open
   * snapshots keep what they saw.
   */
  expire(): number {
    const c = this.coreStore;
    this.tick();
    return core(() => c.expire());
  }

  /** @internal */
  get coreStore(): CoreStore {
    this.bridge();
    return this.inner as CoreStore;
  }

  /** Which backend runs this store: `'wasm'` (WebAssembly) or `'native'` (the Node addon). */
  get backend(): BackendName {
    return this.impl.name;
  }

  get maxParallelism(): number {
    return this.coreStore.maxParallelism();
  }

  get keyGroupRange(): KeyGroupRange {
    const c = this.coreStore;
    return { start: c.keyGroupStart(), end: c.keyGroupEnd() };
  }

  /** The key group of `key` (murmur3 of its encoded bytes modulo max parallelism). */
  keyGroupOf(key: Key): number {
    const b = this.bridge();
    return b.core.keyGroup(writeKey(key, b, 0));
  }

  // ---- keyed context ----------------------------------------------------------

  /** Sets the key that state handles read and write (Flink's keyed context). */
  setCurrentKey(key: Key): void {
    const b = this.bridge();
    if (this.everyRecord) this.tick();
    const kl = writeKey(key, b, 0);
    b.check(b.core.setCurrentKey(kl));
    this.current = key;
  }

  /** The current key, if one was set. */
  getCurrentKey(): Key | undefined {
    return this.current;
  }

  // ---- states -------------------------------------------------------------------

  private declare(name: string, kind: Kind, ttl: StateTtlConfig | undefined, codec: FastCodec<unknown>, keyCodec?: FastCodec<unknown>, defaultValue?: unknown): number {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('INVALID_ARGUMENT', 'a state needs a name');
    // Refused before it crosses (the core takes 1 to 1024 bytes): crossing copies it.
    if (name.length > 1024) throw new InvalidArgumentError('INVALID_ARGUMENT', 'state names are 1 to 1024 bytes');
    const [ttlMs, flags, size] = ttlArgs(name, ttl);
    const c = this.coreStore;
    const id = core(() => c.registerState(name, kind, codec.id, keyCodec?.id ?? '', ttlMs, flags, size));
    this.declared.set(name, { id, kind, codec, keyCodec, defaultValue });
    if (everyRecord(flags)) this.everyRecord = true;
    return id;
  }

  /** Where a new handle points: the current key, no namespace. */
  private static addr(ttl: StateTtlConfig | undefined) {
    return { key: null, ns: null, ttl: ttl !== undefined && ttl !== null };
  }

  /**
   * @internal A state's codecs for snapshot reads: as declared, or, for a
   * state restored from a checkpoint and not declared yet, its built-in codecs.
   */
  declaredState(name: string, kind: Kind): Declared {
    const d = this.declared.get(name) ?? this.restoredState(name);
    if (!d) throw new StateDefinitionError('UNKNOWN_STATE', `state '${name}' is not declared in this store`);
    // Value views read reducing and aggregating states too; reducing views read aggregating ones.
    const readsAs = (d.kind === Kind.Reducing || d.kind === Kind.Aggregating) && (kind === Kind.Value || kind === Kind.Reducing);
    if (d.kind !== kind && !readsAs) {
      throw new StateDefinitionError('WRONG_STATE_KIND', `state '${name}' is not of the kind asked for`);
    }
    return d;
  }

  private restoredState(name: string): Declared | undefined {
    const states = this.coreStore.states();
    const id = states.findIndex((st) => st.name === name);
    if (id < 0) return undefined;
    const codec = builtinCodec(states[id].valueCodec);
    const keyCodec = states[id].userKeyCodec ? builtinCodec(states[id].userKeyCodec) : undefined;
    if (!codec || (states[id].userKeyCodec && !keyCodec)) {
      throw new StateDefinitionError('UNKNOWN_STATE', `state '${name}' uses codec '${states[id].valueCodec}': declare it with that codec first`);
    }
    return { id, kind: states[id].kind as Kind, codec, keyCodec };
  }

  /** Declares (or gets) a ValueState. The codec is given, or inferred from `default`. */
  valueState<T>(name: string, opts: ValueStateOptions<T> = {}): ValueState<T> {
    const codec = resolveCodec<T>(opts.codec, opts.default);
    const id = this.declare(name, Kind.Value, opts.ttl, codec as FastCodec<unknown>, undefined, opts.default);
    let defaultBytes: Uint8Array | null = null;
    if (opts.default !== undefined && opts.default !== null && typeof opts.default === 'object') {
      const b = this.bridge();
      defaultBytes = b.scratchCopy(0, codec.write(opts.default, b, 0));
    }
    return new ValueState<T>(this, name, id, StateStore.addr(opts.ttl), codec, opts.default, defaultBytes);
  }

  listState<T>(name: string, opts: ListStateOptions<T> = {}): ListState<T> {
    const codec = resolveCodec<T>(opts.codec);
    const id = this.declare(name, Kind.List, opts.ttl, codec as FastCodec<unknown>);
    return new ListState<T>(this, name, id, StateStore.addr(opts.ttl), codec);
  }

  mapState<K = Key, V = unknown>(name: string, opts: MapStateOptions<K, V> = {}): MapState<K, V> {
    const kc = resolveCodec<K>(opts.keyCodec ?? 'key');
    const vc = resolveCodec<V>(opts.valueCodec);
    const id = this.declare(name, Kind.Map, opts.ttl, vc as FastCodec<unknown>, kc as FastCodec<unknown>);
    return new MapState<K, V>(this, name, id, StateStore.addr(opts.ttl), kc, vc);
  }

  reducingState<T>(name: string, opts: ReducingStateOptions<T>): ReducingState<T> {
    const codec = resolveCodec<T>(opts?.codec);
    const id = this.declare(name, Kind.Reducing, opts?.ttl, codec as FastCodec<unknown>);
    return new ReducingState<T>(this, name, id, StateStore.addr(opts?.ttl), codec, opts?.reduce);
  }

  aggregatingState<IN, ACC, OUT>(name: string, opts: AggregatingStateOptions<IN, ACC, OUT>): AggregatingState<IN, ACC, OUT> {
    const codec = resolveCodec<ACC>(opts?.codec);
    const id = this.declare(name, Kind.Aggregating, opts?.ttl, codec as FastCodec<unknown>);
    const d = this.declared.get(name) as Declared;
    d.result = typeof opts?.getResult === 'function' ? (acc) => opts.getResult(acc as ACC) : undefined;
    return new AggregatingState<IN, ACC, OUT>(this, name, id, StateStore.addr(opts?.ttl), codec, opts);
  }

  /** Names of the states this store holds (declared, or restored from a checkpoint). */
  stateNames(): string[] {
    return this.coreStore.states().map((s) => s.name);
  }

  // ---- snapshots, checkpoints, memory ---------------------------------------------

  /** A point-in-time view, taken in O(1); writers never wait for it. Release it when done. */
  snapshot(): Snapshot {
    const c = this.coreStore;
    // A snapshot reads states with TTL at the time it was taken.
    this.tick();
    return new Snapshot(this, core(() => c.snapshot()));
  }

  /**
   * Starts a checkpoint of this moment (O(1)). Read its `stream()`, store
   * the bytes durably, then `confirm()` it (or `abort()`).
   */
  checkpoint(opts: CheckpointOptions = {}): Checkpoint {
    const c = this.coreStore;
    const mode = opts.incremental === undefined ? -1 : opts.incremental ? 1 : 0;
    // A full checkpoint leaves out what expired by now (full-snapshot cleanup).
    this.tick();
    const info = core(() => c.checkpoint(mode));
    return new Checkpoint(this, info);
  }

  /** Sets the checkpoint policy; see `CheckpointPolicy`. */
  setCheckpointPolicy(p: CheckpointPolicy): void {
    const c = this.coreStore;
    const n = (v: number | undefined, d: number, what: string) => {
      if (v === undefined) return d;
      if (typeof v !== 'number' || !(v >= 0)) throw new InvalidArgumentError('INVALID_ARGUMENT', `${what} must be a number >= 0`);
      return v;
    };
    const maxIncrementals = n(p.maxIncrementals, 100, 'maxIncrementals');
    const maxChainRatio = n(p.maxChainRatio, 1, 'maxChainRatio');
    core(() => c.setCheckpointPolicy(p.incremental ?? false, maxIncrementals, maxChainRatio));
  }

  /** The last confirmed checkpoint, or null. */
  lastConfirmedCheckpoint(): ConfirmedCheckpoint | null {
    return this.coreStore.lastConfirmed();
  }

  // ---- durable storage (ts/checkpointing.ts) -------------------------------------------

  /**
   * Takes a checkpoint and stores it durably in `storage`, then confirms it;
   * on any failure the checkpoint is aborted (the next one carries
   * everything since the last confirmed). Resolves to what was stored.
   */
  checkpointTo(storage: CheckpointStorage, opts?: CheckpointToOptions): Promise<StoredCheckpoint> {
    return checkpointTo(this, storage, opts);
  }

  /**
   * Restores the latest stored chain (strictly: if it cannot be restored,
   * this throws, unless `fallback` allows older chains). The store continues
   * the chain: its next incremental checkpoints extend it.
   */
  static restoreFrom(storage: CheckpointStorage, opts?: RestoreFromOptions): Promise<StateStore> {
    return restoreFrom((pieces, o) => StateStore.restore(pieces, o), storage, opts);
  }

  /** Checkpoints to `opts.storage` every `opts.intervalMs`, one at a time, until `stop()`. */
  enableCheckpointing(opts: CheckpointingOptions): CheckpointingController {
    return enableCheckpointing(this, opts);
  }

  memory(): MemoryInfo {
    const m = this.coreStore.memory();
    const bytes = this.impl.memoryBytes();
    return { ...m, backend: this.impl.name, backendBytes: bytes, wasmMemoryBytes: this.impl.name === 'wasm' ? bytes : 0 };
  }

  /** Frees the store's memory for reuse. Handles and snapshots of it stop working. */
  close(): void {
    if (this.inner !== null) {
      this.inner.free();
      this.inner = null;
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
