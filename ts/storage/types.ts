/**
 * Durable checkpoint storage: what `store.checkpointTo`, `StateStore.restoreFrom`
 * and `store.enableCheckpointing` need from a place that keeps checkpoints.
 * Environment-neutral: a directory in Node (`DirectoryStorage`), OPFS or
 * IndexedDB in a browser.
 *
 * The contract, for any implementation:
 * - Nothing a writer has not committed is ever listed, and nothing listed is
 *   ever torn: `commit` resolves only once the checkpoint's bytes and the
 *   listing that names it are both durable. Only then does the caller
 *   `confirm()` the checkpoint in the store.
 * - `list()` returns committed checkpoints in commit order, oldest first.
 *   A checkpoint's parent is the latest earlier entry with the same `storeId`
 *   and `id === parentId` (see `chainOf`), so a lineage that forks (restored
 *   from an older chain after a corrupt newer one) stays unambiguous.
 * - Retention never deletes a checkpoint that a retained chain needs, and
 *   deletes a checkpoint's bytes only after a listing without it is durable.
 * - `commit` refuses (StorageError `MISSING_PARENT`) an incremental
 *   checkpoint whose parent chain is not listed; `checkpointTo` then takes a
 *   full checkpoint instead.
 * - One writer per storage location. The built-in storages enforce it: a
 *   second open for writing is refused with StorageError `STORAGE_LOCKED`
 *   while the first is open (a read-only open, `readOnly: true`, may list
 *   and read beside it). Retention counts chains over the whole storage, so
 *   give each store its own.
 * - A checkpoint that retention deletes while it is read fails the read with
 *   `NO_CHECKPOINT`, as if it had not been listed.
 */
import type { CheckpointKind } from '../checkpoint.js';

/** What a storage keeps about one checkpoint besides its bytes. */
export interface CheckpointMeta {
  id: number;
  /** The checkpoint an incremental one extends; null for a full one. */
  parentId: number | null;
  kind: CheckpointKind;
  /** Lineage id of the store that wrote it (32 hex digits). */
  storeId: string;
  /** The file checksum (16 hex digits), as `Checkpoint.checksum`. */
  checksum: string;
  /** Size in bytes. */
  bytes: number;
  /** When the checkpoint was taken (ms since the epoch). */
  createdAt: number;
  /**
   * The application's own record of where its input stood when the
   * checkpoint was taken (an offset, a position), stored in the listing with
   * the checkpoint, so that it is durable exactly when the checkpoint is:
   * a JSON object of at most 64 KiB (`CheckpointToOptions.metadata`).
   * Absent when none was given.
   */
  metadata?: CheckpointMetadata;
}

/** Application metadata stored with a checkpoint: a JSON object (see `CheckpointMeta.metadata`). */
export type CheckpointMetadata = { [key: string]: unknown };

/** A committed checkpoint, as listed by a storage. */
export interface StoredCheckpoint extends CheckpointMeta {
  /** The storage's name for it, unique within the storage (ids may repeat after a fork). */
  name: string;
}

/** Writes one checkpoint. Nothing is visible until `commit` resolves. */
export interface CheckpointWriter {
  /** Appends bytes. The chunk may be reused by the caller once the promise resolves. */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Makes the bytes durable, then lists the checkpoint durably, and applies
   * retention (keep the last `retain` chains; the storage's default if not
   * given). Resolves once the checkpoint would survive a crash.
   */
  commit(meta: CheckpointMeta, retain?: number): Promise<StoredCheckpoint>;
  /** Discards everything written. Never throws for a writer that already failed. */
  abort(): Promise<void>;
}

export interface CheckpointStorage {
  /** Starts writing checkpoint `id`. */
  begin(id: number): Promise<CheckpointWriter>;
  /** Committed checkpoints, in commit order (oldest first). */
  list(): Promise<StoredCheckpoint[]>;
  /** The bytes of a listed checkpoint. */
  open(name: string): Promise<ReadableStream<Uint8Array>>;
  /**
   * Keeps the last `keep` restorable chains (each a checkpoint with its
   * ancestors back to a full one) and deletes everything else. Returns the
   * names deleted.
   */
  retain(keep: number): Promise<string[]>;
}
