// keystate demo: a stream of events counted per user with five state kinds,
// a snapshot taken while writing, a full checkpoint streamed to disk and
// restored, keystate's memory next to a plain JS Map of the same data, and
// periodic incremental checkpoints to a directory by a child process that is
// killed twice (SIGKILL), then restored and verified.
//
//   npm run demo                          (or: node examples/demo.mjs)
//   node examples/demo.mjs --dir /some/dir --events 2000000 --users 200000   (a bigger run)
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectoryStorage, StateStore } from '../dist/index.js';
import { declare as declareCounts, eventStream } from './demo-child.mjs';

// Heap numbers need a real GC between measurements: re-run ourselves with --expose-gc.
if (typeof globalThis.gc !== 'function') {
  const args = [...process.execArgv, '--expose-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)];
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
};
const EVENTS = Number(arg('events', 1_000_000));
const USERS = Number(arg('users', 100_000));
const SNAP_EVENTS = Math.round(EVENTS * 0.05); // events written while a snapshot is open
const TAIL = Math.round(EVENTS * 0.05); // events written while the checkpoint streams
const DIR = resolve(arg('dir', tmpdir()));
if (!(EVENTS >= 1000 && USERS >= 1000)) {
  console.error('usage: node examples/demo.mjs [--events N] [--users N] [--dir DIR]   (N >= 1000)');
  process.exit(2);
}
const SEED = 42;
const TTY = process.stdout.isTTY === true;

// ---- output helpers ---------------------------------------------------------------
const n = (x) => Math.round(x).toLocaleString('en-US');
const mb = (b) => (b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : b >= 1e3 ? `${(b / 1e3).toFixed(1)} kB` : `${b} B`);
const usd = (cents) => `$${(cents / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
const rate = (events, ms) => n(events / (ms / 1000));
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
const say = (s = '') => console.log(s);
// A progress line: rewritten in place on a terminal, silent in logs (the final line is printed).
const progress = (s) => TTY && process.stdout.write(`\r\x1b[K   ${s}`);
const endProgress = () => TTY && process.stdout.write('\r\x1b[K');
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
  return ok ? 'ok' : 'FAILED';
};

// ---- the event stream: seeded, so every run sees the same events ---------------
function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const PAGES = ['/', '/search', '/pricing', '/docs', '/blog', '/cart', '/account', '/product/a', '/product/b', '/product/c', '/help', '/careers'];
const CATEGORIES = ['books', 'games', 'music', 'tools', 'garden'];

// Returns next(): fills and returns one reused event object (no garbage per event).
// Users are skewed (r*r): a few hot users, a long tail; 10% of events are purchases.
function eventSource(seed) {
  const rand = mulberry32(seed);
  const ev = { user: '', buy: false, page: '', cents: 0, label: '' };
  return () => {
    const r = rand();
    ev.user = `u${Math.floor(USERS * r * r)}`;
    ev.buy = rand() < 0.1;
    if (ev.buy) {
      ev.cents = 100 + Math.floor(rand() * 9900);
      ev.label = `buy ${CATEGORIES[Math.floor(rand() * CATEGORIES.length)]} ${usd(ev.cents)}`;
    } else {
      ev.page = PAGES[Math.floor(rand() * PAGES.length)];
      ev.label = `view ${ev.page}`;
    }
    return ev;
  };
}

// ---- the store and its states --------------------------------------------------------
// Declared by a function so the restored store gets the very same names and codecs.
function declare(store) {
  return {
    count: store.valueState('count', { default: 0 }), // codec inferred from the default: number
    spent: store.reducingState('spent', { reduce: (a, b) => a + b, codec: 'number' }),
    views: store.mapState('views', { keyCodec: 'string', valueCodec: 'number' }),
    recent: store.listState('recent', { codec: 'string' }),
    avgOrder: store.aggregatingState('avgOrder', {
      codec: 'cbor', // the accumulator [sum, n] is structured: the general codec
      createAccumulator: () => [0, 0],
      add: (cents, [sum, k]) => [sum + cents, k + 1],
      getResult: ([sum, k]) => sum / k,
    }),
  };
}

const store = await StateStore.create({ maxParallelism: 128 });
const s = declare(store);
let eventsIn = 0; // running totals kept outside the store, to check it against
let centsIn = 0;

function ingest(ev) {
  store.setCurrentKey(ev.user);
  s.count.update(s.count.value() + 1);
  if (ev.buy) {
    s.spent.add(ev.cents);
    s.avgOrder.add(ev.cents);
    centsIn += ev.cents;
  } else {
    s.views.put(ev.page, (s.views.get(ev.page) ?? 0) + 1);
  }
  const recent = s.recent.get(); // bounded list: keep the last 5
  if (recent.length >= 5) recent.splice(0, recent.length - 4);
  recent.push(ev.label);
  s.recent.update(recent);
  eventsIn++;
}

say(`keystate demo: ${n(EVENTS)} events from ${n(USERS)} users (seeded: ${SEED}), node ${process.version}, ${store.backend} backend (KEYSTATE_BACKEND=wasm|native picks one)`);
say();
say('1. Stream -> keyed state, five state kinds per user');
say('   count: ValueState<number>   spent: ReducingState<number>   views: MapState<page, number>');
say('   recent: ListState<string> (last 5)   avgOrder: AggregatingState<cents, [sum, n], number>');

const next = eventSource(SEED);
// Ingests `count` events with a progress line; returns the time taken (ms).
function stream(count, what) {
  const t = performance.now();
  for (let i = 1; i <= count; i++) {
    ingest(next());
    if ((i & 0x7fff) === 0) progress(`${what}: ${n(i)} / ${n(count)} events (${rate(i, performance.now() - t)} events/s)`);
  }
  endProgress();
  return performance.now() - t;
}

globalThis.gc();
const heapBefore = process.memoryUsage().heapUsed;
const ingestMs = stream(EVENTS, 'streaming');
globalThis.gc();
// Measured now, before snapshots and a second store share the wasm memory; used in section 4.
const ksHeapGrowth = process.memoryUsage().heapUsed - heapBefore;
const ksMem = store.memory();
say(`   ${n(EVENTS)} events in ${secs(ingestMs)} (${rate(EVENTS, ingestMs)} events/s): ${n(ksMem.entries)} state entries`);

// ---- 2. a snapshot taken mid-stream still reads the moment it was taken -----------------
say();
const SAMPLE = ['u0', 'u777', `u${Math.floor(USERS / 5)}`]; // a hot, a warm and a cold user
const ts = performance.now();
const snap = store.snapshot(); // O(1): nothing is copied now, only what is overwritten later
const snapAt = eventsIn;
say(`2. Snapshot #${snap.id} taken at event ${n(snapAt)} in ${(performance.now() - ts).toFixed(2)} ms; the stream goes on`);
const moreMs = stream(SNAP_EVENTS, `streaming (snapshot #${snap.id} open)`);
// Slower than section 1: the first write of an entry while a snapshot is open saves its old version.
say(`   ${n(SNAP_EVENTS)} more events in ${secs(moreMs)} (${rate(SNAP_EVENTS, moreMs)} events/s with the snapshot open)`);
say(`   user       events snap -> live   spent snap -> live          /pricing views snap -> live`);
const [sc, ss, sv] = [snap.valueState('count'), snap.reducingState('spent'), snap.mapState('views')];
for (const u of SAMPLE) {
  store.setCurrentKey(u);
  const cols = [
    `${n(sc.get(u))} -> ${n(s.count.value())}`.padEnd(21),
    `${usd(ss.get(u) ?? 0)} -> ${usd(s.spent.get() ?? 0)}`.padEnd(27),
    `${sv.get(u, '/pricing') ?? 0} -> ${s.views.get('/pricing') ?? 0}`,
  ];
  say(`   ${u.padEnd(10)} ${cols.join(' ')}`);
}
// Every entry of the snapshot, not just these users: its counts must add up to the events before it.
const snapTotal = sc.entries().reduce((sum, e) => sum + e.value, 0);
say(`   all counts in the snapshot add up to ${n(snapTotal)} events ${check(snapTotal === snapAt, 'snapshot isolation')}, live: ${n(eventsIn)}`);
const pinnedOpen = store.memory().pinnedBytes;
snap.release();
say(`   pinnedBytes: ${mb(pinnedOpen)} while open (old versions of entries written since), ${mb(store.memory().pinnedBytes)} after release()`);

// ---- 3. full checkpoint -> file -> restore ------------------------------------------
say();
say(`3. Full checkpoint -> file -> restore`);
await mkdir(DIR, { recursive: true });
const file = join(DIR, 'keystate-demo.checkpoint');
// A snapshot taken at the same instant as the checkpoint: the reference to verify against.
const atCp = store.snapshot();
const cp = store.checkpoint();
const expect = { events: eventsIn, cents: centsIn, entries: store.memory().entries };
const t1 = performance.now();
let last = null;
const onProgress = (p) => {
  last = p;
  progress(`checkpoint #${cp.id}: ${p.keyGroupsDone}/${p.keyGroupsTotal} key groups, ${mb(p.bytes)}, ${n(p.records)} records`);
};
// Writers keep going while the checkpoint streams: the checkpoint still holds its moment.
let tailDone = 0;
const writeTail = async () => {
  while (tailDone < TAIL) {
    for (let k = 0; k < 2000 && tailDone < TAIL; k++, tailDone++) ingest(next());
    await new Promise(setImmediate); // let the file writer run
  }
};
const writeFile = async () => {
  const fh = await open(file, 'w');
  for await (const chunk of cp.stream({ chunkSize: 256 * 1024, onProgress })) await fh.write(chunk);
  await fh.sync(); // durable before confirm()
  await fh.close();
};
await Promise.all([writeFile(), writeTail()]);
cp.confirm();
const cpMs = performance.now() - t1;
endProgress();
const size = (await stat(file)).size;
say(`   ${cp.kind} checkpoint #${cp.id}: ${last.keyGroupsTotal} key groups, ${n(last.records)} records, ${mb(size)} in ${secs(cpMs)}; confirmed`);
say(`   ${n(tailDone)} more events were written while it streamed (checksum ${cp.checksum?.slice(0, 16)}...)`);

// Restore from the file, as a stream (an fs ReadStream is an async iterable of chunks;
// a web ReadableStream from Readable.toWeb() works the same).
const t2 = performance.now();
const restored = await StateStore.restore([createReadStream(file, { highWaterMark: 1 << 20 })], {
  onProgress: (p) => progress(`restoring: ${mb(p.bytes)} / ${mb(size)}`),
});
const restoreMs = performance.now() - t2;
endProgress();
const r = declare(restored); // same names and codecs; a different codec would be refused
say(`   restored ${mb(size)} from the file stream in ${secs(restoreMs)}: ${n(restored.memory().entries)} entries`);

// Verify, user by user through the re-declared handles: the restored store must equal the
// live store at checkpoint time (which the snapshot atCp still reads), and its totals must
// equal the counters kept outside the store.
const t4 = performance.now();
const ref = {
  count: atCp.valueState('count'),
  spent: atCp.reducingState('spent'),
  views: atCp.mapState('views'),
  recent: atCp.listState('recent'),
  avgOrder: atCp.valueState('avgOrder'), // a value view of an aggregating state reads the accumulator
};
const sorted = (entries) => JSON.stringify(entries.sort((a, b) => (a[0] < b[0] ? -1 : 1))); // map order is unspecified
const got = { events: 0, cents: 0, entries: restored.memory().entries };
let differ = 0;
for (let id = 0; id < USERS; id++) {
  const u = `u${id}`;
  restored.setCurrentKey(u);
  const [count, spent, acc] = [r.count.value(), r.spent.get(), ref.avgOrder.get(u)];
  got.events += count;
  got.cents += spent ?? 0;
  const same =
    count === ref.count.get(u) &&
    spent === ref.spent.get(u) &&
    r.avgOrder.get() === (acc && acc[0] / acc[1]) &&
    JSON.stringify(r.recent.get()) === JSON.stringify(ref.recent.get(u)) &&
    sorted(r.views.entries()) === sorted(ref.views.entries(u));
  if (!same) differ++;
}
atCp.release();
say(`   verify totals vs counters kept outside the store: events ${n(got.events)} ${check(got.events === expect.events, 'event total')}, ` +
  `spent ${usd(got.cents)} ${check(got.cents === expect.cents, 'spent total')}, entries ${n(got.entries)} ${check(got.entries === expect.entries, 'entry count')}`);
say(`   verify ${n(USERS)} users x 5 states vs the live store at checkpoint time: ` +
  `${differ === 0 ? 'all equal' : `${n(differ)} users differ`} ${check(differ === 0, 'restored state')} (${secs(performance.now() - t4)})`);
// The re-declared handles read the restored state like any other.
restored.setCurrentKey('u0');
say(`   restored u0: ${n(r.count.value())} events, ${usd(r.spent.get())} spent, avg order ${usd(r.avgOrder.get())}, ` +
  `${r.views.get('/pricing')} views of /pricing, last: "${r.recent.get().at(-1)}"`);
say(`   meanwhile the live store moved on to ${n(eventsIn)} events; the restored one holds ${n(expect.events)}`);
restored.close();

// ---- 4. memory: keystate vs a plain JS Map of the same data ------------------------------
// Replays the same first EVENTS events into Map<user, {count, spent, views: Map, recent: [], sum, k}>,
// the usual JS way to keep this state, and measures heap growth around a full GC.
globalThis.gc();
const mapHeapBefore = process.memoryUsage().heapUsed;
const users = new Map();
const replay = eventSource(SEED);
const t3 = performance.now();
for (let i = 0; i < EVENTS; i++) {
  const ev = replay();
  let u = users.get(ev.user);
  if (u === undefined) users.set(ev.user, (u = { count: 0, spent: 0, views: new Map(), recent: [], sum: 0, k: 0 }));
  u.count++;
  if (ev.buy) {
    u.spent += ev.cents;
    u.sum += ev.cents;
    u.k++;
  } else {
    u.views.set(ev.page, (u.views.get(ev.page) ?? 0) + 1);
  }
  if (u.recent.length >= 5) u.recent.shift();
  u.recent.push(ev.label);
}
const mapMs = performance.now() - t3;
globalThis.gc();
const mapHeap = process.memoryUsage().heapUsed - mapHeapBefore;
// The same logical entries keystate counts: count + recent per user, spent + avgOrder per buyer, one per viewed page.
let mapEntries = 0;
for (const u of users.values()) mapEntries += 2 + (u.k > 0 ? 2 : 0) + u.views.size;

say();
say(`4. Memory: keystate vs a plain JS Map, same ${n(EVENTS)} events, same process`);
say(`   JS: Map<user, {count, spent, sum, k, views: Map<page, n>, recent: string[]}>, ${n(users.size)} users`);
say(`   both hold ${n(mapEntries)} entries, counted keystate's way ${check(mapEntries === ksMem.entries, 'same data')}`);
const row = (what, bytes, rate, note) =>
  say(`   ${what.padEnd(22)} ${mb(bytes).padStart(9)} ${`${(bytes / ksMem.entries).toFixed(1)} B`.padStart(8)} ${rate.padStart(10)}   ${note}`);
say(`   ${''.padEnd(22)} ${'bytes'.padStart(9)} ${'/entry'.padStart(8)} ${'events/s'.padStart(10)}`);
row(`keystate ${ksMem.backend} memory`, ksMem.backendBytes, rate(EVENTS, ingestMs), ksMem.backend === 'wasm' ? 'the whole WebAssembly memory: what it really costs' : "the addon's whole heap: what it really costs");
row('  arenaBytes', ksMem.arenaBytes, '', `record arena, of which ${mb(ksMem.freeBytes)} free for reuse`);
row('  liveBytes', ksMem.liveBytes, '', 'live records and their indexes');
row('keystate JS heap', Math.max(0, ksHeapGrowth), '', 'heapUsed growth (after gc) over section 1');
row('JS Map heap', mapHeap, rate(EVENTS, mapMs), 'heapUsed growth (after gc) while building the Map');
say(`   (keystate measured at the end of section 1; per entry = bytes / ${n(ksMem.entries)}; events/s include making events)`);

// ---- 5. periodic incremental checkpoints to a directory, a crash, and restore ------------------
// A child process (demo-child.mjs) counts events per user from another seeded stream and runs
// store.enableCheckpointing to a DirectoryStorage. It is killed with SIGKILL at a random moment,
// started again (it resumes from the directory), killed again; then this process restores the
// directory and checks it against what the child reported and against a replay of the stream.
const CRASH_USERS = 2 * USERS;
const BACKLOG = 5 * USERS; // events the child consumes at full speed before it follows the stream
const RATE = USERS / 5; // events/s after the backlog
const cpDir = join(DIR, 'keystate-demo-checkpoints');
say();
say('5. Periodic incremental checkpoints to a directory, a crash, and restore');
say(`   a child process (demo-child.mjs) counts another seeded stream, ${n(CRASH_USERS)} users: a backlog of ${n(BACKLOG)} events`);
say(`   at full speed, then ${n(RATE)} events/s. Per user count: ValueState, spent: ReducingState; and the events applied`);
say(`   so far in a ValueState, to resume from. It runs enableCheckpointing({ intervalMs: 250, storage: DirectoryStorage,`);
say(`   incremental: true, maxIncrementals: 8 }) and prints each completed checkpoint. SIGKILL at random, twice.`);

// Runs the child and SIGKILLs it 1.5-2.5 s (at random) after it started, once it has reported
// two checkpoints. Prints its checkpoints as they come; returns everything it printed.
function runChild(run, onStart) {
  return new Promise((done) => {
    const child = fileURLToPath(new URL('./demo-child.mjs', import.meta.url));
    const p = spawn(process.execPath, [child, cpDir, CRASH_USERS, BACKLOG, RATE], { stdio: ['ignore', 'pipe', 'pipe'] });
    const r = { pid: p.pid, start: null, taken: new Map(), cps: [], errors: [], stderr: '', killedAfter: null };
    let [t0, buf, due] = [performance.now(), '', false];
    const kill = () => {
      if (r.killedAfter !== null) return;
      r.killedAfter = performance.now() - t0;
      p.kill('SIGKILL');
    };
    const guard = setTimeout(kill, 20_000); // a child that hangs
    const line = (l) => {
      const [tag, ...f] = l.split(' ');
      if (tag === 'start') {
        const [events, tip, chain, ms] = f.slice(0, 4).map(Number);
        r.start = { events, tip, chain, ms, removed: f[4] === '-' ? [] : f[4].split(',') };
        t0 = performance.now();
        onStart(r);
        setTimeout(() => (r.cps.length >= 2 ? kill() : (due = true)), 1500 + Math.random() * 1000);
      } else if (tag === 'taken') {
        r.taken.set(Number(f[0]), Number(f[1]));
      } else if (tag === 'cp') {
        const [id, kind, bytes, ms, events] = [Number(f[0]), f[1], Number(f[2]), Number(f[3]), Number(f[4])];
        r.cps.push({ id, kind, bytes, ms, events });
        say(`     checkpoint #${String(id).padEnd(3)} ${kind.padEnd(11)} ${mb(bytes).padStart(9)} ${`${ms} ms`.padStart(7)}   at event ${n(events)}`);
        if (due && r.cps.length >= 2) setTimeout(kill, Math.random() * 250);
      } else {
        r.errors.push(l); // 'error ...': a checkpoint failed, or the child did
        say(`     child: ${l}`);
      }
    };
    p.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) line(buf.slice(0, i));
    });
    p.stderr.setEncoding('utf8').on('data', (d) => (r.stderr += d));
    p.on('close', (code, signal) => {
      clearTimeout(guard);
      const taken = Math.max(0, ...r.taken.keys());
      if (r.killedAfter !== null) {
        const when = taken > (r.cps.at(-1)?.id ?? 0) ? `with checkpoint #${taken} taken and not reported` : 'between checkpoints';
        say(`     SIGKILL ${secs(r.killedAfter)} after it started, ${when}`);
      } else {
        say(`     the child ended by itself (${code ?? signal}) ${check(false, `child run ${run}`)}`);
        for (const l of r.stderr.trim().split('\n').slice(0, 12)) say(`       ${l}`);
      }
      if (r.errors.length > 0) check(false, `child run ${run}: ${r.errors[0]}`);
      done(r);
    });
  });
}

