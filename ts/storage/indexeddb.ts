/**
 * IndexedDbStorage: checkpoints in an IndexedDB database per storage name
 * (environment-neutral code: in Node, `open` throws STORAGE_UNAVAILABLE).
 *
 * Two object stores: `chunks` holds each checkpoint's bytes as records keyed
 * `[name, index]`; `listing` holds one entry per committed checkpoint, keyed
 * by a generated, increasing number (commit order). A checkpoint's chunks
 * are written first, each batch in its own transaction; `commit` is then one
 * readwrite transaction with durability 'strict' that checks the chunks are
 * all there, adds the listing entry and removes the entries retention drops.
 * Chunks of dropped entries are deleted in a later transaction, once that
 * one is durable. Chunks no entry names (an interrupted checkpoint) are
 * removed on open.
 *
 * One writer per storage: opening for writing takes the Web Lock
 * `keystate:indexeddb:<name>`, so a second writer in any page, frame or
 * worker of the origin is refused with STORAGE_LOCKED (or waits, with
 * `lock: { wait: true }`) until `close()` or until the writer's page or
 * worker goes away. `readOnly: true` takes no lock and runs only readonly
 * transactions.
 *
 * Chunk batches use durability 'strict' too: browsers keep large values in
 * files of their own beside the database's log, so a strict listing commit
 * need not flush chunks written by earlier relaxed transactions.
 */
import { type BrowserStorageOptions, checkName, hasIndexedDb, unavailable } from './browser-options.js';
import { appended, retention } from './chains.js';
import { checkAccess } from './access.js';
import { deletedWhileRead, ioError, readOnlyError, StorageError } from './errors.js';
import { WebLock } from './weblock.js';
import { checkId, checkpointName, checkRetain, parseEntry, pick, seqOf } from './manifest.js';
import { commitChecks, Pieces } from './pieces.js';
import type { CheckpointStorage, CheckpointWriter, StoredCheckpoint } from './types.js';

export type IndexedDbStorageOptions = BrowserStorageOptions;

/** The database version: its object stores and key layout. */
const DB_VERSION = 1;
const CHUNKS = 'chunks';
const LISTING = 'listing';
/** Bytes per chunk record (each batch is a transaction: a round trip and a commit). */
const RECORD = 1024 * 1024;

const request = <T>(r: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });

/** Every key of the chunks of checkpoint `name`. */
const chunksOf = (name: string) => IDBKeyRange.bound([name, 0], [name, Infinity]);

export class IndexedDbStorage implements CheckpointStorage {
  readonly kind = 'indexeddb' as const;
  /** The storage's name: its database. */
  readonly name: string;
  /** Chains kept by default (see `BrowserStorageOptions.retain`). */
  readonly retainChains: number;
  /** Opened with `readOnly: true`: lists and reads, never writes, holds no lock. */
  readonly readOnly: boolean;
  private readonly db: IDBDatabase;
  private readonly label: string;
  private closing: Promise<void> | null = null;
  private seq = 0;
  private removed: readonly string[] = [];
  /** The writer's lock; null when read-only. */
  private readonly held: WebLock | null;

  private constructor(name: string, db: IDBDatabase, retain: number, held: WebLock | null) {
    this.name = name;
    this.db = db;
    this.retainChains = retain;
    this.held = held;
    this.readOnly = held === null;
    this.label = `IndexedDB database ${JSON.stringify(name)}`;
    // Another page deletes or upgrades the database: let it, and fail from now on.
    db.onversionchange = () => void this.close();
  }

