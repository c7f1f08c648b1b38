// The child process of demo.mjs section 6: a consumer that keeps per-user counts of a seeded
// event stream and checkpoints them to a directory every 250 ms until it is killed.
//
//   node examples/demo-child.mjs <dir> <users> <backlog> <events/s>
//
// On start it restores the directory's latest checkpoint, if there is one, and resumes the
// stream where that checkpoint says it was (the number of events applied is itself a
// ValueState). It consumes the first <backlog> events at full speed, then <events/s>.
// Its stdout, one line each (synchronous on a pipe, so a SIGKILL loses no printed line):
//   start <events> <restored checkpoint id | 0> <its chain length> <restore ms> <files DirectoryStorage.open removed | ->
//   taken <id> <events>                                  a checkpoint was taken, holding <events>
//   cp <id> <kind> <bytes> <ms> <events>                 ... and is now durable and confirmed
//   error <message>
// demo.mjs imports declare() and eventStream() from here, to replay and verify the same stream.
import { fileURLToPath } from 'node:url';
import { DirectoryStorage, StateStore } from '../dist/index.js';

export const SEED = 42;

/** The states; the restored store is declared the same way. */
export function declare(store) {
  return {
    count: store.valueState('count', { default: 0 }), // events per user
    spent: store.reducingState('spent', { reduce: (a, b) => a + b, codec: 'number' }), // cents per buyer
    progress: store.valueState('progress', { default: 0 }), // key 'events': events applied so far
  };
}

/** The seeded stream: next() fills and returns one reused event. Skewed users, 10% purchases. */
export function eventStream(users, seed = SEED) {
  let a = seed; // mulberry32, as in demo.mjs
  const rand = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const ev = { user: '', cents: 0 };
  return () => {
    const r = rand();
    ev.user = `u${Math.floor(users * r * r)}`;
    ev.cents = rand() < 0.1 ? 100 + Math.floor(rand() * 9900) : 0;
    return ev;
  };
}

async function main([dir, users, backlog, rate]) {
  [users, backlog, rate] = [users, backlog, rate].map(Number);
  const out = (line) => process.stdout.write(`${line}\n`);
  const storage = await DirectoryStorage.open(dir); // removes what a crash left behind
  const t0 = performance.now();
  let [tip, chain] = [0, 0];
  const store = (await storage.list()).length > 0
    ? await StateStore.restoreFrom(storage, { onRestored: (r) => ([tip, chain] = [r.checkpoint.id, r.chain.length]) })
    : await StateStore.create({ maxParallelism: 128 });
  const restoreMs = performance.now() - t0;
  const s = declare(store);
  let events = s.progress.get('events');
  const next = eventStream(users);
  for (let i = 0; i < events; i++) next(); // skip what the restored state holds already
  out(`start ${events} ${tip} ${chain} ${restoreMs.toFixed(0)} ${storage.removedOnOpen.join(',') || '-'}`);

  // Applies k events and records the new position in the same synchronous step, so every
  // checkpoint holds a position and exactly the events before it.
  const apply = (k) => {
    for (let i = 0; i < k; i++) {
      const ev = next();
      store.setCurrentKey(ev.user);
      s.count.update(s.count.value() + 1);
      if (ev.cents > 0) s.spent.add(ev.cents);
    }
    events += k;
    s.progress.set('events', events);
  };

  // onCheckpoint reports a checkpoint once it is durable; events went on meanwhile. onTaken runs
  // the moment it is taken, so it tells which events the checkpoint holds.
  const takenAt = new Map();
  store.enableCheckpointing({
    intervalMs: 250,
    storage,
    incremental: true,
    maxIncrementals: 8, // then a full checkpoint again, so a restore reads at most 9 files
    onTaken: (cp) => {
      takenAt.set(cp.id, events);
      out(`taken ${cp.id} ${events}`);
    },
    onCheckpoint: (e) => out(`cp ${e.id} ${e.kind} ${e.bytes} ${e.durationMs} ${takenAt.get(e.id)}`),
    onError: (e) => out(`error ${String(e?.message ?? e).replace(/\s+/g, ' ')}`),
  });

  // The backlog at full speed (batches, so the checkpoint's I/O runs between them), then paced.
  let live = null; // [time, events] when the backlog was done
  const step = () => {
    let k = Math.min(1000, backlog - events);
    if (k <= 0) {
      live ??= [performance.now(), events];
      k = Math.min(5000, Math.floor(live[1] + (rate * (performance.now() - live[0])) / 1000) - events);
    }
    if (k > 0) apply(k);
    if (events < backlog) setImmediate(step);
    else setTimeout(step, 10);
  };
  step();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e) => {
    process.stdout.write(`error ${String(e?.stack ?? e).replace(/\s+/g, ' ')}\n`);
    process.exit(1);
  });
}
