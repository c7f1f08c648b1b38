/**
 * openBrowserStorage: the durable checkpoint storage a browser offers, OPFS
 * where it exists, else IndexedDB (environment-neutral code: where neither
 * exists, as in Node, it throws STORAGE_UNAVAILABLE).
 */
import { type BrowserStorageOptions, checkName, hasIndexedDb, hasOpfs, unavailable } from './browser-options.js';
import { checkAccess } from './access.js';
import { checkRetain } from './manifest.js';
import { IndexedDbStorage } from './indexeddb.js';
import { OpfsStorage } from './opfs.js';
import { StorageError } from './errors.js';

/** A storage of either kind; `kind` says which. */
export type BrowserStorage = OpfsStorage | IndexedDbStorage;

/**
 * Opens the storage `name`: an `OpfsStorage` (`kind: 'opfs'`) where the
 * Origin Private File System exists and the browser grants it, else an
 * `IndexedDbStorage` (`kind: 'indexeddb'`). A browser that gains OPFS later
 * (an update) starts an empty OPFS storage: restore from the IndexedDB one
 * by opening it directly.
 */
export async function openBrowserStorage(name: string, opts: BrowserStorageOptions = {}): Promise<BrowserStorage> {
  checkName(name);
  checkRetain(opts.retain ?? 2, 'retain');
  checkAccess(opts);
  if (hasOpfs()) {
    try {
      return await OpfsStorage.open(name, opts);
    } catch (e) {
      // Present but refused (some private modes): IndexedDB may still be there.
      if (!(e instanceof StorageError && e.code === 'STORAGE_UNAVAILABLE' && hasIndexedDb())) throw e;
    }
  }
  if (hasIndexedDb()) return IndexedDbStorage.open(name, opts);
  throw unavailable('neither the Origin Private File System nor IndexedDB is available here');
}
