/**
 * OpfsStorage: checkpoints in the browser's Origin Private File System, in a
 * sub-directory per storage name (environment-neutral code: in Node,
 * `open` throws STORAGE_UNAVAILABLE).
 *
 * Layout as DirectoryStorage's: one file per checkpoint, `ckpt-<id>-<seq>.ks`,
 * plus `MANIFEST`, the JSON list of committed checkpoints; a file counts only
 * once MANIFEST names it. OPFS has no fsync and no rename over a file; its
 * commit point is `createWritable()`'s `close()`, which replaces the file
 * whole from a swap file (`<name>.crswap` in Chromium). So a checkpoint is
 * written under its final, unique, unlisted name and closed, then MANIFEST is
 * replaced the same way; files it dropped are removed only after that.
 * Durability against power loss is what the browser gives `close()`.
 *
 * A page that dies mid-write leaves at worst an unlisted checkpoint file (the
 * browser removes swap files when the writer's page goes); opening removes
 * it. One writer per storage: opening for writing takes the Web Lock
 * `keystate:opfs:<path>` (the storage's path in OPFS), so a second writer in
 * any page, frame or worker of the origin is refused with STORAGE_LOCKED (or
 * waits, with `lock: { wait: true }`) until `close()` or until the writer's
 * page or worker goes away. `readOnly: true` takes no lock.
 */
import { appended, retention } from './chains.js';
import { checkAccess, closeWriter, Commits } from './access.js';
import { closedError, deletedWhileRead, ioError, readOnlyError, StorageError } from './errors.js';
import { WebLock } from './weblock.js';
import { type BrowserStorageOptions, checkName, hasOpfs, unavailable } from './browser-options.js';
import {
  checkId, checkpointName, checkRetain, CHECKPOINT_NAME, emptyManifest, MANIFEST, type Manifest, manifestText, parseManifest, pick, seqOf,
} from './manifest.js';
import { commitChecks, Pieces } from './pieces.js';
import type { CheckpointStorage, CheckpointWriter, StoredCheckpoint } from './types.js';
import { InvalidArgumentError } from '../errors.js';

/**
 * A directory handle: `FileSystemDirectoryHandle` (DOM). Typed structurally so
 * that keystate's declarations need no DOM library.
 */
export interface DirectoryHandle {
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<object>;
}

export interface OpfsStorageOptions extends BrowserStorageOptions {
  /**
   * The directory that holds the storage's sub-directory; default the OPFS
   * root (`navigator.storage.getDirectory()`).
   */
  directory?: DirectoryHandle;
}

/** Bytes gathered before a write to the file: each write is a round trip to the browser (1 MiB: a third faster than 256 KiB). */
const WRITE_BUFFER = 1024 * 1024;
/** Bytes per read of a checkpoint file: open() never loads a whole file. */
const READ_CHUNK = 1024 * 1024;
/** createWritable()'s swap files, left only if the browser itself stopped mid-write. */
const SWAP_FILE = /^(?:ckpt-\d+-\d+\.ks|MANIFEST)(?:\.\d+)?\.crswap$/;

const named = (e: unknown, name: string) => e instanceof Error && e.name === name;

export class OpfsStorage implements CheckpointStorage {
  readonly kind = 'opfs' as const;
  /** The storage's name: its sub-directory. */
  readonly name: string;
  /** Chains kept by default (see `BrowserStorageOptions.retain`). */
  readonly retainChains: number;
  /** Files that opening removed: what an interrupted checkpoint left. */
  readonly removedOnOpen: readonly string[];
  /** Opened with `readOnly: true`: lists and reads, never writes, holds no lock. */
  readonly readOnly: boolean;
  private readonly dir: FileSystemDirectoryHandle;
  private readonly label: string;
  /** Sequence numbers handed out to writers (at least any in the directory). */
  private seq: number;
  /** Listing changes run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Unlisted files whose removal failed (dropped, or a failed writer's); retried after the next MANIFEST update. */
  private undeleted = new Set<string>();
  /** The writer's lock; null when read-only. */
  private readonly held: WebLock | null;
  /** Writers begun and not yet committed or aborted: close() aborts them. */
  private readonly writers = new Set<() => Promise<void>>();
  /** Commits under way (settled promises): close() waits for them. */
  private readonly commits = new Commits();
  private closing: Promise<void> | null = null;

