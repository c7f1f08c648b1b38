/**
 * The writer's lock of a browser storage: an exclusive Web Lock
 * (`navigator.locks`), shared by every page, frame and worker of the origin,
 * named after the storage. The browser releases it when its holder's page or
 * worker goes away (closed, reloaded, crashed, terminated), so a dead writer
 * never keeps it. Environment-neutral code: where Web Locks do not exist
 * (Node, a page served over plain http), taking one throws STORAGE_UNAVAILABLE.
 */
import { lockedError } from './access.js';
import { ioError, StorageError } from './errors.js';

/** The parts of the Web Locks API used here (typed structurally: no DOM library needed by users). */
interface Locks {
  request(name: string, options: { mode: 'exclusive'; ifAvailable?: boolean; signal?: AbortSignal }, callback: (lock: object | null) => unknown): Promise<unknown>;
}

export class WebLock {
  /** Why the lock is no longer held (another context stole it), once it is not. */
  lost: unknown = null;

  private constructor(
    readonly name: string,
    private readonly label: string,
    private readonly letGo: () => void,
    private readonly settled: Promise<unknown>,
  ) {}

  /**
   * Takes the exclusive lock `name` for the storage `label`, waiting up to
   * `waitMs` (0: not at all) while another page or worker holds it. Throws
   * StorageError `STORAGE_LOCKED`, or `STORAGE_UNAVAILABLE` without Web Locks.
   */
  static async acquire(name: string, label: string, waitMs: number): Promise<WebLock> {
    const locks = (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks;
    if (typeof locks?.request !== 'function') {
      throw new StorageError(
        'STORAGE_UNAVAILABLE',
        `${label}: Web Locks (navigator.locks) are not available here (they need a secure context: https or localhost), ` +
          'so this writer cannot be made the only one; serve the page from a secure origin, or open with { readOnly: true }',
      );
    }
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    const abort = Number.isFinite(waitMs) && waitMs > 0 ? new AbortController() : null;
    const timer = abort ? setTimeout(() => abort.abort(), waitMs) : undefined;
    const t0 = Date.now();
    let granted = false;
    let settled!: Promise<unknown>;
    const lock = await new Promise<boolean>((resolve, reject) => {
      const options = waitMs === 0 ? { mode: 'exclusive' as const, ifAvailable: true } : { mode: 'exclusive' as const, ...(abort ? { signal: abort.signal } : {}) };
      // Settles when the lock is released (held resolved), or rejects: aborted while waiting, or stolen.
      settled = locks.request(name, options, (l) => {
        granted = l !== null;
        resolve(granted);
        return granted ? held : undefined;
      });
      settled.catch((e) => (granted ? undefined : reject(e)));
    }).catch((e: unknown) => {
      if (e instanceof Error && e.name === 'AbortError') return false;
      throw ioError(`taking the Web Lock ${JSON.stringify(name)} of ${label}`, e);
    }).finally(() => clearTimeout(timer));
    if (!lock) throw lockedError(label, `another page, frame or worker of this origin (it holds the Web Lock ${JSON.stringify(name)})`, waitMs > 0 ? Date.now() - t0 : 0);
    const w = new WebLock(name, label, letGo, settled.then(() => undefined, () => undefined));
    settled.catch((e) => (w.lost = e));
    return w;
  }

  /** StorageError `STORAGE_LOCKED` if the lock was taken away, else null. */
  lostError(): StorageError | null {
    if (this.lost === null) return null;
    return new StorageError(
      'STORAGE_LOCKED',
      `${this.label} lost its writer's Web Lock ${JSON.stringify(this.name)} (another context took it with steal: true); this one writes nothing more`,
      this.lost,
    );
  }

  /** Releases the lock; resolves once another context can take it. */
  async release(): Promise<void> {
    this.letGo();
    await this.settled;
  }
}
