/**
 * DirectoryStorage: checkpoints in a local directory (Node only; exported
 * from the Node entry point, never from the shared API).
 *
 * Layout: one file per checkpoint, `ckpt-<id>-<seq>.ks`, plus `MANIFEST`, a
 * JSON list of the committed checkpoints. A file counts only once MANIFEST
 * names it. Every update goes to a temporary file in the same directory,
 * is fsynced, renamed into place, and the directory fsynced, so no torn
 * file or manifest is ever visible under its final name. A crash leaves at
 * worst temporary files or checkpoint files MANIFEST does not name; opening
 * the directory removes them.
 *
 * One writer per directory: opening for writing takes the directory's lock
 * (`LOCK`, see dirlock.ts), so a second writer, in this process or another,
 * is refused with StorageError `STORAGE_LOCKED` (or waits, with `lock:
 * { wait: true }`); `close()` and the process's exit release it, and a lock
 * whose process was killed is taken over at once on the same machine, or
 * once stale (`lock.staleMs`) from elsewhere. `readOnly: true` takes no lock:
 * it lists and restores while a writer runs.
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { appended, retention } from './chains.js';
import { type AccessOptions, checkAccess, closeWriter, Commits, type LockOptions } from './access.js';
import { checkStale, DirectoryLock } from './dirlock.js';
import { InvalidArgumentError } from '../errors.js';
import { closedError, deletedWhileRead, ioError, readOnlyError, StorageError } from './errors.js';
import { checkId, checkpointName, copyEntry, checkRetain, CHECKPOINT_NAME, emptyManifest, MANIFEST, type Manifest, manifestText, parseManifest, pick } from './manifest.js';
import { commitChecks, Pieces } from './pieces.js';
import type { CheckpointStorage, CheckpointWriter, StoredCheckpoint } from './types.js';

/** How a DirectoryStorage writer gets the directory's lock. */
export interface DirectoryLockOptions extends LockOptions {
  /**
   * A lock not refreshed for this many ms is stale: its holder is taken to be
   * gone (its process killed or its machine down), and the next writer takes
   * it over. Default 10 000; at least 2 000. The holder refreshes it every
   * quarter of that, so an event loop blocked for longer than three quarters
   * of it can lose the lock to a waiting writer (the holder then refuses to
   * write, with STORAGE_LOCKED). A holder killed on this machine is taken
   * over at once, without waiting for its lock to go stale; an opener never
   * counts a lock stale sooner than its holder's own `staleMs`.
   */
  staleMs?: number;
}

export interface DirectoryStorageOptions extends AccessOptions {
  /** Restorable chains to keep (the last K checkpoints, each with its ancestors); default 2. */
  retain?: number;
  /** Create the directory if it does not exist; default true (false with `readOnly`). */
  create?: boolean;
  /**
   * Remove what a crash left (temporary files, checkpoint files MANIFEST does
   * not name); default true (false with `readOnly`). Turn off to look at
   * what a crash left; to read a directory another process writes, open it
   * with `readOnly: true`.
   */
  cleanup?: boolean;
  /** How to get the writer's lock (not with `readOnly`); default: fail at once with STORAGE_LOCKED if another writer holds it. */
  lock?: DirectoryLockOptions;
}

/** Bytes gathered into one write to the file. */
const WRITE_BUFFER = 256 * 1024;
const TEMP_FILE = /^(?:ckpt-\d+-\d+\.ks|MANIFEST)\.[0-9a-f]+\.tmp$/;

const tempName = (name: string) => `${name}.${randomBytes(4).toString('hex')}.tmp`;