  private constructor(name: string, dir: FileSystemDirectoryHandle, retain: number, seq: number, removed: string[], held: WebLock | null) {
    this.name = name;
    this.dir = dir;
    this.label = `OPFS directory ${JSON.stringify(name)}`;
    this.retainChains = retain;
    this.seq = seq;
    this.removedOnOpen = removed;
    this.held = held;
    this.readOnly = held === null;
  }

  /**
   * Opens (by default creating) the storage `name` as its only writer: takes
   * its Web Lock, then removes what an interrupted checkpoint left. With
   * `readOnly: true`, opens an existing storage to list and restore, beside a
   * writer. Throws StorageError `STORAGE_LOCKED` if another page, frame or
   * worker has it open for writing (after waiting, with `lock.wait`),
   * `STORAGE_UNAVAILABLE` where OPFS (or, for a writer, Web Locks) is missing
   * or refused, `STORAGE_CORRUPT` if MANIFEST is not a valid keystate
   * manifest, `STORAGE_IO` if it does not exist (`create: false`, `readOnly`).
   */
  static async open(name: string, opts: OpfsStorageOptions = {}): Promise<OpfsStorage> {
    checkName(name);
    const retain = checkRetain(opts.retain ?? 2, 'retain');
    if (opts.directory !== undefined && typeof opts.directory?.getDirectoryHandle !== 'function') {
      throw new InvalidArgumentError('INVALID_ARGUMENT', 'directory must be a FileSystemDirectoryHandle');
    }
    const { readOnly, waitMs } = checkAccess(opts);
    if (!hasOpfs()) throw unavailable('the Origin Private File System (navigator.storage.getDirectory with createWritable) is not available here');
    let parent: FileSystemDirectoryHandle;
    try {
      parent = (opts.directory as FileSystemDirectoryHandle | undefined) ?? (await navigator.storage.getDirectory());
    } catch (e) {
      // Opaque origins and some private modes refuse it (SecurityError).
      throw unavailable('the browser refused the Origin Private File System', e);
    }
    const label = `OPFS directory ${JSON.stringify(name)}`;
    let dir: FileSystemDirectoryHandle;
    try {
      dir = await parent.getDirectoryHandle(name, { create: !readOnly && (opts.create ?? true) });
    } catch (e) {
      throw ioError(`opening ${label}`, e);
    }
    if (readOnly) {
      const seq = (await readManifest(dir, label)).seq;
      return new OpfsStorage(name, dir, retain, seq, [], null);
    }
    // Everything below runs under the lock: another writer can neither list nor remove meanwhile.
    const held = await WebLock.acquire(await lockName(dir, name), label, waitMs);
    try {
      const { seq, removed } = await OpfsStorage.recover(dir, label, opts.cleanup ?? true);
      return new OpfsStorage(name, dir, retain, seq, removed, held);
    } catch (e) {
      await held.release();
      throw e;
    }
  }

  /** Reads MANIFEST and (with `cleanup`) removes what an interrupted checkpoint left. */
  private static async recover(dir: FileSystemDirectoryHandle, label: string, cleanup: boolean): Promise<{ seq: number; removed: string[] }> {
    const manifest = await readManifest(dir, label);
    const listed = new Set(manifest.checkpoints.map((c) => c.name));
    const files: string[] = [];
    try {
      for await (const f of dir.keys()) files.push(f);
    } catch (e) {
      throw ioError(`listing ${label}`, e);
    }
    // Names stay unique even past files that an inspecting open (cleanup: false) leaves.
    const seq = Math.max(manifest.seq, ...files.map(seqOf));
    const removed: string[] = [];
    if (cleanup) {
      for (const f of files) {
        if (!SWAP_FILE.test(f) && !(CHECKPOINT_NAME.test(f) && !listed.has(f))) continue;
        try {
          await dir.removeEntry(f);
          removed.push(f);
        } catch (e) {
          // Held by a writer still open in a live page: unlisted, so harmless; a later open removes it.
          if (named(e, 'NoModificationAllowedError') || named(e, 'NotFoundError')) continue;
          throw ioError(`removing ${f}, left in ${label} by an interrupted checkpoint`, e);
        }
      }
    }
    return { seq, removed: removed.sort() };
  }

