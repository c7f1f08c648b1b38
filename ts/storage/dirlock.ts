/**
 * The writer's lock of a DirectoryStorage (Node only).
 *
 * `LOCK`, a directory inside the checkpoint directory, made by
 * proper-lockfile: mkdir is atomic (on network file systems too), the holder
 * touches its mtime every `updateMs`, and a lock untouched for `staleMs` is
 * stale: the next writer removes it and takes its place. proper-lockfile
 * removes the lock on `release()` and when the process exits (normal exit,
 * SIGINT, SIGTERM, SIGHUP; through signal-exit).
 *
 * What keystate adds: `LOCK/owner`, written inside the lock directory before
 * it counts as taken (so it always describes this lock): the holder's pid,
 * host, boot and PID namespace, a random token and its staleMs. With it:
 * - a lock whose holder died on this machine (SIGKILL, a crash: no exit
 *   handler ran) is taken over at once, not after staleMs: a pid is checked
 *   only where it means the same process (same host, boot and PID namespace);
 * - an opener never treats a lock as stale sooner than its holder's staleMs;
 * - the holder checks its token before every MANIFEST update, so a holder
 *   that lost the lock (its event loop blocked past staleMs while another
 *   writer took over) refuses to write instead of overwriting the other's.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { lock as Lock, unlock as Unlock } from 'proper-lockfile';
import { InvalidArgumentError } from '../errors.js';
import { lockedError } from './access.js';
import { ioError, StorageError } from './errors.js';

/** The lock directory's name inside the checkpoint directory. */
export const LOCK = 'LOCK';
const OWNER = 'owner';

/** proper-lockfile's floor for its stale time. */
export const MIN_STALE_MS = 2000;
export const DEFAULT_STALE_MS = 10_000;

/** What `LOCK/owner` says. */
interface Owner {
  pid: number;
  host: string;
  /** Boot and PID namespace (Linux), where a pid names one process. */
  machine: string;
  token: string;
  staleMs: number;
  /** When the lock was taken (ms since the epoch). */
  since: number;
}

const readText = (p: string) => {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return null;
  }
};

let machineId: string | undefined;

/**
 * This machine as a pid sees it. Where the boot or the PID namespace cannot be
 * read (not Linux), only the host name counts: other systems have no PID
 * namespaces that a process could share a directory across.
 */
function machine(): string {
  if (machineId !== undefined) return machineId;
  if (process.platform !== 'linux') return (machineId = process.platform);
  const boot = readText('/proc/sys/kernel/random/boot_id');
  let ns: string | null = null;
  try {
    ns = fs.readlinkSync('/proc/self/ns/pid');
  } catch {
    // Unknown: never the same as another process's, so its pid is never trusted.
  }
  return (machineId = boot && ns ? `linux ${boot} ${ns}` : `unknown ${randomBytes(8).toString('hex')}`);
}

/** The part of proper-lockfile used here. */
interface Lockfile {
  lock: typeof Lock;
  unlock: typeof Unlock;
}

let loaded: Promise<Lockfile> | undefined;

/** proper-lockfile, loaded on the first lock: it installs exit handlers (signal-exit) when it loads. */
const lockfile = () => (loaded ??= import('proper-lockfile').then((m): Lockfile => m.default));

/** False only if the process `pid` is known to be gone (or a zombie). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as { code?: string }).code !== 'ESRCH';
  }
  // A killed child its parent has not reaped yet still has a pid: state Z.
  const stat = process.platform === 'linux' ? readText(`/proc/${pid}/stat`) : null;
  const state = stat?.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

function parseOwner(text: string | null): Owner | null {
  if (text === null) return null;
  try {
    const o = JSON.parse(text) as Partial<Owner>;
    const ok = Number.isSafeInteger(o.pid) && typeof o.host === 'string' && typeof o.machine === 'string' &&
      typeof o.token === 'string' && typeof o.staleMs === 'number' && typeof o.since === 'number';
    return ok ? (o as Owner) : null;
  } catch {
    return null; // torn (its writer died mid-write) or foreign: unknown
  }
}

/** The owner of the lock `lockDir`; null if there is none (no lock, or one whose owner file is missing or unreadable). */
const readOwner = async (lockDir: string): Promise<Owner | null> =>
  parseOwner(await fs.promises.readFile(path.join(lockDir, OWNER), 'utf8').catch(() => null));

/** The owner's token, null if the lock or its owner file is gone; throws on other errors (EMFILE, EIO: nothing is known). */
async function ownerToken(lockDir: string): Promise<string | null> {
  try {
    return parseOwner(await fs.promises.readFile(path.join(lockDir, OWNER), 'utf8'))?.token ?? null;
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return null;
    throw e;
  }
}

/**
 * True if `o`'s process is known to be gone: it ran on this machine (a pid
 * means the same process there), and is not this process (a worker thread of
 * it may hold the lock: then only staleness counts).
 */
const dead = (o: Owner) => o.host === os.hostname() && o.machine === machine() && o.pid !== process.pid && !alive(o.pid);

/**
 * A holder writes its owner file right after it makes the lock directory,
 * before the lock counts as taken. A lock directory older than this without
 * one is a holder killed in between (or one whose file was torn), not one
 * still about to write it.
 */
const OWNERLESS_MS = 1000;

/** True if `lockDir` exists without an owner file (readOwner found none) and is older than OWNERLESS_MS. */
async function orphaned(lockDir: string): Promise<boolean> {
  const st = await fs.promises.stat(lockDir).catch(() => null);
  return st !== null && st.mtimeMs < Date.now() - OWNERLESS_MS && (await readOwner(lockDir)) === null;
}

