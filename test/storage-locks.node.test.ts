// DirectoryStorage's one-writer lock, across processes (fixtures/storage-child.mjs)
// and within one: the second writer is refused with STORAGE_LOCKED (issue 10's
// two writers storing 60 checkpoints each), or waits; readOnly lists and
// restores beside a writer and refuses writes; the lock goes with close(), a
// normal exit and SIGTERM, and a writer killed with SIGKILL is taken over at
// once (same machine) or once its lock is stale (another machine); a writer
// that lost its lock writes nothing. And NO_CHECKPOINT for a checkpoint that
// retention deletes while another reader reads it. Node only.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, StateStore, StorageError } from './_backend.js';
import { DirectoryStorage } from '../dist/index.js';
import { rejectsKs } from './_util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'keystate-locks-'));
let dirs = 0;
const freshDir = () => {
  const d = path.join(tmpRoot, `d${++dirs}`);
  fs.mkdirSync(d);
  return d;
};
const owner = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'LOCK', 'owner'), 'utf8')) as { pid: number; host: string; staleMs: number; token: string };
const incremental = { incremental: true, maxIncrementals: 1000, maxChainRatio: 0 };

type Reply = { ok?: true; error?: { code: string | null; message: string }; names?: string[]; pid?: number; readOnly?: boolean };

/** A child process with a DirectoryStorage on `dir`, driven by commands (fixtures/storage-child.mjs). */
class Child {
  readonly p: ChildProcess;
  readonly exited: Promise<void>;
  private replies: ((r: Reply) => void)[] = [];
  private ready: Promise<unknown>;

  constructor(dir: string) {
    this.p = spawn(process.execPath, [path.join(here, 'fixtures', 'storage-child.mjs'), dir], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.exited = new Promise((resolve) => this.p.on('exit', () => resolve()));
    let started: (v: unknown) => void;
    this.ready = new Promise((r) => (started = r));
    readline.createInterface({ input: this.p.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line);
      if ('ready' in msg) started(msg.ready);
      else this.replies.shift()?.(msg);
    });
  }

  get pid(): number {
    return this.p.pid as number;
  }

  async send(cmd: object): Promise<Reply> {
    await this.ready;
    const reply = new Promise<Reply>((resolve) => this.replies.push(resolve));
    this.p.stdin!.write(`${JSON.stringify(cmd)}\n`);
    return reply;
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    this.p.kill(signal);
    await this.exited;
  }
}

const L = suite('DirectoryStorage lock');
const children: Child[] = [];
const child = (dir: string) => {
  const c = new Child(dir);
  children.push(c);
  return c;
};
L.after.each(async () => {
  for (const c of children.splice(0)) if (c.p.exitCode === null && c.p.signalCode === null) await c.kill('SIGKILL');
});
L.after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

L('issue 10: two processes storing 60 checkpoints each: the second is refused with STORAGE_LOCKED, waits, then writes; nothing is lost', async () => {
  const dir = freshDir();
  const [a, b] = [child(dir), child(dir)];
  assert.equal((await a.send({ op: 'open' })).ok, true, 'the first writer opens');
  const refused = await b.send({ op: 'open' });
  assert.is(refused.error?.code, 'STORAGE_LOCKED', 'the second writer is refused at open');
  assert.match(refused.error?.message ?? '', `pid ${a.pid}`, 'naming the process that holds it');
  assert.match(refused.error?.message ?? '', /wait: true/, 'and saying how to wait');

  // The second waits while the first stores its 60 checkpoints.
  const waiting = b.send({ op: 'open', opts: { lock: { wait: true } } });
  const one = await a.send({ op: 'checkpoints', n: 60, tag: 'A' });
  assert.is(one.names?.length, 60, `the first stored 60: ${JSON.stringify(one.error)}`);

  // Beside the writer, a read-only open lists and restores all of it, and refuses writes.
  const reader = await DirectoryStorage.open(dir, { readOnly: true });
  assert.equal((await reader.list()).map((c) => c.name), one.names, 'every one of the 60 is listed');
  const v = (await StateStore.restoreFrom(reader)).valueState<number>('v', { codec: 'number' });
  for (let i = 1; i <= 60; i++) assert.is(v.get(`A-${i}`), i);
  await rejectsKs(() => reader.begin(100), StorageError, 'STORAGE_READ_ONLY', 'begin on a read-only storage');
  await rejectsKs(() => reader.retain(1), StorageError, 'STORAGE_READ_ONLY', 'retain on a read-only storage');

  assert.equal((await a.send({ op: 'close' })).ok, true);
  assert.equal((await waiting).ok, true, 'the waiting writer opens once the first closes');
  const two = await b.send({ op: 'checkpoints', n: 60, tag: 'B' });
  assert.is(two.names?.length, 60);
  assert.not.ok(two.names?.some((n) => one.names?.includes(n)), 'no file name handed out twice');
  const listed = await reader.list();
  assert.equal(listed.map((c) => c.name), two.names?.slice(-listed.length), 'the second store\'s chain, whole');
  const w = (await StateStore.restoreFrom(reader)).valueState<number>('v', { codec: 'number' });
  for (let i = 1; i <= 60; i++) assert.is(w.get(`B-${i}`), i);
  await b.send({ op: 'close' });
});