// What a kill left in the directory, seen without changing it (readOnly), and which
// checkpoint a restore must find: the last one the child reported, or one it took and stored
// but did not report (SIGKILL can land between storing a checkpoint and printing it).
async function afterCrash(r, run) {
  const listed = await (await DirectoryStorage.open(cpDir, { readOnly: true })).list();
  // LOCK is the killed writer's lock: the next writer takes it over at once (its process is gone).
  const files = (await readdir(cpDir)).filter((f) => f !== 'LOCK').sort();
  const names = new Set(listed.map((c) => c.name));
  const leftovers = files.filter((f) => f !== 'MANIFEST' && !names.has(f));
  const sizes = await Promise.all(leftovers.map(async (f) => `${f} (${mb((await stat(join(cpDir, f))).size)})`));
  say(`   files after the crash: ${files.includes('MANIFEST') ? 'MANIFEST + ' : ''}${listed.length} listed checkpoints ` +
    `(${mb(listed.reduce((sum, c) => sum + c.bytes, 0))}), ${leftovers.length === 0 ? 'nothing else' : `left over: ${sizes.join(', ')}`}`);
  const [tip, last] = [listed.at(-1), r.cps.at(-1)];
  let want = null;
  if (tip && last && tip.id === last.id) {
    want = { id: tip.id, events: last.events, why: `the last checkpoint run ${run} reported` };
  } else if (tip && r.taken.has(tip.id) && tip.id > (last?.id ?? 0)) {
    want = { id: tip.id, events: r.taken.get(tip.id), why: `stored, though run ${run} was killed before it reported it` };
  }
  say(`   latest in MANIFEST: ${tip ? `#${tip.id}` : 'none'}${want ? ` at event ${n(want.events)}, ${want.why}` : `, but run ${run} reported ${last ? `#${last.id}` : 'none'}`} ` +
    `${check(want !== null, `latest checkpoint after kill ${run}`)}`);
  return { listed, leftovers, want };
}