/** Opens `name` in `dir`, fsyncs it, closes it. */
async function syncPath(p: string, flags: number): Promise<void> {
  const fh = await fs.open(p, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Makes renames and deletions in `dir` durable. Windows cannot open a directory; its renames are durable already. */
async function syncDir(dir: string): Promise<void> {
  try {
    await syncPath(dir, constants.O_RDONLY);
  } catch (e) {
    if (process.platform === 'win32' && ['EISDIR', 'EPERM', 'EACCES'].includes((e as { code?: string }).code ?? '')) return;
    throw e;
  }
}

/** Writes `data` fully at the handle's position. */
async function writeAll(fh: fs.FileHandle, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const { bytesWritten } = await fh.write(data, at, data.length - at);
    at += bytesWritten;
  }
}

export class DirectoryStorage implements CheckpointStorage {
  readonly dir: string;
  /** Chains kept by default (see `DirectoryStorageOptions.retain`). */
  readonly retainChains: number;
  /** Files that opening removed: what a crash left behind. */
  readonly removedOnOpen: readonly string[];
  /** Opened with `readOnly: true`: lists and reads, never writes, holds no lock. */
  readonly readOnly: boolean;
  private manifest: Manifest;
  /** Sequence numbers handed out to writers (at least the manifest's). */
  private seq: number;
  /** Listing changes run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The manifest on disk may differ from `manifest` (an update failed midway): reread before the next change. */
  private stale = false;
  /** Dropped files whose deletion failed; retried after the next manifest update. */
  private undeleted = new Set<string>();
  /** The writer's lock; null when read-only. */
  private readonly held: DirectoryLock | null;
  /** Writers begun and not yet committed or aborted: close() aborts them. */
  private readonly writers = new Set<() => Promise<void>>();
  /** Commits under way (settled promises): close() waits for them. */
  private readonly commits = new Commits();
  private closing: Promise<void> | null = null;

  private constructor(dir: string, retain: number, manifest: Manifest, removed: string[], held: DirectoryLock | null) {
    this.dir = dir;
    this.retainChains = retain;
    this.manifest = manifest;
    this.seq = manifest.seq;
    this.removedOnOpen = removed;
    this.held = held;
    this.readOnly = held === null;
  }

  /**
   * Opens (by default creating) a checkpoint directory as its only writer:
   * takes its lock, then removes what a crash left. With `readOnly: true`,
   * opens an existing directory to list and restore, beside a writer.
   * Throws StorageError `STORAGE_LOCKED` if another writer has it open
   * (after waiting, with `lock.wait`), `STORAGE_CORRUPT` if MANIFEST is not a
   * valid keystate manifest, `STORAGE_IO` if it cannot be read (or does not
   * exist, with `create: false` or `readOnly`).
   */
  static async open(dir: string, opts: DirectoryStorageOptions = {}): Promise<DirectoryStorage> {
    const retain = checkRetain(opts.retain ?? 2, 'retain');
    if (typeof dir !== 'string' || dir.length === 0) throw new InvalidArgumentError('INVALID_ARGUMENT', `a checkpoint directory must be a path, not ${JSON.stringify(dir)}`);
    const { readOnly, waitMs } = checkAccess(opts);
    const staleMs = readOnly ? 0 : checkStale(opts.lock?.staleMs);
    const root = path.resolve(dir);
    if (!readOnly && (opts.create ?? true)) {
      try {
        await fs.mkdir(root, { recursive: true });
      } catch (e) {
        throw ioError(`creating checkpoint directory ${root}`, e);
      }
    } else {
      const st = await fs.stat(root).catch((e: unknown) => {
        throw ioError(`opening checkpoint directory ${root}`, e);
      });
      if (!st.isDirectory()) throw new StorageError('STORAGE_IO', `${root} is not a directory`);
    }
    if (readOnly) return new DirectoryStorage(root, retain, await readManifest(root), [], null);
    // Everything below runs under the lock: another writer can neither list nor remove meanwhile.
    const held = await DirectoryLock.acquire(root, staleMs, waitMs);
    try {
      const { manifest, removed } = await DirectoryStorage.recover(root, opts.cleanup ?? true);
      return new DirectoryStorage(root, retain, manifest, removed, held);
    } catch (e) {
      await held.release().catch(() => undefined);
      throw e;
    }
  }

  /** Reads MANIFEST and (with `cleanup`) removes what a crash left. */
  private static async recover(root: string, cleanup: boolean): Promise<{ manifest: Manifest; removed: string[] }> {
    const manifest = await readManifest(root);
    const removed: string[] = [];
    if (cleanup) {
      const listed = new Set(manifest.checkpoints.map((c) => c.name));
      let files: string[];
      try {
        files = await fs.readdir(root);
      } catch (e) {
        throw ioError(`listing ${root}`, e);
      }
      for (const f of files) {
        if (TEMP_FILE.test(f) || (CHECKPOINT_NAME.test(f) && !listed.has(f))) {
          try {
            await fs.rm(path.join(root, f), { force: true });
          } catch (e) {
            throw ioError(`removing ${f}, left in ${root} by an interrupted checkpoint`, e);
          }
          removed.push(f);
        }
      }
      if (removed.length > 0) await syncDir(root).catch(() => undefined);
    }
    return { manifest, removed: removed.sort() };
  }

  /**
   * Releases the writer's lock (another writer may open the directory from
   * then on) once the commits under way are done; writers not yet committing
   * are aborted. Every method fails from then on. Resolves once the lock is
   * released. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= closeWriter(this.writers, this.commits, this.queue, this.held);
    return this.closing;
  }

  async list(): Promise<StoredCheckpoint[]> {
    if (this.closing) throw closedError(this.dir);
    await this.fresh();
    return this.manifest.checkpoints.map(copyEntry);
  }

  async begin(id: number): Promise<CheckpointWriter> {
    checkId(id);
    this.writable('write a checkpoint');
    const name = checkpointName(id, ++this.seq);
    const tmp = path.join(this.dir, tempName(name));
    let fh: fs.FileHandle | null;
    try {
      fh = await fs.open(tmp, 'wx');
    } catch (e) {
      throw ioError(`creating a file for checkpoint ${id} in ${this.dir}`, e);
    }
    let failed = false;
    let done = false;
    const fail = async () => {
      failed = true;
      this.writers.delete(abort);
      await fh?.close().catch(() => undefined);
      fh = null;
      await fs.rm(tmp, { force: true }).catch(() => undefined);
    };
    const abort = async () => {
      done = true;
      if (!failed) await fail();
    };
    this.writers.add(abort);
    const pieces = new Pieces(WRITE_BUFFER, (piece) => writeAll(fh as fs.FileHandle, piece), fail, `writing checkpoint ${id} to ${tmp}`);
    return {
      write: async (chunk) => {
        if (done || failed || !fh) throw new StorageError('STORAGE_IO', `checkpoint ${id}: write after the writer was closed`);
        await pieces.write(chunk);
      },
      commit: (meta, retain) => this.commits.run(async () => {
        if (done || failed || !fh) throw new StorageError('STORAGE_IO', `checkpoint ${id}: commit after the writer was closed`);
        done = true;
        this.writers.delete(abort);
        const keep = await commitChecks(meta, id, retain, this.retainChains, pieces.written, fail);
        await pieces.flush();
        let renaming = false;
        try {
          await (fh as fs.FileHandle).sync();
          await fh.close();
          fh = null;
          // A writer that lost its lock must not give its file a name: a new writer may use it.
          await (this.held as DirectoryLock).verify();
          renaming = true;
          await fs.rename(tmp, path.join(this.dir, name));
          await syncDir(this.dir);
        } catch (e) {
          await fail();
          // The file may have been renamed already; the manifest does not name it, so it can go.
          if (renaming) await fs.rm(path.join(this.dir, name), { force: true }).catch(() => undefined);
          throw ioError(`storing checkpoint ${id} in ${this.dir}`, e);
        }
        const stored: StoredCheckpoint = { ...pick(meta), name };
        await this.update(
          `listing checkpoint ${id}`,
          (list) => appended(list, stored),
          keep,
          name,
        );
        return copyEntry(stored);
      }),
      abort,
    };
  }

  async open(name: string): Promise<ReadableStream<Uint8Array>> {
    if (this.closing) throw closedError(this.dir);
    await this.fresh();
    if (!this.manifest.checkpoints.some((c) => c.name === name)) {
      throw new StorageError('NO_CHECKPOINT', `${this.dir} lists no checkpoint named ${JSON.stringify(name)}`);
    }
    const file = path.join(this.dir, name);
    /** A failed read: NO_CHECKPOINT if retention (this writer's, or another process's) deleted the file meanwhile. */
    const failure = async (what: string, e: unknown) => {
      const listed = await readManifest(this.dir).then((m) => m.checkpoints.some((c) => c.name === name), () => true);
      return listed ? ioError(what, e) : deletedWhileRead(this.dir, name, e);
    };
    let fh: fs.FileHandle | null;
    try {
      fh = await fs.open(file, 'r');
    } catch (e) {
      throw await failure(`opening checkpoint file ${file}`, e);
    }
    const close = async () => {
      const h = fh;
      fh = null;
      await h?.close().catch(() => undefined);
    };
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          try {
            const buf = new Uint8Array(64 * 1024);
            const { bytesRead } = await (fh as fs.FileHandle).read(buf, 0, buf.length, null);
            if (bytesRead === 0) {
              await close();
              controller.close();
            } else {
              controller.enqueue(buf.subarray(0, bytesRead));
            }
          } catch (e) {
            await close();
            controller.error(await failure(`reading checkpoint file ${file}`, e));
          }
        },
        cancel: close,
      },
      { highWaterMark: 0 },
    );
  }

  async retain(keep: number): Promise<string[]> {
    const k = checkRetain(keep, 'keep');
    this.writable('apply retention');
    return this.update('applying retention', (list) => list, k, null);
  }

  /** Throws unless this storage may write now: not read-only, not closed, the lock not known lost. */
  private writable(what: string): void {
    if (this.readOnly) throw readOnlyError(this.dir, what);
    if (this.closing) throw closedError(this.dir);
    const lost = this.held?.lostError();
    if (lost) throw lost;
  }

  /** Rereads the manifest if an update failed midway, or if another process writes it (read-only, or the lock lost). */
  private async fresh(): Promise<void> {
    if (!this.stale && !this.readOnly && !this.held?.lost) return;
    this.manifest = await readManifest(this.dir);
    this.seq = Math.max(this.seq, this.manifest.seq);
    this.stale = false;
  }

  /**
   * Changes the listing: `change` the list, apply retention, write the
   * manifest durably, then delete the files it dropped. Returns the names
   * deleted. `added` names the file this update lists, if any: on failure
   * before the new manifest is in place, that file is removed again.
   */
  private update(what: string, change: (l: StoredCheckpoint[]) => StoredCheckpoint[], keep: number, added: string | null): Promise<string[]> {
    const run = async (): Promise<string[]> => {
      let renamed = false;
      try {
        // Never write over another writer's listing: the lock must still be this storage's.
        await (this.held as DirectoryLock).verify();
        await this.fresh();
        const { kept, dropped } = retention(change(this.manifest.checkpoints), keep);
        const next: Manifest = { ...emptyManifest(), seq: Math.max(this.seq, this.manifest.seq), checkpoints: kept };
        const deleted = dropped.map((c) => c.name);
        const unchanged = deleted.length === 0 && added === null;
        if (!unchanged) {
          const file = path.join(this.dir, MANIFEST);
          const tmp = path.join(this.dir, tempName(MANIFEST));
          try {
            const fh = await fs.open(tmp, 'wx');
            try {
              await writeAll(fh, new TextEncoder().encode(manifestText(next)));
              await fh.sync();
            } finally {
              await fh.close();
            }
            await fs.rename(tmp, file);
          } catch (e) {
            await fs.rm(tmp, { force: true }).catch(() => undefined);
            throw e;
          }
          renamed = true;
          await syncDir(this.dir);
          this.manifest = next;
        }
        // Only now, with a durable manifest that no longer names them, may dropped files go.
        for (const name of [...this.undeleted, ...deleted]) this.undeleted.add(name);
        const gone: string[] = [];
        for (const name of this.undeleted) {
          try {
            await fs.rm(path.join(this.dir, name), { force: true });
            this.undeleted.delete(name);
            gone.push(name);
          } catch {
            // Left for the next update, or for the next open's cleanup.
          }
        }
        return gone.filter((n) => deleted.includes(n));
      } catch (e) {
        if (renamed) {
          // The new manifest may or may not be durable: read it back before the next change.
          this.stale = true;
        } else if (added !== null && !this.held?.lost) {
          // Unlisted: it can go (unless the lock was lost meanwhile: then the name may be another writer's by now).
          await fs.rm(path.join(this.dir, added), { force: true }).catch(() => undefined);
        }
        throw ioError(`${what} in ${this.dir}`, e);
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }
}

async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, MANIFEST);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return emptyManifest();
    throw ioError(`reading ${file}`, e);
  }
  return parseManifest(text, file);
}