L('a writer killed with SIGKILL: its lock stays behind, and the next writer takes it over at once', async () => {
  const dir = freshDir();
  const c = child(dir);
  assert.equal((await c.send({ op: 'open' })).ok, true);
  await rejectsKs(() => DirectoryStorage.open(dir), StorageError, 'STORAGE_LOCKED', 'while it runs');
  await c.kill('SIGKILL');
  assert.is(owner(dir).pid, c.pid, 'no exit handler ran: the dead process\'s lock is still there');
  const s = await DirectoryStorage.open(dir); // no wait: its pid is gone on this machine
  assert.is(owner(dir).pid, process.pid, 'this process holds it now');
  await s.close();
  assert.not.ok(fs.existsSync(path.join(dir, 'LOCK')), 'close() removes it');
});

L('a writer killed on another machine (as seen over a shared file system): its lock is taken over once stale', async () => {
  const dir = freshDir();
  const c = child(dir);
  assert.equal((await c.send({ op: 'open', opts: { lock: { staleMs: 2000 } } })).ok, true);
  await c.kill('SIGKILL');
  // As it would look from another host: its pid says nothing here. (Rewriting the file leaves LOCK's mtime.)
  fs.writeFileSync(path.join(dir, 'LOCK', 'owner'), JSON.stringify({ ...owner(dir), host: 'another-host' }));
  const s = await DirectoryStorage.open(dir, { lock: { wait: true, timeoutMs: 30_000, staleMs: 2000 } });
  assert.is(owner(dir).pid, process.pid);
  await s.close();
});

L('staleness: a fresh lock is refused, a stale one taken over, never sooner than its holder\'s own staleMs', async () => {
  const dir = freshDir();
  const lock = path.join(dir, 'LOCK');
  const foreign = (staleMs: number, mtimeAgoMs: number) => {
    fs.rmSync(lock, { recursive: true, force: true });
    fs.mkdirSync(lock);
    fs.writeFileSync(path.join(lock, 'owner'), JSON.stringify({ pid: 1, host: 'another-host', machine: 'x', token: 'f'.repeat(32), staleMs, since: 0 }));
    const t = new Date(Date.now() - mtimeAgoMs);
    fs.utimesSync(lock, t, t);
  };
  foreign(2000, -60_000); // touched "in the future": fresh however slow this machine is
  const e = await rejectsKs(() => DirectoryStorage.open(dir, { lock: { staleMs: 2000 } }), StorageError, 'STORAGE_LOCKED', 'fresh');
  assert.match(e.message, /another-host/);
  foreign(600_000, 60_000); // a minute old, but its holder counts 10 minutes as stale
  await rejectsKs(() => DirectoryStorage.open(dir, { lock: { staleMs: 2000 } }), StorageError, 'STORAGE_LOCKED', 'stale for us, not for its holder');
  foreign(2000, 60_000);
  const s = await DirectoryStorage.open(dir, { lock: { staleMs: 2000 } });
  assert.is(owner(dir).pid, process.pid, 'a stale lock is taken over');
  await s.close();
  // A lock directory without an owner file, older than a second: a holder killed before it wrote one.
  fs.mkdirSync(lock);
  fs.utimesSync(lock, new Date(Date.now() - 5000), new Date(Date.now() - 5000));
  await (await DirectoryStorage.open(dir)).close();
});

L('the lock goes with a normal exit and with SIGTERM', async () => {
  for (const end of ['exit', 'SIGTERM'] as const) {
    const dir = freshDir();
    const c = child(dir);
    assert.equal((await c.send({ op: 'open' })).ok, true);
    assert.ok(fs.existsSync(path.join(dir, 'LOCK')));
    if (end === 'exit') {
      c.p.stdin!.write(`${JSON.stringify({ op: 'exit' })}\n`);
      await c.exited;
    } else {
      await c.kill('SIGTERM');
    }
    assert.not.ok(fs.existsSync(path.join(dir, 'LOCK')), `${end}: released`);
  }
});

