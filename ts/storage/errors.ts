/**
 * Errors of checkpoint storage. Codes:
 * - `STORAGE_CORRUPT`: the storage's own records (a MANIFEST, an IndexedDB
 *   database's listing) are not valid, or belong to something else;
 * - `STORAGE_IO`: reading or writing failed (`cause` holds the underlying error);
 * - `STORAGE_UNAVAILABLE`: the storage's API does not exist here, or the
 *   browser refuses it (no OPFS nor IndexedDB: Node, an opaque origin, some
 *   private modes; `cause` holds the browser's error, if any);
 * - `NO_CHECKPOINT`: nothing restorable is stored, or no such checkpoint;
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
