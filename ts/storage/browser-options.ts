/**
 * What OpfsStorage, IndexedDbStorage and openBrowserStorage share: their
 * options, the check of a storage name, and the error where neither API exists.
 */
import { InvalidArgumentError } from '../errors.js';
import type { AccessOptions } from './access.js';
import { StorageError } from './errors.js';

/**
 * Options of the browser storages (as DirectoryStorage's, less `lock.staleMs`:
 * the browser releases a Web Lock as soon as its holder's page or worker goes).
 */
export interface BrowserStorageOptions extends AccessOptions {
  /** Restorable chains to keep (the last K checkpoints, each with its ancestors); default 2. */
  retain?: number;
  /** Create the storage (OPFS directory, IndexedDB database) if it does not exist; default true (false with `readOnly`). */
  create?: boolean;
  /**
   * Remove what an interrupted checkpoint left (checkpoint files or chunks
   * the listing does not name); default true (false with `readOnly`). To
   * read a storage another page or worker writes, open it with `readOnly: true`.
   */
  cleanup?: boolean;
}

/**
 * Throws INVALID_ARGUMENT unless `name` can name an OPFS directory and an
 * IndexedDB database alike (so the factory may pick either).
 */
export function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 255 || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
    throw new InvalidArgumentError('INVALID_ARGUMENT', `a storage name must be 1-255 characters without / \\ or NUL, and not . or .., not ${JSON.stringify(name)}`);
  }
  return name;
}

/** StorageError `STORAGE_UNAVAILABLE`. */
export function unavailable(what: string, cause?: unknown): StorageError {
  const detail = cause instanceof Error ? ` (${cause.name}: ${cause.message})` : '';
  return new StorageError('STORAGE_UNAVAILABLE', `${what}${detail}; in Node, use DirectoryStorage`, cause);
}

/** True where OPFS with createWritable() exists (Chromium, Firefox, Safari 26; not Node). */
export function hasOpfs(): boolean {
  const nav = (globalThis as { navigator?: { storage?: { getDirectory?: unknown } } }).navigator;
  const FileHandle = (globalThis as { FileSystemFileHandle?: { prototype: object } }).FileSystemFileHandle;
  return typeof nav?.storage?.getDirectory === 'function' && FileHandle !== undefined && 'createWritable' in FileHandle.prototype;
}

/** True where IndexedDB exists. */
export function hasIndexedDb(): boolean {
  return typeof (globalThis as { indexedDB?: unknown }).indexedDB === 'object' && (globalThis as { indexedDB?: unknown }).indexedDB !== null;
}
