/**
 * The two browser storages as the suites see them: how to open one, and how
 * to read what it holds straight from OPFS or IndexedDB (not through the
 * storage), to check that nothing is torn or orphaned. Runs in a browser only.
 */
import { IndexedDbStorage, OpfsStorage, type BrowserStorage, type BrowserStorageOptions, type StoredCheckpoint } from './_backend.js';

/** What a storage holds, read directly. */
export interface Contents {
  /** The listing, in commit order. */
  listed: StoredCheckpoint[];
  /** Checkpoint name -> bytes stored under it (a file, or the sum of its chunks). */
  stored: Map<string, number>;
  /** Anything else: files other than MANIFEST and checkpoint files. */
  other: string[];
}

export interface Kind {
  kind: 'opfs' | 'indexeddb';
  open(name: string, opts?: BrowserStorageOptions): Promise<BrowserStorage>;
  contents(name: string): Promise<Contents>;
  /** Replaces the listing with something that is not a valid one. */
  corruptListing(name: string, what: string): Promise<void>;
  destroy(name: string): Promise<void>;
}

export const hasOpfs = () => typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function';
export const hasIdb = () => typeof indexedDB !== 'undefined';

const req = <T>(r: IDBRequest<T>) =>
  new Promise<T>((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });

// ---- OPFS --------------------------------------------------------------------------------------

export async function opfsDir(name: string): Promise<FileSystemDirectoryHandle> {
  return (await navigator.storage.getDirectory()).getDirectoryHandle(name);
}

export async function writeOpfsFile(name: string, file: string, data: string | Uint8Array<ArrayBuffer>): Promise<void> {
  const w = await (await (await opfsDir(name)).getFileHandle(file, { create: true })).createWritable();
  await w.write(data);
  await w.close();
}

/** A MANIFEST's checkpoints; none if it is not JSON (the suites corrupt it on purpose). */
function parseOr(text: string): StoredCheckpoint[] {
  try {
    return JSON.parse(text).checkpoints ?? [];
  } catch {
    return [];
  }
}

export const opfs: Kind = {
  kind: 'opfs',
  open: (name, opts) => OpfsStorage.open(name, opts),
  async contents(name) {
    const dir = await opfsDir(name);
    const out: Contents = { listed: [], stored: new Map(), other: [] };
    for await (const [f, h] of dir.entries()) {
      if (f === 'MANIFEST') out.listed = parseOr(await (await (h as FileSystemFileHandle).getFile()).text());
      else if (/^ckpt-\d+-\d+\.ks$/.test(f)) out.stored.set(f, (await (h as FileSystemFileHandle).getFile()).size);
      else out.other.push(f);
    }
    return out;
  },
  async corruptListing(name, what) {
    await writeOpfsFile(name, 'MANIFEST', what);
  },
  async destroy(name) {
    await (await navigator.storage.getDirectory()).removeEntry(name, { recursive: true }).catch(() => undefined);
  },
};

// ---- IndexedDB ---------------------------------------------------------------------------------

/** Opens the database as it is (no upgrade), runs `f`, closes it. */
export async function withDb<T>(name: string, f: (db: IDBDatabase) => Promise<T>): Promise<T> {
  const db = await req(indexedDB.open(name));
  try {
    return await f(db);
  } finally {
    db.close();
  }
}

export const idb: Kind = {
  kind: 'indexeddb',
  open: (name, opts) => IndexedDbStorage.open(name, opts),
  contents: (name) =>
    withDb(name, async (db) => {
      const t = db.transaction(['listing', 'chunks'], 'readonly');
      const listed = await req(t.objectStore('listing').getAll());
      const chunks = t.objectStore('chunks');
      const [keys, values] = await Promise.all([req(chunks.getAllKeys()), req(chunks.getAll())]);
      const stored = new Map<string, number>();
      keys.forEach((k, i) => {
        const n = (k as [string, number])[0];
        stored.set(n, (stored.get(n) ?? 0) + (values[i] as Uint8Array).length);
      });
      return { listed, stored, other: [] };
    }),
  async corruptListing(name, what) {
    await withDb(name, async (db) => {
      const t = db.transaction('listing', 'readwrite');
      await req(t.objectStore('listing').put(what));
    });
  },
  async destroy(name) {
    await req(indexedDB.deleteDatabase(name)).catch(() => undefined);
  },
};

/** Storage names unique to this run, so suites and reruns never meet. */
const run = Math.random().toString(36).slice(2, 8);
let count = 0;
export const uniqueName = (what: string) => `ks-test-${what}-${run}-${++count}`;
