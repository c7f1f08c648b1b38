/**
 * How a storage is opened (environment-neutral): as its only writer, which
 * takes the storage's lock (a lock directory for DirectoryStorage, a Web Lock
 * for OpfsStorage and IndexedDbStorage), or read-only, which takes none.
 */
import { InvalidArgumentError } from '../errors.js';
import { StorageError } from './errors.js';

/** How an open for writing gets the storage's lock when another writer holds it. */
export interface LockOptions {
  /**
   * Wait until the other writer closes the storage (or its process, page or
   * worker ends), instead of failing at once with StorageError
   * `STORAGE_LOCKED`. Default false, or true when `timeoutMs` is given.
   */
  wait?: boolean;
  /** With `wait`: fail with `STORAGE_LOCKED` if the lock is not free within this many ms; default: no limit. */
  timeoutMs?: number;
}

/** What every storage's `open` takes besides its own options. */
export interface AccessOptions {
  /**
   * Open to read only: `list()`, `open()` and restore work while another
   * process, page or worker writes; `begin()` and `retain()` throw
   * StorageError `STORAGE_READ_ONLY`. Takes no lock, creates nothing and
   * removes nothing (so `create: true`, `cleanup: true` and `lock` are
   * refused with it). Default false: open as the storage's only writer.
   */
  readOnly?: boolean;
  /** How to get the writer's lock (not with `readOnly`); default: fail at once if another writer holds it. */
  lock?: LockOptions;
}

/** @internal The checked access options. */
export interface Access {
  readOnly: boolean;
  /** How long a writer waits for the lock, in ms: 0 (fail at once) .. Infinity (no limit). */
  waitMs: number;
}

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** @internal Throws INVALID_ARGUMENT for options that do not go together or are not of their type. */
export function checkAccess(opts: AccessOptions & { create?: unknown; cleanup?: unknown }): Access {
  const bad = (why: string) => new InvalidArgumentError('INVALID_ARGUMENT', why);
  const { readOnly = false, lock } = opts;
  if (typeof readOnly !== 'boolean') throw bad(`readOnly must be a boolean, not ${String(readOnly)}`);
  if (readOnly) {
    if (lock !== undefined) throw bad('lock is for a writer; a readOnly open takes no lock');
    if (opts.create === true) throw bad('a readOnly open creates nothing (create: true was given)');
    if (opts.cleanup === true) throw bad('a readOnly open removes nothing (cleanup: true was given)');
    return { readOnly, waitMs: 0 };
  }
  if (lock === undefined) return { readOnly, waitMs: 0 };
  if (!isPlain(lock)) throw bad('lock must be an object such as { wait: true, timeoutMs: 5000 }');
  const { wait, timeoutMs } = lock as LockOptions;
  if (wait !== undefined && typeof wait !== 'boolean') throw bad(`lock.wait must be a boolean, not ${String(wait)}`);
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !(timeoutMs >= 0))) {
    throw bad(`lock.timeoutMs must be a number of ms >= 0, not ${String(timeoutMs)}`);
  }
  if (wait === false && timeoutMs !== undefined) throw bad('lock.timeoutMs is how long to wait, but lock.wait is false');
  if (!(wait ?? timeoutMs !== undefined)) return { readOnly, waitMs: 0 };
  return { readOnly, waitMs: timeoutMs ?? Infinity };
}

/**
 * @internal StorageError `STORAGE_LOCKED` for an open refused because `holder`
 * (a description) writes to the storage `label`; `waitedMs` if it waited.
 */
export function lockedError(label: string, holder: string, waitedMs: number, cause?: unknown): StorageError {
  const waited = waitedMs > 0 ? ` and still was after waiting ${waitedMs} ms` : '';
  return new StorageError(
    'STORAGE_LOCKED',
    `${label} is open for writing by ${holder}${waited}. One writer per storage: close() the other one first, ` +
      'open with { lock: { wait: true, timeoutMs } } to wait until it is free, or with { readOnly: true } to list and restore while it writes',
    cause,
  );
}

/** The commits under way of a writable storage, which its `close()` waits for (they may still list their checkpoint). */
export class Commits implements Iterable<Promise<void>> {
  private readonly pending = new Set<Promise<void>>();

  /** Runs a writer's commit, tracked until it settles. */
  run<T>(f: () => Promise<T>): Promise<T> {
    const p = f();
    const settled = p.then(() => undefined, () => undefined);
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
    return p;
  }

  [Symbol.iterator](): Iterator<Promise<void>> {
    return this.pending.values();
  }
}

/**
 * A writable storage's `close()`: aborts the writers not yet committing,
 * waits for the commits under way and the queued listing work, then releases
 * the lock (which `held` holds, if any).
 */
export async function closeWriter(
  writers: Iterable<() => Promise<void>>,
  commits: Iterable<Promise<unknown>>,
  queue: Promise<unknown>,
  held: { release(): Promise<void> } | null | undefined,
): Promise<void> {
  await Promise.all([...writers].map((abort) => abort()));
  await Promise.all([...commits]);
  await queue;
  await held?.release();
}
