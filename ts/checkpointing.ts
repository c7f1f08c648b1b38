/**
 * Checkpoints to durable storage: one at a time (`checkpointTo`), restore
 * of the latest stored chain (`restoreFrom`), and periodic checkpointing
 * (`enableCheckpointing`, Flink's enableCheckpointing with incremental
 * checkpoints). Environment-neutral: everything goes through a
 * `CheckpointStorage`.
 *
 * Ordering that makes a crash safe: the checkpoint's bytes and the storage's
 * listing of it are durable (`commit`) before the store confirms it, so a
 * confirmed checkpoint is always stored; a failure at any step aborts the
 * checkpoint, and the next one carries everything since the last confirmed.
 */
import type { Checkpoint, Progress } from './checkpoint.js';
import { CheckpointStateError, CorruptCheckpointError, InvalidArgumentError, StoreFullError } from './errors.js';
import type { RestoreOptions } from './restore.js';
import { chainOf, extendsChain, missingParent } from './storage/chains.js';
import { StorageError } from './storage/errors.js';
import { checkAppMetadata } from './storage/manifest.js';
import type { CheckpointMeta, CheckpointMetadata, CheckpointStorage, StoredCheckpoint } from './storage/types.js';
import type { StateStore } from './store.js';

export interface CheckpointToOptions {
  /** Incremental or full; default: the store's checkpoint policy. */
  incremental?: boolean;
  /** Restorable chains the storage keeps after this checkpoint; default: the storage's. */
  retain?: number;
  /** Export chunk size in bytes (default 64 KiB). */
  chunkSize?: number;
  /** Called after each exported chunk. */
  onProgress?: (p: CheckpointProgress) => void;
  /**
   * Called synchronously the moment the checkpoint is taken (its snapshot):
   * it holds exactly the state as of this call, so an app can note where its
   * input stood (an offset, a count), as in Flink's `snapshotState`.
   */
  onTaken?: (cp: TakenCheckpoint) => void;
  /**
   * Application metadata stored with the checkpoint in the storage's listing
   * (`StoredCheckpoint.metadata`): a JSON object of at most 64 KiB, or a
   * function called synchronously the moment the checkpoint is taken (after
   * `onTaken`) that returns one. It becomes durable exactly when the
   * checkpoint does, so it is the place for where the input stood (a Kafka
   * offset: restore, then resume reading there, for exactly-once state).
   */
  metadata?: CheckpointMetadata | ((cp: TakenCheckpoint) => CheckpointMetadata);
}

/** A checkpoint at the moment it is taken. */
export interface TakenCheckpoint {
  id: number;
  parentId: number | null;
  kind: 'full' | 'incremental';
}

export interface CheckpointProgress extends Progress {
  /** The checkpoint being exported. */
  id: number;
}

/**
 * Options of `StateStore.restoreFrom`, which restores the latest chain the
 * storage lists. A piece that retention deletes while it is read (a writer
 * in another process, page or worker committed newer checkpoints; the
 * storage reports NO_CHECKPOINT) does not fail it: it lists again and
 * restores the new latest chain, up to 5 times.
 */
export interface RestoreFromOptions extends RestoreOptions {
  /**
   * If the latest chain cannot be restored (a missing or corrupt piece), try
   * the previous retained chains, newest first; default false: throw.
   */
  fallback?: boolean;
  /** Reports what was restored, and what was skipped on the way (with `fallback`). */
  onRestored?: (r: RestoredFrom) => void;
}

export interface RestoredFrom {
  /** The checkpoint whose state the store now holds. */
  checkpoint: StoredCheckpoint;
  /** Its chain, full checkpoint first. */
  chain: StoredCheckpoint[];
  /** Newer checkpoints that could not be restored, newest first, with why. */
  skipped: { checkpoint: StoredCheckpoint; error: unknown }[];
}

/** A completed periodic checkpoint. */
export interface CheckpointEvent {
  id: number;
  parentId: number | null;
  kind: 'full' | 'incremental';
  bytes: number;
  /** From taking the checkpoint to its confirmation, in ms. */
  durationMs: number;
  stored: StoredCheckpoint;
}