  /**
   * Opens (by default creating) the storage `name` as its only writer: takes
   * its Web Lock, then removes what an interrupted checkpoint left. With
   * `readOnly: true`, opens an existing storage to list and restore, beside a
   * writer. Throws StorageError `STORAGE_LOCKED` if another page, frame or
   * worker has it open for writing (after waiting, with `lock.wait`),
   * `STORAGE_UNAVAILABLE` where IndexedDB (or, for a writer, Web Locks) is
   * missing or refused, `STORAGE_CORRUPT` if the database is not a keystate
   * checkpoint database (or a newer one), or its listing is not valid,
   * `STORAGE_IO` if it does not exist (`create: false`, `readOnly`).
   */
  static async open(name: string, opts: IndexedDbStorageOptions = {}): Promise<IndexedDbStorage> {
    checkName(name);
    const retain = checkRetain(opts.retain ?? 2, 'retain');
    const { readOnly, waitMs } = checkAccess(opts);
    if (!hasIndexedDb()) throw unavailable('IndexedDB is not available here');
    const label = `IndexedDB database ${JSON.stringify(name)}`;
    const create = !readOnly && (opts.create ?? true);
    // Taken before the database is opened, so that a writer's first look at it (and cleanup) is under the lock.
    const held = readOnly ? null : await WebLock.acquire(`keystate:indexeddb:${name}`, label, waitMs);
    try {
      return await IndexedDbStorage.connect(name, label, create, retain, held, !readOnly && (opts.cleanup ?? true));
    } catch (e) {
      await held?.release();
      throw e;
    }
  }

