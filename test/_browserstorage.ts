/**
 * The two browser storages as the suites see them: how to open one, and how
 * to read what it holds straight from OPFS or IndexedDB (not through the
 * storage), to check that nothing is torn or orphaned; and `Peer`, another
 * page, frame or worker with a storage of its own. Runs in a browser only.
 */
import { IndexedDbStorage, OpfsStorage, type BrowserStorage, type BrowserStorageOptions, type StoredCheckpoint } from './_backend.js';
import type { PeerCommand, PeerReply } from './_storage.peer.js';

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

// ---- another page, frame or worker -------------------------------------------------------------

/** How long a peer may take to answer before the suite gives up on it (it never should). */
const PEER_TIMEOUT_MS = 30_000;

/**
 * Another context of this origin running keystate on its own (_storage.peer.ts):
 * a page (`window.open`), a frame, or a dedicated worker. Each holds Web Locks
 * as its own client; closing the page, removing the frame or terminating the
 * worker ends it, and the browser releases its locks.
 */
export class Peer {
  private seq = 0;
  private readonly waiting = new Map<number, (r: PeerReply) => void>();

  private constructor(
    readonly where: 'page' | 'frame' | 'worker',
    private readonly post: (m: unknown) => void,
    private readonly end: () => void,
  ) {}

  static async start(where: 'page' | 'frame' | 'worker'): Promise<Peer> {
    const url = new URL(where === 'worker' ? '/_storage.peer.js' : '/?suite=_storage.peer', location.href).href;
    let ready!: () => void;
    const started = new Promise<void>((resolve) => (ready = resolve));
    let peer: Peer;
    const onReply = (data: { ready?: true; seq?: number } & PeerReply) => {
      if (data.ready) return ready();
      peer.waiting.get(data.seq as number)?.(data);
      peer.waiting.delete(data.seq as number);
    };
    if (where === 'worker') {
      const w = new Worker(url, { type: 'module' });
      w.onmessage = (ev) => onReply(ev.data);
      peer = new Peer(where, (m) => w.postMessage(m), () => w.terminate());
    } else {
      let win: Window;
      let frame: HTMLIFrameElement | null = null;
      if (where === 'frame') {
        frame = document.createElement('iframe');
        frame.src = url;
        document.body.append(frame);
        win = frame.contentWindow as Window;
      } else {
        win = window.open(url, '_blank') as Window;
      }
      const listener = (ev: MessageEvent) => {
        if (ev.source === win) onReply(ev.data);
      };
      window.addEventListener('message', listener);
      peer = new Peer(where, (m) => win.postMessage(m, location.origin), () => {
        window.removeEventListener('message', listener);
        if (frame) frame.remove();
        else win.close();
      });
    }
    await timeout(started, `the ${where} peer did not start`);
    return peer;
  }

  /** Runs a command there; resolves with its answer (an error is an answer: { error }). */
  send(cmd: PeerCommand): Promise<PeerReply> {
    const seq = ++this.seq;
    const reply = new Promise<PeerReply>((resolve) => this.waiting.set(seq, resolve));
    this.post({ ...cmd, seq });
    return timeout(reply, `the ${this.where} peer did not answer ${JSON.stringify(cmd)}`);
  }

  /** The error code of a command that must fail, else throws. */
  async fails(cmd: PeerCommand): Promise<{ code: string | null; message: string }> {
    const r = await this.send(cmd);
    if (!('error' in r)) throw new Error(`${JSON.stringify(cmd)} in the ${this.where} succeeded; it should have failed`);
    return r.error;
  }

  /** Runs a command that must succeed; returns its answer. */
  async must(cmd: PeerCommand): Promise<{ names?: string[]; values?: (number | undefined)[] }> {
    const r = await this.send(cmd);
    if ('error' in r) throw new Error(`${JSON.stringify(cmd)} in the ${this.where} failed: ${r.error.code} ${r.error.message}`);
    return r;
  }

  /** Ends it (the page closed, the frame removed, the worker terminated) without closing its storage. */
  kill(): void {
    this.end();
  }
}

function timeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${PEER_TIMEOUT_MS / 1000} s`)), PEER_TIMEOUT_MS)))]).finally(() => clearTimeout(timer));
}