  /**
   * Releases the writer's lock (another page or worker may open the storage
   * for writing from then on) once the commits under way are done; writers
   * not yet committing are aborted. Every method fails from then on.
   * Resolves once the lock is released. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= closeWriter(this.writers, this.commits, this.queue, this.held);
    return this.closing;
  }

  async list(): Promise<StoredCheckpoint[]> {
    if (this.closing) throw closedError(this.label);
    return (await this.read()).checkpoints;
  }

  async begin(id: number): Promise<CheckpointWriter> {
    checkId(id);
    this.writable('write a checkpoint');
    const name = checkpointName(id, ++this.seq);
    let w: FileSystemWritableFileStream | null = null;
    try {
      w = await (await this.dir.getFileHandle(name, { create: true })).createWritable();
    } catch (e) {
      await this.discard(name);
      throw ioError(`creating a file for checkpoint ${id} in ${this.label}`, e);
    }
    let failed = false;
    let done = false;
    const fail = async () => {
      failed = true;
      this.writers.delete(abort);
      const writable = w;
      w = null;
      // abort() drops the swap file; the (empty) file under the final name goes next.
      await writable?.abort().catch(() => undefined);
      await this.discard(name);
    };
    const abort = async () => {
      done = true;
      if (!failed) await fail();
    };
    this.writers.add(abort);
    const pieces = new Pieces(
      WRITE_BUFFER,
      (piece) => (w as FileSystemWritableFileStream).write(piece as Uint8Array<ArrayBuffer>),
      fail,
      `writing checkpoint ${id} to ${this.label}`,
    );
    const closed = (what: string) => new StorageError('STORAGE_IO', `checkpoint ${id}: ${what} after the writer was closed`);
    return {
      write: async (chunk) => {
        if (done || failed || !w) throw closed('write');
        await pieces.write(chunk);
      },
      commit: (meta, retain) => this.commits.run(async () => {
        if (done || failed || !w) throw closed('commit');
        done = true;
        this.writers.delete(abort);
        const keep = await commitChecks(meta, id, retain, this.retainChains, pieces.written, fail);
        await pieces.flush();
        try {
          // The browser's commit point for the file: its bytes replace the empty file whole.
          await (w as FileSystemWritableFileStream).close();
          w = null;
          const size = (await (await this.dir.getFileHandle(name)).getFile()).size;
          if (size !== pieces.written) throw new Error(`the file holds ${size} bytes, ${pieces.written} were written`);
        } catch (e) {
          await fail();
          throw ioError(`storing checkpoint ${id} in ${this.label}`, e);
        }
        const stored: StoredCheckpoint = { ...pick(meta), name };
        await this.update(
          `listing checkpoint ${id}`,
          (list) => appended(list, stored),
          keep,
          name,
        );
        return { ...stored };
      }),
      abort,
    };
  }

  async open(name: string): Promise<ReadableStream<Uint8Array>> {
    if (!(await this.list()).some((c) => c.name === name)) {
      throw new StorageError('NO_CHECKPOINT', `${this.label} lists no checkpoint named ${JSON.stringify(name)}`);
    }
    /** A failed read: NO_CHECKPOINT if retention (of this page's writer, or another's) deleted the file meanwhile. */
    const failure = async (what: string, e: unknown) => {
      const listed = await this.read().then((m) => m.checkpoints.some((c) => c.name === name), () => true);
      return listed ? ioError(what, e) : deletedWhileRead(this.label, name, e);
    };
    let file: File;
    try {
      file = await (await this.dir.getFileHandle(name)).getFile();
    } catch (e) {
      throw await failure(`opening checkpoint file ${name} in ${this.label}`, e);
    }
    let at = 0;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          if (at >= file.size) return controller.close();
          try {
            const chunk = new Uint8Array(await file.slice(at, at + READ_CHUNK).arrayBuffer());
            at += chunk.length;
            controller.enqueue(chunk);
          } catch (e) {
            controller.error(await failure(`reading checkpoint file ${name} in ${this.label}`, e));
          }
        },
      },
      { highWaterMark: 0 },
    );
  }

  async retain(keep: number): Promise<string[]> {
    const k = checkRetain(keep, 'keep');
    this.writable('apply retention');
    return this.update('applying retention', (list) => list, k, null);
  }

  /** Throws unless this storage may write now: not read-only, not closed, its lock not taken away. */
  private writable(what: string): void {
    if (this.readOnly) throw readOnlyError(this.label, what);
    if (this.closing) throw closedError(this.label);
    const lost = this.held?.lostError();
    if (lost) throw lost;
  }

  /** The MANIFEST as it is now (read every time: it is small, and another instance may have changed it). */
  private async read(): Promise<Manifest> {
    const m = await readManifest(this.dir, this.label);
    this.seq = Math.max(this.seq, m.seq);
    return m;
  }

  /**
   * Removes an unlisted file. Just after a writer's abort() the browser may
   * hold the file's lock a moment longer: retry briefly, then leave it to
   * the next update's sweep, or the next open's cleanup.
   */
  private async discard(name: string): Promise<void> {
    for (let wait = 5; ; wait *= 2) {
      try {
        await this.remove(name);
        this.undeleted.delete(name);
        return;
      } catch (e) {
        if (!named(e, 'NoModificationAllowedError') || wait > 640) {
          this.undeleted.add(name);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  private async remove(name: string): Promise<void> {
    try {
      await this.dir.removeEntry(name);
    } catch (e) {
      if (!named(e, 'NotFoundError')) throw e;
    }
  }

  /**
   * Changes the listing: `change` the list, apply retention, replace MANIFEST,
   * then remove the files it dropped. Returns the names removed. `added`
   * names the file this update lists, if any: on a failure before the new
   * MANIFEST was closed, that file is removed again.
   */
  private update(what: string, change: (l: StoredCheckpoint[]) => StoredCheckpoint[], keep: number, added: string | null): Promise<string[]> {
    const run = async (): Promise<string[]> => {
      let closing = false;
      try {
        const lost = this.held?.lostError();
        if (lost) throw lost;
        const current = await this.read();
        const { kept, dropped } = retention(change(current.checkpoints), keep);
        const deleted = dropped.map((c) => c.name);
        if (added !== null) {
          // Another page's open (with cleanup) may have removed the still unlisted file meanwhile:
          // never list bytes that are not there. A missing file fails the update (NotFoundError).
          const bytes = (await (await this.dir.getFileHandle(added)).getFile()).size;
          const entry = kept.find((c) => c.name === added);
          if (entry && entry.bytes !== bytes) throw new Error(`${added} holds ${bytes} bytes, the checkpoint has ${entry.bytes}`);
        }
        if (deleted.length > 0 || added !== null) {
          const next: Manifest = { ...emptyManifest(), seq: Math.max(this.seq, current.seq), checkpoints: kept };
          const w = await (await this.dir.getFileHandle(MANIFEST, { create: true })).createWritable();
          try {
            await w.write(new TextEncoder().encode(manifestText(next)));
          } catch (e) {
            await w.abort().catch(() => undefined);
            throw e;
          }
          closing = true;
          // The commit point: MANIFEST is replaced whole, or stays as it was.
          await w.close();
        }
        // Only now, with a MANIFEST that no longer names them, may dropped files go.
        for (const name of deleted) this.undeleted.add(name);
        const gone: string[] = [];
        for (const name of this.undeleted) {
          try {
            await this.remove(name);
            this.undeleted.delete(name);
            gone.push(name);
          } catch {
            // Left for the next update, or for the next open's cleanup.
          }
        }
        return gone.filter((n) => deleted.includes(n));
      } catch (e) {
        // A close() that failed may still have replaced MANIFEST: then the added file is listed, so
        // it stays (the next open removes it if it is not listed).
        if (!closing && added !== null) await this.discard(added);
        throw ioError(`${what} in ${this.label}`, e);
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }
}

/**
 * The Web Lock of the storage `dir`: named after its path from the OPFS root,
 * so that every handle to it (another page's, one passed as `directory`)
 * names the same lock. A directory outside OPFS (a handle the user picked)
 * is named by its own name and the storage's.
 */
async function lockName(dir: FileSystemDirectoryHandle, name: string): Promise<string> {
  const parts = await navigator.storage.getDirectory().then((root) => root.resolve(dir), () => null).catch(() => null);
  return parts ? `keystate:opfs:/${parts.join('/')}` : `keystate:opfs:?/${name}`;
}

async function readManifest(dir: FileSystemDirectoryHandle, label: string): Promise<Manifest> {
  const file = `MANIFEST of ${label}`;
  let text = '';
  for (let attempt = 1; ; attempt++) {
    try {
      text = await (await (await dir.getFileHandle(MANIFEST)).getFile()).text();
      break;
    } catch (e) {
      if (named(e, 'NotFoundError')) return emptyManifest();
      // Replaced between getFile() and reading it (an update of this or another page): read the new one.
      if (named(e, 'NotReadableError') && attempt < 3) continue;
      throw ioError(`reading ${file}`, e);
    }
  }
  // getFileHandle(create) makes an empty MANIFEST before its first content is closed; close()
  // replaces a file whole, so an empty one was never written: nothing is listed yet.
  if (text.length === 0) return emptyManifest();
  return parseManifest(text, file);
}