  private static async connect(name: string, label: string, create: boolean, retain: number, held: WebLock | null, cleanup: boolean): Promise<IndexedDbStorage> {
    let db: IDBDatabase;
    try {
      db = await new Promise<IDBDatabase>((resolve, reject) => {
        const r = indexedDB.open(name, DB_VERSION);
        r.onupgradeneeded = (ev) => {
          // Aborting the version change leaves no database behind; the open fails with AbortError.
          if (ev.oldVersion === 0 && !create) return r.transaction?.abort();
          r.result.createObjectStore(CHUNKS);
          r.result.createObjectStore(LISTING, { autoIncrement: true });
        };
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
    } catch (e) {
      if (e instanceof Error && e.name === 'VersionError') {
        throw new StorageError('STORAGE_CORRUPT', `${label} has a newer version than ${DB_VERSION}, the one this keystate reads`, e);
      }
      if (e instanceof Error && e.name === 'AbortError' && !create) throw new StorageError('STORAGE_IO', `${label} does not exist (create: false, or readOnly)`, e);
      if (e instanceof Error && e.name === 'SecurityError') throw unavailable('the browser refused IndexedDB', e);
      throw ioError(`opening ${label}`, e);
    }
    if (!db.objectStoreNames.contains(CHUNKS) || !db.objectStoreNames.contains(LISTING)) {
      db.close();
      throw new StorageError('STORAGE_CORRUPT', `${label} is not a keystate checkpoint database (no ${CHUNKS} and ${LISTING} stores)`);
    }
    const storage = new IndexedDbStorage(name, db, retain, held);
    try {
      // Orphans are found and deleted in one transaction: a writer in another page cannot list
      // them in between (its commit would then find its chunks gone and fail, listing nothing).
      const { entries, names, orphans } = await storage.tx([LISTING, CHUNKS], cleanup ? 'readwrite' : 'readonly', async (t) => {
        const entries = (await storage.readListing(t)).entries;
        const names = await chunkNames(t.objectStore(CHUNKS), label);
        const listed = new Set(entries.map((c) => c.name));
        const orphans = cleanup ? names.filter((n) => !listed.has(n)) : [];
        for (const n of orphans) t.objectStore(CHUNKS).delete(chunksOf(n));
        return { entries, names, orphans };
      }, 'strict');
      storage.seq = Math.max(0, ...entries.map((c) => seqOf(c.name)), ...names.map(seqOf));
      storage.removed = orphans.sort();
    } catch (e) {
      db.close();
      throw ioError(`opening ${label}`, e);
    }
    return storage;
  }

  /** Checkpoints whose chunks opening removed: what interrupted checkpoints left. */
  get removedOnOpen(): readonly string[] {
    return this.removed;
  }

  /**
   * Closes the database connection and releases the writer's lock (another
   * page or worker may open the storage for writing from then on); the
   * storage fails from then on. Resolves once the lock is released. Calling
   * it again returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.db.close();
      await this.held?.release();
    })();
    return this.closing;
  }

  async list(): Promise<StoredCheckpoint[]> {
    return this.tx([LISTING], 'readonly', async (t) => (await this.readListing(t)).entries);
  }

  async begin(id: number): Promise<CheckpointWriter> {
    checkId(id);
    this.writable('write a checkpoint');
    const name = checkpointName(id, ++this.seq);
    let failed = false;
    let done = false;
    let records = 0;
    const fail = async () => {
      failed = true;
      await this.deleteChunks([name]).catch(() => undefined);
    };
    /** Stores each piece as the next chunk record. */
    const pieces = new Pieces(RECORD, async (piece) => {
      // put() copies its value at once (structured clone); a view would copy its whole buffer, so
      // a partial record goes as a copy of its own.
      const value = piece.length === RECORD ? piece : piece.slice();
      const key = [name, records++];
      await this.tx([CHUNKS], 'readwrite', (t) => void t.objectStore(CHUNKS).put(value, key), 'strict');
    }, fail, `writing checkpoint ${id} to ${this.label}`);
    const closed = (what: string) => new StorageError('STORAGE_IO', `checkpoint ${id}: ${what} after the writer was closed`);
    return {
      write: async (chunk) => {
        if (done || failed) throw closed('write');
        await pieces.write(chunk);
      },
      commit: async (meta, retain) => {
        if (done || failed) throw closed('commit');
        done = true;
        const keep = await commitChecks(meta, id, retain, this.retainChains, pieces.written, fail);
        await pieces.flush();
        const stored: StoredCheckpoint = { ...pick(meta), name };
        let dropped: string[];
        try {
          const lost = this.held?.lostError();
          if (lost) throw lost;
          dropped = await this.tx(
            [LISTING, CHUNKS],
            'readwrite',
            async (t) => {
              const have = await request(t.objectStore(CHUNKS).count(chunksOf(name)));
              if (have !== records) {
                throw new StorageError('STORAGE_IO', `checkpoint ${id}: ${have} of its ${records} chunks are stored (was the storage opened again meanwhile?)`);
              }
              const { keys, entries } = await this.readListing(t);
              const { dropped } = retention(appended(entries, stored), keep);
              const listing = t.objectStore(LISTING);
              listing.add(stored);
              for (const d of dropped) listing.delete(keys[entries.indexOf(d)]);
              return dropped.map((d) => d.name);
            },
            'strict',
          );
        } catch (e) {
          await fail();
          throw ioError(`listing checkpoint ${id} in ${this.label}`, e);
        }
        // The listing without them is durable: now their chunks may go (or the next open's cleanup takes them).
        await this.deleteChunks(dropped).catch(() => undefined);
        return { ...stored };
      },
      abort: async () => {
        done = true;
        if (!failed) await fail();
      },
    };
  }

  async open(name: string): Promise<ReadableStream<Uint8Array>> {
    const entry = (await this.list()).find((c) => c.name === name);
    if (!entry) throw new StorageError('NO_CHECKPOINT', `${this.label} lists no checkpoint named ${JSON.stringify(name)}`);
    let at = 0;
    let n = 0;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          if (at >= entry.bytes) return controller.close();
          try {
            const value = await this.tx([CHUNKS], 'readonly', (t) => request(t.objectStore(CHUNKS).get([name, n])));
            if (value === undefined && !(await this.list()).some((c) => c.name === name)) {
              // Unlisted by retention (of this page's writer, or another's), then its chunks deleted.
              throw deletedWhileRead(this.label, name);
            }
            if (!(value instanceof Uint8Array) || value.length === 0 || at + value.length > entry.bytes) {
              throw new StorageError('STORAGE_CORRUPT', `${this.label}: chunk ${n} of checkpoint ${name} is missing or invalid (${at} of ${entry.bytes} bytes read)`);
            }
            n++;
            at += value.length;
            controller.enqueue(value);
          } catch (e) {
            controller.error(ioError(`reading checkpoint ${name} from ${this.label}`, e));
          }
        },
      },
      { highWaterMark: 0 },
    );
  }

  async retain(keep: number): Promise<string[]> {
    const k = checkRetain(keep, 'keep');
    this.writable('apply retention');
    let dropped: string[];
    try {
      dropped = await this.tx(
        [LISTING],
        'readwrite',
        async (t) => {
          const { keys, entries } = await this.readListing(t);
          const { dropped } = retention(entries, k);
          for (const d of dropped) t.objectStore(LISTING).delete(keys[entries.indexOf(d)]);
          return dropped.map((d) => d.name);
        },
        'strict',
      );
    } catch (e) {
      throw ioError(`applying retention in ${this.label}`, e);
    }
    try {
      await this.deleteChunks(dropped);
    } catch {
      return []; // unlisted now; the next open's cleanup removes their chunks
    }
    return dropped;
  }

  private connection(): IDBDatabase {
    if (this.closing) throw new StorageError('STORAGE_IO', `${this.label} was closed (by close(), or because another page deleted or upgraded it)`);
    return this.db;
  }

  /** Throws unless this storage may write now: not read-only, not closed, its lock not taken away. */
  private writable(what: string): void {
    if (this.readOnly) throw readOnlyError(this.label, what);
    this.connection();
    const lost = this.held?.lostError();
    if (lost) throw lost;
  }

  /**
   * Runs `body` in a transaction and resolves once the transaction committed.
   * `body` may await requests of the transaction (promise reactions run
   * while it is active), and nothing else.
   */
  private async tx<T>(stores: string[], mode: IDBTransactionMode, body: (t: IDBTransaction) => T | Promise<T>, durability: IDBTransactionDurability = 'default'): Promise<T> {
    let t: IDBTransaction;
    try {
      t = this.connection().transaction(stores, mode, { durability });
    } catch (e) {
      throw ioError(`starting a transaction on ${this.label}`, e);
    }
    const committed = new Promise<void>((resolve, reject) => {
      t.oncomplete = () => resolve();
      t.onabort = () => reject(t.error ?? new DOMException('the transaction was aborted', 'AbortError'));
    });
    committed.catch(() => undefined); // observed below, or the body's error wins
    let result: T;
    try {
      result = await body(t);
    } catch (e) {
      try {
        t.abort();
      } catch {
        // Finished already.
      }
      throw e;
    }
    await committed;
    return result;
  }

  /** The listing in commit order, validated, with each entry's record key. */
  private async readListing(t: IDBTransaction): Promise<{ keys: IDBValidKey[]; entries: StoredCheckpoint[] }> {
    const store = t.objectStore(LISTING);
    const [keys, values] = await Promise.all([request(store.getAllKeys()), request(store.getAll())]);
    const names = new Set<string>();
    const bad = (why: string) => new StorageError('STORAGE_CORRUPT', `the listing of ${this.label} is corrupt: ${why}`);
    return { keys, entries: values.map((v: unknown, i) => parseEntry(v, i, names, bad)) };
  }

  private async deleteChunks(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    await this.tx([CHUNKS], 'readwrite', (t) => {
      for (const n of names) t.objectStore(CHUNKS).delete(chunksOf(n));
    });
  }
}

/** The checkpoint names that have chunks, one cursor step per name. */
async function chunkNames(store: IDBObjectStore, label: string): Promise<string[]> {
  const names: string[] = [];
  const r = store.openKeyCursor();
  for (;;) {
    const cursor = await request(r);
    if (!cursor) return names;
    const key = cursor.key;
    if (!Array.isArray(key) || key.length !== 2 || typeof key[0] !== 'string' || typeof key[1] !== 'number') {
      throw new StorageError('STORAGE_CORRUPT', `${label} holds a chunk with a foreign key ${JSON.stringify(key)}`);
    }
    names.push(key[0]);
    // Past every chunk of this name.
    cursor.continue([key[0], Infinity]);
  }
}
