/**
 * Yielding to the event loop during long work on the caller's thread (an
 * export or a restore in WebAssembly): a macrotask, so that timers, I/O and
 * other writers run in between, which promise callbacks (microtasks) never
 * let happen.
 */

type Scheduler = { yield?: () => Promise<void> };
const g = globalThis as { setImmediate?: (f: () => void) => unknown; scheduler?: Scheduler };

function channel(): () => Promise<void> {
  const ch = new MessageChannel();
  const waiting: (() => void)[] = [];
  ch.port1.onmessage = () => waiting.shift()?.();
  return () =>
    new Promise<void>((resolve) => {
      waiting.push(resolve);
      ch.port2.postMessage(0);
    });
}

/** One macrotask: setImmediate in Node, scheduler.yield or a MessageChannel in browsers (setTimeout clamps to 4 ms). */
export const macrotask: () => Promise<void> =
  typeof g.setImmediate === 'function'
    ? () => new Promise<void>((resolve) => g.setImmediate?.(resolve))
    : typeof g.scheduler?.yield === 'function'
      ? () => (g.scheduler as Required<Scheduler>).yield()
      : typeof MessageChannel === 'function'
        ? channel()
        : () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** Milliseconds of work between yields: short enough for a smooth event loop, long enough to cost little. */
export const SLICE_MS = 4;

/** Yields a macrotask whenever `SLICE_MS` of work have passed since the last yield. */
export class Slicer {
  private last = performance.now();

  /** Call between units of work. */
  async pause(): Promise<void> {
    if (performance.now() - this.last < SLICE_MS) return;
    await macrotask();
    this.last = performance.now();
  }
}