/** A description of the holder for error messages. */
const describe = (o: Owner | null) =>
  o ? `another DirectoryStorage (pid ${o.pid}${o.pid === process.pid && o.host === os.hostname() ? ', this process' : ''} on ${o.host}, since ${new Date(o.since).toISOString()})` : 'another DirectoryStorage';

/**
 * The file system proper-lockfile uses for one lock: its mkdir writes the
 * owner file into the new lock directory before proper-lockfile sets the
 * directory's mtime (its update check compares that mtime, so nothing may
 * change the directory after), and its rmdir removes the directory with the
 * file. `removes: false` removes nothing: to let go of a lock that is no
 * longer ours.
 */
function lockFs(owner: Owner | null, removes = true): object {
  const noop = (_p: string, cb: (e: NodeJS.ErrnoException | null) => void) => cb(null);
  return {
    ...fs,
    mkdir(p: string, cb: (e: NodeJS.ErrnoException | null) => void) {
      fs.mkdir(p, (err) => {
        if (err || !owner) return cb(err);
        fs.writeFile(path.join(p, OWNER), JSON.stringify(owner), { flag: 'wx' }, (e) => {
          if (!e) return cb(null);
          fs.rm(p, { recursive: true, force: true }, () => cb(e));
        });
      });
    },
    rmdir: removes ? (p: string, cb: (e: NodeJS.ErrnoException | null) => void) => fs.rm(p, { recursive: true }, cb) : noop,
    rmdirSync: removes ? (p: string) => fs.rmSync(p, { recursive: true, force: true }) : () => undefined,
  };
}

/** @internal Checks `staleMs` (a DirectoryStorage lock option). */
export function checkStale(v: unknown): number {
  if (v === undefined) return DEFAULT_STALE_MS;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < MIN_STALE_MS) {
    throw new InvalidArgumentError('INVALID_ARGUMENT', `lock.staleMs must be a number of ms >= ${MIN_STALE_MS}, not ${String(v)}`);
  }
  return v;
}

/** A held lock. */
export class DirectoryLock {
  /** Why the lock is no longer ours, once it is not. */
  lost: Error | null = null;
  private released = false;

  private constructor(
    private readonly dir: string,
    private readonly lockDir: string,
    private readonly token: string,
    private readonly unlock: () => Promise<void>,
  ) {}

  /**
   * Takes the lock of `dir` (which exists), waiting up to `waitMs` (0: not at
   * all) while another writer holds it. Throws StorageError `STORAGE_LOCKED`.
   */
  static async acquire(dir: string, staleMs: number, waitMs: number): Promise<DirectoryLock> {
    const lockDir = path.join(dir, LOCK);
    const t0 = Date.now();
    for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
      let holder = await readOwner(lockDir);
      if (holder ? dead(holder) : await orphaned(lockDir)) {
        // Its process is gone: make the lock stale for proper-lockfile, which then removes it
        // and takes it. Only if it is still that holder's (another opener may have been first).
        const now = await readOwner(lockDir);
        if (now?.token === holder?.token && (holder || (await orphaned(lockDir)))) await fs.promises.utimes(lockDir, 0, 0).catch(() => undefined);
        holder = null;
      }
      const stale = Math.max(staleMs, holder?.staleMs ?? 0);
      const owner: Owner = { pid: process.pid, host: os.hostname(), machine: machine(), token: randomBytes(16).toString('hex'), staleMs: stale, since: Date.now() };
      let held: DirectoryLock | null = null;
      try {
        const release = await (await lockfile()).lock(dir, {
          lockfilePath: lockDir,
          realpath: false,
          stale,
          // Touched four times per stale period: a holder survives an event loop blocked for 3/4 of it.
          update: Math.max(1000, stale / 4),
          fs: lockFs(owner),
          onCompromised: (e) => {
            if (held) held.lost = e;
          },
        });
        held = new DirectoryLock(dir, lockDir, owner.token, release);
        return held;
      } catch (e) {
        if ((e as { code?: string }).code !== 'ELOCKED') throw ioError(`locking ${dir} for writing`, e);
      }
      const waited = Date.now() - t0;
      if (waited >= waitMs) throw lockedError(dir, describe(holder ?? (await readOwner(lockDir))), waitMs > 0 ? waited : 0);
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, waitMs - waited)));
    }
  }

  /** StorageError `STORAGE_LOCKED` if the lock is known to be lost, else null. */
  lostError(): StorageError | null {
    if (!this.lost) return null;
    return new StorageError(
      'STORAGE_LOCKED',
      `${this.dir} lost its writer's lock (${this.lost.message}): another writer may have taken over, so this one writes nothing more; close it and open the directory again`,
      this.lost,
    );
  }

  /** Throws StorageError `STORAGE_LOCKED` unless the lock is still this one's (its owner file says so). */
  async verify(): Promise<void> {
    if (!this.lost) {
      let token: string | null;
      try {
        token = await ownerToken(this.lockDir);
      } catch (e) {
        throw ioError(`checking the writer's lock of ${this.dir}`, e);
      }
      if (token !== this.token) this.lost = new Error(`${path.join(this.lockDir, OWNER)} ${token === null ? 'is gone' : 'names another writer'}`);
    }
    const e = this.lostError();
    if (e) throw e;
  }

  /** Lets go of the lock: removes it if it is still this one's. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const ours = await this.verify().then(() => true, () => false);
    try {
      if (ours) await this.unlock();
      // Not ours: proper-lockfile forgets it (no more updates, no removal on exit) and removes nothing.
      else await (await lockfile()).unlock(this.dir, { lockfilePath: this.lockDir, realpath: false, fs: lockFs(null, false) }).catch(() => undefined);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERELEASED') throw ioError(`releasing the lock of ${this.dir}`, e);
    }
  }
}
