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
 * One writer per directory at a time (no lock is taken).
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { appended, retention } from './chains.js';
import { ioError, StorageError } from './errors.js';
import { checkId, checkpointName, checkRetain, CHECKPOINT_NAME, emptyManifest, MANIFEST, type Manifest, manifestText, parseManifest, pick } from './manifest.js';
import { commitChecks, Pieces } from './pieces.js';
import type { CheckpointStorage, CheckpointWriter, StoredCheckpoint } from './types.js';

export interface DirectoryStorageOptions {
  /** Restorable chains to keep (the last K checkpoints, each with its ancestors); default 2. */
  retain?: number;
  /** Create the directory if it does not exist; default true. */
  create?: boolean;
  /**
   * Remove what a crash left (temporary files, checkpoint files MANIFEST does
   * not name); default true. Turn off to inspect a directory another process
   * is writing.
   */
  cleanup?: boolean;
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
  private manifest: Manifest;
  /** Sequence numbers handed out to writers (at least the manifest's). */
  private seq: number;
  /** Listing changes run one at a time. */
  private lock: Promise<unknown> = Promise.resolve();
  /** The manifest on disk may differ from `manifest` (an update failed midway): reread before the next change. */
  private stale = false;
  /** Dropped files whose deletion failed; retried after the next manifest update. */
  private undeleted = new Set<string>();

  private constructor(dir: string, retain: number, manifest: Manifest, removed: string[]) {
    this.dir = dir;
    this.retainChains = retain;
    this.manifest = manifest;
    this.seq = manifest.seq;
    this.removedOnOpen = removed;
  }

  /**
   * Opens (by default creating) a checkpoint directory, and removes what a
   * crash left. Throws `StorageError` `STORAGE_CORRUPT` if MANIFEST is not
   * a valid keystate manifest.
   */
  static async open(dir: string, opts: DirectoryStorageOptions = {}): Promise<DirectoryStorage> {
    const retain = checkRetain(opts.retain ?? 2, 'retain');
    const root = path.resolve(dir);
    if (opts.create ?? true) {
      try {
        await fs.mkdir(root, { recursive: true });
      } catch (e) {
        throw ioError(`creating checkpoint directory ${root}`, e);
      }
    }
    const manifest = await readManifest(root);
    const removed: string[] = [];
    if (opts.cleanup ?? true) {
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
    return new DirectoryStorage(root, retain, manifest, removed.sort());
  }

  async list(): Promise<StoredCheckpoint[]> {
    await this.fresh();
    return this.manifest.checkpoints.map((c) => ({ ...c }));
  }

  async begin(id: number): Promise<CheckpointWriter> {
    checkId(id);
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
      await fh?.close().catch(() => undefined);
      fh = null;
      await fs.rm(tmp, { force: true }).catch(() => undefined);
    };
    const pieces = new Pieces(WRITE_BUFFER, (piece) => writeAll(fh as fs.FileHandle, piece), fail, `writing checkpoint ${id} to ${tmp}`);
    return {
      write: async (chunk) => {
        if (done || failed || !fh) throw new StorageError('STORAGE_IO', `checkpoint ${id}: write after the writer was closed`);
        await pieces.write(chunk);
      },
      commit: async (meta, retain) => {
        if (done || failed || !fh) throw new StorageError('STORAGE_IO', `checkpoint ${id}: commit after the writer was closed`);
        done = true;
        const keep = await commitChecks(meta, id, retain, this.retainChains, pieces.written, fail);
        await pieces.flush();
        try {
          await (fh as fs.FileHandle).sync();
          await fh.close();
          fh = null;
          await fs.rename(tmp, path.join(this.dir, name));
          await syncDir(this.dir);
        } catch (e) {
          await fail();
          // The file may have been renamed already; the manifest does not name it, so it can go.
          await fs.rm(path.join(this.dir, name), { force: true }).catch(() => undefined);
          throw ioError(`storing checkpoint ${id} in ${this.dir}`, e);
        }
        const stored: StoredCheckpoint = { ...pick(meta), name };
        await this.update(
          `listing checkpoint ${id}`,
          (list) => appended(list, stored),
          keep,
          name,
        );
        return { ...stored };
      },
      abort: async () => {
        done = true;
        if (!failed) await fail();
      },
    };
  }

  async open(name: string): Promise<ReadableStream<Uint8Array>> {
    await this.fresh();
    if (!this.manifest.checkpoints.some((c) => c.name === name)) {
      throw new StorageError('NO_CHECKPOINT', `${this.dir} lists no checkpoint named ${JSON.stringify(name)}`);
    }
    const file = path.join(this.dir, name);
    let fh: fs.FileHandle | null;
    try {
      fh = await fs.open(file, 'r');
    } catch (e) {
      throw ioError(`opening checkpoint file ${file}`, e);
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
            controller.error(ioError(`reading checkpoint file ${file}`, e));
          }
        },
        cancel: close,
      },
      { highWaterMark: 0 },
    );
  }

  async retain(keep: number): Promise<string[]> {
    const k = checkRetain(keep, 'keep');
    return this.update('applying retention', (list) => list, k, null);
  }

  /** Rereads the manifest if an update failed midway. */
  private async fresh(): Promise<void> {
    if (!this.stale) return;
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
        } else if (added !== null) {
          await fs.rm(path.join(this.dir, added), { force: true }).catch(() => undefined);
        }
        throw ioError(`${what} in ${this.dir}`, e);
      }
    };
    const p = this.lock.then(run, run);
    this.lock = p.catch(() => undefined);
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
