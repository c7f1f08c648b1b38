/**
 * Restore: feeds checkpoint bytes, from arrays or streams, into the core's
 * restorer, which verifies every part before it builds anything visible.
 * The native backend parses and verifies on a worker thread; on wasm, bytes
 * are fed a slice at a time, yielding to the event loop every few
 * milliseconds, so a large restore never stalls it.
 */
import type { Backend, BackendName, CoreError, CoreRestorer, CoreStore } from './backend/types.js';
import type { Progress } from './checkpoint.js';
import { checkU32, core, fromCore, InvalidArgumentError, maxMemory } from './errors.js';
import type { CheckpointPolicy, KeyGroupRange } from './store.js';
import { getBackend } from './backend/load.js';
import { Slicer } from './yield.js';

/** Bytes of one checkpoint: whole, or as a stream or (async) iterable of chunks. */
export type CheckpointSource =
  | Uint8Array
  | ArrayBuffer
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>
  | Iterable<Uint8Array>;

export interface RestoreOptions {
  /** Key groups to keep (a subset when scaling out; required with several chains). */
  keyGroupRange?: KeyGroupRange;
  /** Lineage id if the restored store starts a new lineage (a subset or a merge). */
  storeId?: Uint8Array;
  /**
   * Called as bytes are verified and applied: which piece (1-based) of how
   * many, and in it the bytes taken in, key groups passed and records applied.
   */
  onProgress?: (p: RestoreProgress) => void;
  /**
   * A memory budget for the restored store, in bytes (see
   * `StoreOptions.maxMemoryBytes`), in force while it is restored: a chain
   * that does not fit is refused with a `StoreFullError`, and nothing is kept.
   */
  maxMemoryBytes?: number;
  /** Checkpoint policy of the restored store (see `StoreOptions.checkpoints`). */
  checkpoints?: CheckpointPolicy;
  /** The backend to restore into (default: the environment's; see `StoreOptions.backend`). */
  backend?: BackendName;
  /** The restored store's clock (see `StoreOptions.clock`); default `Date.now`. */
  clock?: () => number;
}

/** Progress of a restore, within its current piece. */
export interface RestoreProgress extends Progress {
  piece: number;
  pieces: number;
}

/** Bytes fed to the core at a time: on wasm, the unit of work between yields. */
const FEED_SLICE = 256 * 1024;
/** On the native backend, each feed is a trip to a worker thread: larger. */
const NATIVE_FEED_SLICE = 4 * 1024 * 1024;

/** @internal The chunks of a checkpoint source, whatever its form. */
export async function* chunks(src: CheckpointSource): AsyncIterable<Uint8Array> {
  if (src instanceof Uint8Array) {
    yield src;
  } else if (src instanceof ArrayBuffer) {
    yield new Uint8Array(src);
  } else if (typeof ReadableStream !== 'undefined' && src instanceof ReadableStream) {
    const reader = src.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  } else if (typeof src === 'object' && src !== null && (Symbol.asyncIterator in src || Symbol.iterator in src)) {
    yield* src as AsyncIterable<Uint8Array>;
  } else {
    throw new InvalidArgumentError('INVALID_ARGUMENT', `cannot read checkpoint bytes from ${typeof src}`);
  }
}

function isChains(p: CheckpointSource[] | CheckpointSource[][]): p is CheckpointSource[][] {
  return p.length > 0 && Array.isArray(p[0]);
}

/** @internal Restores into a new core store. */
export async function restoreInto(
  backend: Backend,
  pieces: CheckpointSource[] | CheckpointSource[][],
  opts: RestoreOptions,
  newId: Uint8Array,
): Promise<CoreStore> {
  const r = await feedAll(backend, pieces, opts, newId);
  try {
    return r.finish();
  } catch (e) {
    r.free();
    throw fromCore(e);
  }
}

/**
 * Merges a chain `[full, delta1, ...]` into one full checkpoint that stands
 * in for it, without a live store: later incremental checkpoints of the same
 * chain apply on top of the result. Keeps restore time bounded when a store
 * checkpoints incrementally for a long time.
 */
export async function compact(pieces: CheckpointSource[], opts: Pick<RestoreOptions, 'onProgress' | 'backend'> = {}): Promise<Uint8Array> {
  const backend = await getBackend(opts.backend);
  const r = await feedAll(backend, pieces, opts, new Uint8Array(16));
  try {
    const out = await r.finishCompacted();
    if (!(out instanceof Uint8Array)) throw fromCore(out);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    throw fromCore(e);
  } finally {
    r.free();
  }
}

/** Feeds one chunk: on wasm here (throws), natively on a worker thread (resolves to the error). */
async function feed(r: CoreRestorer, bytes: Uint8Array): Promise<void> {
  const pending = r.feed(bytes);
  if (pending) {
    const e: CoreError | null = await pending;
    if (e) throw fromCore(e);
  }
}

async function feedAll(
  backend: Backend,
  pieces: CheckpointSource[] | CheckpointSource[][],
  opts: RestoreOptions,
  newId: Uint8Array,
): Promise<CoreRestorer> {
  if (!Array.isArray(pieces) || pieces.length === 0) {
    throw new InvalidArgumentError('INVALID_ARGUMENT', 'restore needs at least one checkpoint');
  }
  const chains = isChains(pieces) ? pieces : [pieces];
  const range = opts.keyGroupRange;
  if (range) {
    checkU32(range.start, 'keyGroupRange.start');
    checkU32(range.end, 'keyGroupRange.end');
  }
  const budget = maxMemory(opts.maxMemoryBytes);
  const r = core(() => backend.newRestorer(range ? range.start : -1, range ? range.end : -1, opts.storeId ?? newId));
  if (budget !== undefined) {
    try {
      core(() => r.setMaxMemory(budget));
    } catch (e) {
      r.free();
      throw e;
    }
  }
  const total = chains.reduce((n, c) => n + c.length, 0);
  const slice = backend.name === 'native' ? NATIVE_FEED_SLICE : FEED_SLICE;
  const slicer = new Slicer();
  let piece = 0;
  try {
    for (const chain of chains) {
      let first = true;
      for (const src of chain) {
        r.beginPiece(first && chains.length > 1);
        first = false;
        piece++;
        for await (const chunk of chunks(src)) {
          if (!(chunk instanceof Uint8Array)) throw new InvalidArgumentError('INVALID_ARGUMENT', 'checkpoint chunks must be Uint8Arrays');
          // A whole checkpoint in one array is fed a slice at a time too.
          for (let at = 0; at < chunk.length; at += slice) {
            await slicer.pause();
            await feed(r, chunk.subarray(at, at + slice));
            if (opts.onProgress) {
              const p = r.progress();
              opts.onProgress({ piece, pieces: total, bytes: p.bytes, keyGroupsDone: p.keyGroupsDone, keyGroupsTotal: p.keyGroupsTotal, records: p.records });
            }
          }
        }
        r.endPiece();
      }
    }
    return r;
  } catch (e) {
    r.free();
    throw fromCore(e);
  }
}
