/**
 * Another page, frame or worker for browser-storage.test.ts: it opens a
 * browser storage with its own copy of keystate (its own Web Locks client),
 * and does what the suite asks over postMessage. scripts/browser-test.mjs
 * bundles it beside the suites (as every test/_*.peer.ts): a page or frame
 * loads it as `/?suite=_storage.peer`, a worker as `/_storage.peer.js`.
 * The suite's side is `Peer` in _browserstorage.ts.
 */
import { IndexedDbStorage, OpfsStorage, StateStore, type BrowserStorage } from '../dist/index.browser.js';

export type PeerCommand =
  | { op: 'open'; kind: 'opfs' | 'indexeddb'; name: string; opts?: object }
  /** `n` checkpoints of a store of its own (incremental), each after writing `<tag>-<i>` = i. */
  | { op: 'checkpoints'; n: number; tag: string }
  /** Begins checkpoint `id` and writes `bytes` bytes, never to commit (a writer its page abandons). */
  | { op: 'write'; id: number; bytes: number }
  | { op: 'list' }
  /** restoreFrom: answers the values of keys `<tag>-1..n`. */
  | { op: 'restore'; tag: string; n: number }
  | { op: 'close' };

export type PeerReply = { ok: true; names?: string[]; values?: (number | undefined)[] } | { error: { name: string; code: string | null; message: string } };

let storage: BrowserStorage | null = null;
let store: StateStore | null = null;
const writers: unknown[] = []; // kept reachable: an abandoned writer stays open until its page goes

async function run(cmd: PeerCommand): Promise<PeerReply> {
  switch (cmd.op) {
    case 'open':
      storage = await (cmd.kind === 'opfs' ? OpfsStorage.open(cmd.name, cmd.opts) : IndexedDbStorage.open(cmd.name, cmd.opts));
      return { ok: true };
    case 'checkpoints': {
      store ??= await StateStore.create({ checkpoints: { incremental: true, maxIncrementals: 1000, maxChainRatio: 0 } });
      const v = store.valueState<number>('v', { codec: 'number' });
      const names: string[] = [];
      for (let i = 1; i <= cmd.n; i++) {
        v.set(`${cmd.tag}-${i}`, i);
        names.push((await store.checkpointTo(storage as BrowserStorage)).name);
      }
      return { ok: true, names };
    }
    case 'write': {
      const w = await (storage as BrowserStorage).begin(cmd.id);
      writers.push(w);
      await w.write(new Uint8Array(cmd.bytes).fill(2));
      return { ok: true };
    }
    case 'list':
      return { ok: true, names: (await (storage as BrowserStorage).list()).map((c) => c.name) };
    case 'restore': {
      const v = (await StateStore.restoreFrom(storage as BrowserStorage)).valueState<number>('v', { codec: 'number' });
      return { ok: true, values: Array.from({ length: cmd.n }, (_, i) => v.get(`${cmd.tag}-${i + 1}`)) };
    }
    case 'close':
      await storage?.close();
      return { ok: true };
  }
}

const answer = (cmd: PeerCommand & { seq: number }, reply: (r: PeerReply & { seq: number }) => void) =>
  run(cmd).then(
    (r) => reply({ ...r, seq: cmd.seq }),
    (e: unknown) => {
      const err = e as { name?: string; code?: string; message?: string };
      reply({ seq: cmd.seq, error: { name: String(err?.name), code: err?.code ?? null, message: String(err?.message ?? e) } });
    },
  );

if (typeof window === 'undefined') {
  // A dedicated worker.
  const w = self as unknown as { postMessage(m: unknown): void; onmessage: ((ev: MessageEvent) => void) | null };
  w.onmessage = (ev) => void answer(ev.data, (r) => w.postMessage(r));
  w.postMessage({ ready: true });
} else {
  // A page (opened by the suite's page) or a frame in it.
  window.addEventListener('message', (ev) => {
    if (ev.origin !== location.origin || typeof ev.data?.op !== 'string') return;
    void answer(ev.data, (r) => (ev.source as Window).postMessage(r, location.origin));
  });
  ((window.opener as Window | null) ?? window.parent).postMessage({ ready: true }, location.origin);
}
