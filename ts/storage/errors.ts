/**
 * Errors of checkpoint storage. Codes:
 * - `STORAGE_CORRUPT`: the storage's own records (a MANIFEST, an IndexedDB
 *   database's listing) are not valid, or belong to something else;
 * - `STORAGE_IO`: reading or writing failed (`cause` holds the underlying
 *   error), or the storage was closed;
 * - `STORAGE_UNAVAILABLE`: the storage's API does not exist here, or the
 *   browser refuses it (no OPFS nor IndexedDB: Node, an opaque origin, some
 *   private modes; `cause` holds the browser's error, if any);
 * - `STORAGE_LOCKED`: another writer has the storage open (one writer per
 *   storage: a process for a directory, a page or worker for a browser
 *   storage), or this one lost its lock to another writer;
 * - `STORAGE_READ_ONLY`: a write (a checkpoint, retention) to a storage
 *   opened with `readOnly: true`;
 * - `NO_CHECKPOINT`: nothing restorable is stored, or no such checkpoint
 *   (also one that retention deleted while it was being read);
 * - `MISSING_PARENT`: an incremental checkpoint whose parent chain the
 *   storage does not hold (it cannot be listed, or restored).
 */
import { KeystateError } from '../errors.js';

export class StorageError extends KeystateError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message);
    if (cause !== undefined) (this as { cause?: unknown }).cause = cause;
  }
}

/** @internal Wraps a failed I/O operation, naming what was being done. */
export function ioError(what: string, e: unknown): StorageError {
  if (e instanceof StorageError) return e;
  const detail = e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}` : String(e);
  return new StorageError('STORAGE_IO', `${what}: ${detail}`, e);
}

/** @internal `STORAGE_READ_ONLY` for `what` (a write) on the storage `label`. */
export function readOnlyError(label: string, what: string): StorageError {
  return new StorageError('STORAGE_READ_ONLY', `${label} was opened with readOnly: true, so it cannot ${what}; open it without readOnly (as its only writer) to write`);
}

/** @internal `STORAGE_IO` for an operation on a closed storage. */
export function closedError(label: string): StorageError {
  return new StorageError('STORAGE_IO', `${label} was closed`);
}

/**
 * @internal `NO_CHECKPOINT` for a checkpoint that was listed when it was
 * opened, and that retention deleted since (a newer one was committed).
 */
export function deletedWhileRead(label: string, name: string, cause?: unknown): StorageError {
  return new StorageError('NO_CHECKPOINT', `${label} no longer holds checkpoint ${name}: retention deleted it while it was read (the writer committed newer checkpoints); list again and read the latest`, cause);
}