L('within one process: a second writer is refused, waits when asked to, or gives up after timeoutMs', async () => {
  const dir = freshDir();
  const a = await DirectoryStorage.open(dir);
  assert.is(a.readOnly, false);
  const e = await rejectsKs(() => DirectoryStorage.open(dir), StorageError, 'STORAGE_LOCKED', 'second writer');
  assert.match(e.message, /this process/);
  assert.match(e.message, new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'names the directory');
  const late = await rejectsKs(() => DirectoryStorage.open(dir, { lock: { wait: true, timeoutMs: 50 } }), StorageError, 'STORAGE_LOCKED', 'timeout');
  assert.match(late.message, /after waiting \d+ ms/);
  await rejectsKs(() => DirectoryStorage.open(dir, { lock: { timeoutMs: 0 } }), StorageError, 'STORAGE_LOCKED', 'timeoutMs 0');

  const waiting = DirectoryStorage.open(dir, { lock: { wait: true } });
  const store = await StateStore.create();
  store.valueState<number>('v', { codec: 'number' }).set('k', 1);
  await store.checkpointTo(a);
  await a.close();
  await a.close(); // twice is fine
  await rejectsKs(() => a.list(), StorageError, 'STORAGE_IO', 'list after close');
  await rejectsKs(() => store.checkpointTo(a), StorageError, 'STORAGE_IO', 'a checkpoint after close');
  const b = await waiting;
  assert.is((await StateStore.restoreFrom(b)).valueState<number>('v', { codec: 'number' }).get('k'), 1);
  await b.close();
});

L('close() aborts a writer that has not committed, and waits for one that is committing', async () => {
  const dir = freshDir();
  const s = await DirectoryStorage.open(dir);
  const meta = (id: number) => ({ id, parentId: null, kind: 'full' as const, storeId: '0'.repeat(32), checksum: '0'.repeat(16), bytes: 1000, createdAt: 0 });
  const idle = await s.begin(1);
  await idle.write(new Uint8Array(1000));
  const busy = await s.begin(2);
  await busy.write(new Uint8Array(1000));
  const committed = busy.commit(meta(2));
  await s.close();
  assert.is((await committed).id, 2, 'the commit under way went through');
  await rejectsKs(() => idle.commit(meta(1)), StorageError, 'STORAGE_IO', 'commit after close');
  const r = await DirectoryStorage.open(dir, { readOnly: true });
  assert.equal((await r.list()).map((c) => c.id), [2]);
  assert.equal(fs.readdirSync(dir).sort(), ['MANIFEST', (await r.list())[0].name], 'no temporary file, no lock');
});

L('a writer that lost its lock (removed, another writer took over) writes nothing, and leaves the new lock alone', async () => {
  const dir = freshDir();
  const a = await DirectoryStorage.open(dir);
  const store = await StateStore.create({ checkpoints: incremental });
  const v = store.valueState<number>('v', { codec: 'number' });
  v.set('k', 1);
  await store.checkpointTo(a);
  fs.rmSync(path.join(dir, 'LOCK'), { recursive: true }); // as a takeover after a long stall would
  const b = await DirectoryStorage.open(dir);
  v.set('k', 2);
  const e = await rejectsKs(() => store.checkpointTo(a), StorageError, 'STORAGE_LOCKED', 'the old writer');
  assert.match(e.message, /lost/);
  await rejectsKs(() => a.begin(9), StorageError, 'STORAGE_LOCKED', 'and from then on at once');
  const listed = (await b.list()).map((c) => c.name);
  assert.equal(fs.readdirSync(dir).sort(), ['LOCK', 'MANIFEST', ...listed].sort(), 'the refused checkpoint left no file');
  await a.close();
  assert.is(owner(dir).pid, process.pid, 'the new writer still holds its lock');
  assert.is(declare1(await StateStore.restoreFrom(b)), 1, 'only what the old writer stored while it held the lock');
  await b.close();
});
const declare1 = (s: StateStore) => s.valueState<number>('v', { codec: 'number' }).get('k');

L('readOnly: needs an existing directory, creates and removes nothing, sees what the writer commits', async () => {
  const missing = path.join(tmpRoot, 'missing');
  await rejectsKs(() => DirectoryStorage.open(missing, { readOnly: true }), StorageError, 'STORAGE_IO', 'missing directory');
  assert.not.ok(fs.existsSync(missing), 'not created');
  const dir = freshDir();
  fs.writeFileSync(path.join(dir, 'MANIFEST.0badf00d.tmp'), 'left by a crash');
  const r = await DirectoryStorage.open(dir, { readOnly: true });
  assert.is(r.readOnly, true);
  assert.equal(r.removedOnOpen, []);
  assert.equal(await r.list(), []);
  const w = await DirectoryStorage.open(dir); // a writer beside it; its open cleans up
  assert.equal(w.removedOnOpen, ['MANIFEST.0badf00d.tmp']);
  const store = await StateStore.create();
  await store.checkpointTo(w);
  assert.is((await r.list()).length, 1, 'the reader sees the commit');
  await r.close(); // holds nothing; fine to close
  await w.close();
});