export interface CheckpointingOptions {
  /** Time between checkpoints, in ms. A tick while a checkpoint runs is skipped. */
  intervalMs: number;
  storage: CheckpointStorage;
  /**
   * Checkpoint policy (see `CheckpointPolicy`). If any of these three is
   * given, the store's policy is set to them, `incremental` defaulting to
   * true; otherwise the store's policy stays as it is.
   */
  incremental?: boolean;
  maxIncrementals?: number;
  maxChainRatio?: number;
  /** Restorable chains the storage keeps; default: the storage's. */
  retain?: number;
  /** Export chunk size in bytes (default 64 KiB). */
  chunkSize?: number;
  onCheckpoint?: (e: CheckpointEvent) => void;
  /** Called synchronously when a checkpoint is taken (see `CheckpointToOptions.onTaken`). */
  onTaken?: (cp: TakenCheckpoint) => void;
  /** Application metadata stored with each checkpoint (see `CheckpointToOptions.metadata`). */
  metadata?: CheckpointToOptions['metadata'];
  /**
   * A checkpoint failed; it was aborted, and the next one is complete. The
   * checkpoint's id, if one was taken. Default: `console.warn`.
   */
  onError?: (error: unknown, id: number | null) => void;
  onProgress?: (p: CheckpointProgress) => void;
}

export interface CheckpointingController {
  /** Takes a checkpoint now (after the one running, if any). Rejects if it fails. */
  checkpointNow(): Promise<StoredCheckpoint>;
  /** Stops the timer and resolves once no checkpoint is running or queued. */
  stop(): Promise<void>;
  readonly running: boolean;
  /** Completed, failed and skipped (tick while one was running) checkpoints. */
  readonly stats: { completed: number; failed: number; skipped: number };
}

/** Storage checkpoints of one store run one after another (confirms must come in order). */
const queues = new WeakMap<StateStore, Promise<unknown>>();
const controllers = new WeakMap<StateStore, CheckpointingController>();

function serially<T>(store: StateStore, f: () => Promise<T>): Promise<T> {
  const p = (queues.get(store) ?? Promise.resolve()).then(f, f);
  queues.set(store, p.catch(() => undefined));
  return p;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** Header bytes 49..65 hold the store id (docs/FORMAT.md: preamble 16, kind 1, four u64s). */
const STORE_ID_AT = 49;

/** @internal `store.checkpointTo`. */
export function checkpointTo(store: StateStore, storage: CheckpointStorage, opts: CheckpointToOptions = {}): Promise<StoredCheckpoint> {
  return serially(store, () => writeCheckpoint(store, storage, opts));
}

async function writeCheckpoint(store: StateStore, storage: CheckpointStorage, opts: CheckpointToOptions, taken?: (cp: Checkpoint) => void): Promise<StoredCheckpoint> {
  try {
    return await attempt(store, storage, opts, taken);
  } catch (e) {
    // The storage does not hold the chain this incremental checkpoint extends (a new storage for a
    // restored store, or retention for another store in the same place): start a chain there.
    if (e instanceof StorageError && e.code === 'MISSING_PARENT') return attempt(store, storage, { ...opts, incremental: false }, taken);
    throw e;
  }
}

async function attempt(store: StateStore, storage: CheckpointStorage, opts: CheckpointToOptions, taken?: (cp: Checkpoint) => void): Promise<StoredCheckpoint> {
  const createdAt = Date.now();
  const cp = store.checkpoint(opts.incremental === undefined ? {} : { incremental: opts.incremental });
  taken?.(cp);
  const info = { id: cp.id, parentId: cp.parentId, kind: cp.kind };
  let metadata: CheckpointMetadata | undefined;
  try {
    opts.onTaken?.(info);
    metadata = typeof opts.metadata === 'function' ? opts.metadata(info) : opts.metadata;
    checkAppMetadata(metadata, `checkpoint ${cp.id}`);
  } catch (e) {
    cp.abort();
    throw e;
  }
  let writer: Awaited<ReturnType<CheckpointStorage['begin']>> | null = null;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  try {
    writer = await storage.begin(cp.id);
    const onProgress = opts.onProgress;
    reader = cp
      .stream({ chunkSize: opts.chunkSize, onProgress: onProgress && ((p) => onProgress({ ...p, id: cp.id })) })
      .getReader();
    const head = new Uint8Array(STORE_ID_AT + 16);
    let bytes = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (bytes < head.length) head.set(value.subarray(0, head.length - bytes), bytes);
      bytes += value.length;
      await writer.write(value);
    }
    reader = null;
    const checksum = cp.checksum;
    if (checksum === null || bytes < head.length) {
      throw new CorruptCheckpointError('CORRUPT', `checkpoint ${cp.id}: the export ended early (${bytes} bytes)`);
    }
    const meta: CheckpointMeta = { id: cp.id, parentId: cp.parentId, kind: cp.kind, storeId: hex(head.subarray(STORE_ID_AT)), checksum, bytes, createdAt };
    if (metadata !== undefined) meta.metadata = metadata;
    if (!extendsChain(await storage.list(), meta)) throw missingParent(meta);
    const stored = await writer.commit(meta, opts.retain);
    writer = null;
    // Stored durably: from here on a crash restores this checkpoint, so the store may count it.
    cp.confirm();
    return stored;
  } catch (e) {
    await reader?.cancel().catch(() => undefined);
    await writer?.abort().catch(() => undefined);
    try {
      cp.abort();
    } catch {
      // Confirmed already (only confirm itself failed), or the store was closed.
    }
    throw e;
  }
}

