/**
 * Restore: feeds checkpoint bytes, from arrays or streams, into the core's
 * restorer, which verifies every part before it builds anything visible.
 */
import type { Backend, CoreRestorer, CoreStore } from './backend/types.js';
import type { Progress } from './checkpoint.js';
import { checkU32, core, fromCore, InvalidArgumentError } from './errors.js';
import type { CheckpointPolicy, KeyGroupRange } from './store.js';
import { getBackend } from './backend/load.js';

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
  /** Called after each chunk is verified and applied. */
  onProgress?: (p: Progress & { piece: number; pieces: number }) => void;
  /** Checkpoint policy of the restored store (see `StoreOptions.checkpoints`). */
  checkpoints?: CheckpointPolicy;
}

async function* chunks(src: CheckpointSource): AsyncIterable<Uint8Array> {
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
export async function compact(pieces: CheckpointSource[], opts: Pick<RestoreOptions, 'onProgress'> = {}): Promise<Uint8Array> {
  const backend = await getBackend();
  const r = await feedAll(backend, pieces, opts, new Uint8Array(16));
  try {
    return r.finishCompacted();
  } catch (e) {
    r.free();
    throw fromCore(e);
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
  const r = core(() => backend.newRestorer(range ? range.start : -1, range ? range.end : -1, opts.storeId ?? newId));
  const total = chains.reduce((n, c) => n + c.length, 0);
  let piece = 0;
  try {
    for (const chain of chains) {
      let first = true;
      for (const src of chain) {
        r.beginPiece(first && chains.length > 1);
        first = false;
        piece++;
        let bytes = 0;
        for await (const chunk of chunks(src)) {
          if (!(chunk instanceof Uint8Array)) throw new InvalidArgumentError('INVALID_ARGUMENT', 'checkpoint chunks must be Uint8Arrays');
          r.feed(chunk);
          bytes += chunk.length;
          opts.onProgress?.({ piece, pieces: total, bytes, keyGroupsDone: 0, keyGroupsTotal: 0, records: 0 });
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