L('bad access options are INVALID_ARGUMENT, before anything is opened or created', async () => {
  const dir = path.join(tmpRoot, 'never');
  const cases: [string, object][] = [
    ['readOnly not a boolean', { readOnly: 'yes' }],
    ['lock with readOnly', { readOnly: true, lock: { wait: true } }],
    ['create: true with readOnly', { readOnly: true, create: true }],
    ['cleanup: true with readOnly', { readOnly: true, cleanup: true }],
    ['lock not an object', { lock: true }],
    ['lock.wait not a boolean', { lock: { wait: 1 } }],
    ['lock.timeoutMs negative', { lock: { wait: true, timeoutMs: -1 } }],
    ['lock.timeoutMs not a number', { lock: { timeoutMs: '5s' } }],
    ['timeoutMs with wait: false', { lock: { wait: false, timeoutMs: 100 } }],
    ['lock.staleMs below 2000', { lock: { staleMs: 100 } }],
    ['lock.staleMs not finite', { lock: { staleMs: Infinity } }],
  ];
  for (const [what, opts] of cases) await rejectsKs(() => DirectoryStorage.open(dir, opts as never), InvalidArgumentError, 'INVALID_ARGUMENT', what);
  await rejectsKs(() => DirectoryStorage.open('' as string), InvalidArgumentError, 'INVALID_ARGUMENT', 'an empty path');
  assert.not.ok(fs.existsSync(dir));
});

// ---- a checkpoint deleted while it is read -------------------------------------------------------

/** A writer with retain 1 and a store whose every checkpoint is full: each commit deletes the one before. */
async function retention1(dir: string) {
  const writer = await DirectoryStorage.open(dir, { retain: 1 });
  const store = await StateStore.create();
  const v = store.valueState<string>('v', { codec: 'string' });
  let n = 0;
  const next = async () => {
    v.set('k', `v${++n}`.padEnd(200_000, '.'));
    return store.checkpointTo(writer, { incremental: false });
  };
  return { writer, next, value: (s: StateStore) => s.valueState<string>('v', { codec: 'string' }).get('k')?.replace(/\.+$/, '') };
}

/** Runs `f` with fs.promises.open calling `before` first when it opens a file named `name` (once). */
async function onOpenOf<T>(name: () => string, before: () => Promise<unknown>, f: () => Promise<T>): Promise<T> {
  const orig = fsp.open;
  let fired = false;
  fsp.open = (async (p: fs.PathLike, ...rest: unknown[]) => {
    if (!fired && path.basename(String(p)) === name()) {
      fired = true;
      await before();
    }
    return (orig as (...a: unknown[]) => Promise<fsp.FileHandle>)(p, ...rest);
  }) as typeof fsp.open;
  try {
    return await f();
  } finally {
    fsp.open = orig;
  }
}

L('a checkpoint retention deletes while another reader reads it: NO_CHECKPOINT, not STORAGE_IO; restoreFrom takes the new latest', async () => {
  const dir = freshDir();
  const { writer, next, value } = await retention1(dir);
  const first = await next();
  const reader = await DirectoryStorage.open(dir, { readOnly: true });
  const tip = async () => (await reader.list())[0];

  // Listed, then deleted before the reader opens it.
  assert.is((await tip()).name, first.name);
  await next();
  await rejectsKs(() => reader.open(first.name), StorageError, 'NO_CHECKPOINT', 'opened after retention deleted it');
  // Deleted between the reader's look at the listing and its opening of the file.
  const second = await tip();
  const e = await onOpenOf(() => second.name, next, () => rejectsKs(() => reader.open(second.name), StorageError, 'NO_CHECKPOINT', 'deleted as it is opened'));
  assert.match(e.message, /retention deleted it while it was read/);
  // Deleted while open: POSIX keeps an open file's bytes, so the read completes.
  const third = await tip();
  const stream = await reader.open(third.name);
  await next();
  assert.not.ok(fs.existsSync(path.join(dir, third.name)), 'deleted');
  assert.is(value(await StateStore.restore([stream])), 'v3');
  // restoreFrom, its tip deleted as it opens it: lists again and restores the new latest.
  const fourth = await tip();
  assert.is(value(await onOpenOf(() => fourth.name, next, () => StateStore.restoreFrom(reader))), 'v5');
  await writer.close();
});

L.run();