/** @internal `StateStore.restoreFrom`. */
export async function restoreFrom(
  restore: (pieces: AsyncIterable<Uint8Array>[], opts: RestoreOptions) => Promise<StateStore>,
  storage: CheckpointStorage,
  opts: RestoreFromOptions = {},
): Promise<StateStore> {
  const { fallback = false, onRestored, ...restoreOpts } = opts;
  let list = await storage.list();
  if (list.length === 0) throw new StorageError('NO_CHECKPOINT', 'the storage holds no checkpoint');
  const skipped: RestoredFrom['skipped'] = [];
  let relisted = 0;
  // Newest first: the latest checkpoint, then (with fallback) each older one.
  for (let i = list.length - 1; i >= 0; i--) {
    const tip = list[i];
    try {
      const chain = chainOf(list, i);
      if (!chain) throw new StorageError('MISSING_PARENT', `checkpoint ${tip.id} (${tip.name}) cannot be restored: an ancestor is not stored`);
      const sums: string[] = [];
      const store = await restore(
        chain.map((c, n) => piece(storage, c, sums, n)),
        restoreOpts,
      );
      // The restorer verified every file; these checks tie the files to the listing.
      const wrong = chain.findIndex((c, n) => sums[n] !== c.checksum);
      const last = store.lastConfirmedCheckpoint();
      if (wrong >= 0 || (last !== null && last.id !== tip.id)) {
        store.close();
        const c = chain[wrong >= 0 ? wrong : chain.length - 1];
        const why = wrong >= 0 ? `has checksum ${sums[wrong]}, not the listed ${c.checksum}` : `holds checkpoint ${last?.id}, not ${tip.id}`;
        throw new StorageError('STORAGE_CORRUPT', `checkpoint file ${c.name} ${why}`);
      }
      onRestored?.({ checkpoint: tip, chain, skipped });
      return store;
    } catch (e) {
      // A piece deleted while it was read: the writer (another process, page or worker, or this
      // one's periodic checkpoints) committed newer ones and retention dropped it. Start again from
      // the new latest, a few times (a writer that outpaces every restore is not waited for).
      if (e instanceof StorageError && e.code === 'NO_CHECKPOINT' && relisted < MAX_RELISTS) {
        const again = await storage.list();
        if (again.length > 0 && !sameNames(again, list)) {
          relisted++;
          list = again;
          skipped.length = 0;
          i = list.length;
          continue;
        }
      }
      // Not the chain's fault: an older chain is no answer to a bad option or a full memory.
      if (!fallback || e instanceof InvalidArgumentError || e instanceof StoreFullError) throw e;
      skipped.push({ checkpoint: tip, error: e });
    }
  }
  throw skipped[0].error;
}

/** Times restoreFrom lists again after a piece was deleted while it was read. */
const MAX_RELISTS = 5;

const sameNames = (a: readonly StoredCheckpoint[], b: readonly StoredCheckpoint[]) => a.length === b.length && a.every((c, i) => c.name === b[i].name);