// Restores the directory here, as a new process would after the crash, and verifies it.
async function crashAndRestore() {
  await rm(cpDir, { recursive: true, force: true }); // a fresh directory each run
  const r1 = await runChild(1, (r) => say(`   run 1 (pid ${r.pid}): empty directory, a new store`));
  if (r1.start === null) return null;
  const crash1 = await afterCrash(r1, 1);
  const r2 = await runChild(2, (r) => {
    const s = r.start;
    const resumed = s.tip === crash1.want?.id && s.events === crash1.want?.events;
    say(`   run 2 (pid ${r.pid}): DirectoryStorage.open removed ${s.removed.length} leftover file(s) ` +
      `${check(JSON.stringify(s.removed) === JSON.stringify(crash1.leftovers), 'run 2 removed the leftovers')}; ` +
      `restoreFrom #${s.tip} (${s.chain > 1 ? `a full + ${s.chain - 1} incremental${s.chain > 2 ? 's' : ''}` : 'a full checkpoint'}) in ${s.ms} ms`);
    say(`     resumes at event ${n(s.events)}${resumed ? '' : `, not at #${crash1.want?.id}'s ${n(crash1.want?.events)}`} ` +
      `${check(resumed, 'run 2 resumed from the latest checkpoint')}`);
  });
  if (r2.start === null) return null;
  const { leftovers, want } = await afterCrash(r2, 2);

  const storage = await DirectoryStorage.open(cpDir); // removes what the crash left
  const listed = await storage.list();
  const files = (await readdir(cpDir)).filter((f) => f !== 'LOCK').sort(); // LOCK: this writer's lock
  const only = JSON.stringify(files) === JSON.stringify(['MANIFEST', ...listed.map((c) => c.name)].sort());
  say(`   DirectoryStorage.open removed ${storage.removedOnOpen.length} leftover file(s) ` +
    `${check(JSON.stringify(storage.removedOnOpen) === JSON.stringify(leftovers), 'leftovers removed on open')}; ` +
    `left: MANIFEST + ${files.length - 1} checkpoint files, no temporary file ${check(only, 'only listed files left')}`);
  let chain = [];
  const t = performance.now();
  const back = await StateStore.restoreFrom(storage, { onRestored: (x) => (chain = x.chain) });
  const restoreMs = performance.now() - t;
  const full = chain[0];
  const older = listed.length - chain.length;
  say(`   restoreFrom in ${restoreMs.toFixed(0)} ms: a chain of ${chain.length} files, ${mb(chain.reduce((sum, c) => sum + c.bytes, 0))}, ` +
    `incrementals as % of the full${older > 0 ? ` (${older} older files: the previous chain, kept by retain: 2)` : ''}:`);
  // An incremental holds what changed since the one before: much more while the child caught up on the backlog.
  const at = new Map([...r1.taken, ...r2.taken]); // id -> events; run 2 may reuse an id run 1 did not store
  const backlog = (i) => (at.get(chain[i - 1].id) ?? 0) < BACKLOG ? ' (backlog)' : '';
  const parts = chain.map((c, i) =>
    i === 0 ? `#${c.id} full ${mb(c.bytes)}` : `#${c.id} ${mb(c.bytes)} ${((100 * c.bytes) / full.bytes).toFixed(1)}%${backlog(i)}`);
  for (let i = 0; i < parts.length; i += 4) say(`     ${i > 0 ? '<- ' : ''}${parts.slice(i, i + 4).join(' <- ')}`);
  const c = declareCounts(back);
  const events = c.progress.get('events');
  const same = events === want?.events && chain.at(-1)?.id === want?.id;
  say(`   restored #${chain.at(-1)?.id}: events counter ${n(events)}` +
    `${same ? ', as in the latest checkpoint' : want ? `, but the latest checkpoint is #${want.id} at event ${n(want.events)}` : ''} ${check(same, 'restored the latest checkpoint')}`);

  // Replay exactly that many events of the seeded stream into a plain Map.
  const t2 = performance.now();
  const replay = eventStream(CRASH_USERS);
  const byUser = new Map();
  let buyers = 0;
  for (let i = 0; i < events; i++) {
    const ev = replay();
    let u = byUser.get(ev.user);
    if (u === undefined) byUser.set(ev.user, (u = { count: 0, spent: 0 }));
    u.count++;
    if (ev.cents > 0 && (u.spent += ev.cents) === ev.cents) buyers++;
  }
  // Every entry of both states, read in bulk from a snapshot: the same users, the same values.
  const snap = back.snapshot();
  const counts = snap.valueState('count').entries();
  const spent = snap.reducingState('spent').entries();
  snap.release();
  const differ =
    counts.filter((e) => byUser.get(e.key)?.count !== e.value).length + Math.abs(byUser.size - counts.length) +
    spent.filter((e) => byUser.get(e.key)?.spent !== e.value).length + Math.abs(buyers - spent.length);
  const entries = back.memory().entries;
  say(`   replayed ${n(events)} events into a Map: ${n(byUser.size)} users' count and ${n(buyers)} buyers' spent ` +
    `${differ === 0 ? 'all equal' : `differ (${n(differ)} entries)`} ${check(differ === 0, 'restored counts')},`);
  say(`     and nothing else: ${n(entries)} entries ${check(entries === counts.length + spent.length + 1, 'no other entries')} (${secs(performance.now() - t2)})`);
  back.close();
  await storage.close();
  return { events, id: want?.id };
}
const crash = await crashAndRestore();
if (crash === null) check(false, 'the crash section could not run');

// ---- 6. summary -------------------------------------------------------------------------
say();
say(failures.length === 0 ? '6. Summary: all checks passed' : `6. Summary: FAILED: ${failures.join(', ')}`);
say(`   ${n(eventsIn)} events; snapshot isolation held; checkpoint ${mb(size)} written, restored and verified`);
say(`   memory for ${n(EVENTS)} events: keystate ${mb(ksMem.backendBytes)} outside the JS heap (${ksMem.backend}), a JS Map ${mb(mapHeap)} of JS heap`);
if (crash) say(`   a child killed twice mid-stream: its checkpoint directory restored to #${crash.id} (${n(crash.events)} events) and verified`);
say(`   checkpoint file: ${file}`);
say(`   checkpoint directory: ${cpDir}`);
store.close();
process.exitCode = failures.length === 0 ? 0 : 1;