/** A stored checkpoint's bytes, opened when first read; leaves the file checksum (from the trailer) in `sums[n]`. */
async function* piece(storage: CheckpointStorage, c: StoredCheckpoint, sums: string[], n: number): AsyncIterable<Uint8Array> {
  const reader = (await storage.open(c.name)).getReader();
  // The trailer ends with file_checksum (u64 LE) and the 8-byte end magic (docs/FORMAT.md).
  const tail = new Uint8Array(16);
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      if (value.length >= 16) {
        tail.set(value.subarray(value.length - 16));
      } else {
        tail.copyWithin(0, value.length);
        tail.set(value, 16 - value.length);
      }
      yield value;
    }
  } finally {
    // Restore stopped early (a bad piece): let the storage close the file.
    if (finished) reader.releaseLock();
    else await reader.cancel().catch(() => undefined);
  }
  let sum = 0n;
  for (let i = 7; i >= 0; i--) sum = (sum << 8n) | BigInt(tail[i]);
  sums[n] = sum.toString(16).padStart(16, '0');
}

/** @internal `store.enableCheckpointing`. */
export function enableCheckpointing(store: StateStore, opts: CheckpointingOptions): CheckpointingController {
  const { intervalMs, storage } = opts;
  if (typeof intervalMs !== 'number' || !(intervalMs > 0) || !Number.isFinite(intervalMs)) {
    throw new InvalidArgumentError('INVALID_ARGUMENT', `intervalMs must be a positive number, not ${String(intervalMs)}`);
  }
  if (!storage || typeof storage.begin !== 'function') {
    throw new InvalidArgumentError('INVALID_ARGUMENT', 'enableCheckpointing needs a storage');
  }
  const existing = controllers.get(store);
  if (existing?.running) throw new CheckpointStateError('CHECKPOINT_STATE', 'checkpointing is already enabled on this store; stop() it first');
  if (opts.incremental !== undefined || opts.maxIncrementals !== undefined || opts.maxChainRatio !== undefined) {
    store.setCheckpointPolicy({ incremental: opts.incremental ?? true, maxIncrementals: opts.maxIncrementals, maxChainRatio: opts.maxChainRatio });
  }
  const onError = opts.onError ?? ((e: unknown) => console.warn('keystate: a periodic checkpoint failed:', e));
  const stats = { completed: 0, failed: 0, skipped: 0 };
  let stopped = false;
  let stopping: Promise<void> | null = null;
  /** Checkpoints of this controller that are running or queued. */
  let pending = 0;
  let idle: Promise<unknown> = Promise.resolve();

  const run = (): Promise<StoredCheckpoint> => {
    pending++;
    let id: number | null = null;
    let started = 0;
    const p = serially(store, () =>
      // The kind comes from the store's policy (so materialization applies), not from opts.incremental.
      writeCheckpoint(store, storage, { retain: opts.retain, chunkSize: opts.chunkSize, onProgress: opts.onProgress, onTaken: opts.onTaken, metadata: opts.metadata }, (cp) => {
        id = cp.id;
        started ||= Date.now();
      }),
    ).then(
      (stored) => {
        stats.completed++;
        const event: CheckpointEvent = { id: stored.id, parentId: stored.parentId, kind: stored.kind, bytes: stored.bytes, durationMs: Date.now() - started, stored };
        try {
          opts.onCheckpoint?.(event);
        } catch (e) {
          onError(e, stored.id);
        }
        return stored;
      },
      (e: unknown) => {
        stats.failed++;
        // A closed store will not checkpoint again: stop ticking (whatever the
        // error of the checkpoint its closing cut short).
        if (store.closed) halt();
        onError(e, id);
        throw e;
      },
    );
    const settled = p.then(
      () => undefined,
      () => undefined,
    ).finally(() => pending--);
    idle = Promise.all([idle, settled]);
    return p;
  };

  const tick = () => {
    if (stopped) return;
    if (pending > 0) {
      stats.skipped++;
      return;
    }
    run().catch(() => undefined); // reported through onError
  };

  const timer = setInterval(tick, intervalMs);
  // A checkpoint timer alone never keeps a Node process alive.
  (timer as { unref?: () => void }).unref?.();
  const halt = () => {
    stopped = true;
    clearInterval(timer);
  };

  const controller: CheckpointingController = {
    checkpointNow() {
      if (stopped) return Promise.reject(new CheckpointStateError('CHECKPOINT_STATE', 'checkpointing was stopped'));
      return run();
    },
    stop() {
      halt();
      stopping ??= (async () => {
        // Wait until no checkpoint of this controller runs, including ones queued meanwhile.
        for (let seen = idle; ; seen = idle) {
          await seen;
          if (seen === idle && pending === 0) return;
        }
      })();
      return stopping;
    },
    get running() {
      return !stopped;
    },
    get stats() {
      return { ...stats };
    },
  };
  controllers.set(store, controller);
  return controller;
}
