#!/usr/bin/env node
// @ts-check
// Soak test (not in CI): periodic incremental checkpoints to a DirectoryStorage
// under a heavy writer in a child process (test/fixtures/crash-child.mjs, mode
// heavy: rounds back to back, enableCheckpointing every --interval ms), killed
// with SIGKILL at random times, over and over for --minutes. Each run resumes
// from the directory. After each kill this process takes the directory over
// (the dead child's lock at once), restores it and checks it against the model
// of what was confirmed:
// - the restored state is exactly the state after some round R (every key of
//   every state; test/fixtures/crash-data.mjs), and R is the round the child
//   noted when it took the restored checkpoint;
// - the restored checkpoint is at least the last one the child saw confirmed,
//   R never goes backwards, and the child resumed exactly at the restored R;
// - opening removed what the kill left, and nothing else is in the directory.
// While each child runs, it also checks that a second writer is refused
// (STORAGE_LOCKED) and that a read-only open restores a consistent round
// beside the writer. Prints a line per minute and a summary; exits 1 on the
// first failure.
// Usage: node scripts/soak.mjs [--minutes 3] [--interval 50] [--seed N] [--dir DIR] [--keep]
// Expects a built dist/ (npm run build).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DirectoryStorage, StateStore } from '../dist/index.js';
import { verifyRound } from '../test/fixtures/crash-data.mjs';
import { runAndKill } from '../test/fixtures/crash-run.mjs';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    interval: { type: 'string', default: '50' },
    seed: { type: 'string' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const minutes = Number(args.minutes);
const interval = Number(args.interval);
const seed = args.seed === undefined ? Date.now() % 1_000_000 : Number(args.seed);
if (!(minutes > 0) || !(interval > 0) || !Number.isInteger(seed)) {
  console.error('usage: node scripts/soak.mjs [--minutes 3] [--interval 50] [--seed N] [--dir DIR] [--keep]');
  process.exit(2);
}

// mulberry32: a seeded run repeats its kill times.
let a = seed;
const rand = () => {
  a = (a + 0x6d2b79f5) | 0;
  let t = Math.imul(a ^ (a >>> 15), 1 | a);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const dir = args.dir ? path.resolve(args.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'keystate-soak-'));
fs.mkdirSync(dir, { recursive: true });
const stats = {
  kills: 0, earlyKills: 0, restores: 0, checkpoints: 0, full: 0, maxChain: 0, maxRound: 0,
  matchedTaken: 0, leftoversRemoved: 0, refusedWriters: 0, lateProbes: 0, readOnlyRestores: 0, readOnlyEmpty: 0, takeoverMs: 0,
};

/** @param {string} why */
function fail(why) {
  console.error(`\nSOAK FAILED after ${stats.kills} kills (seed ${seed}, directory ${dir}): ${why}`);
  process.exit(1);
}

/**
 * While the child writes: a second writer must be refused, and a read-only open must restore a
 * round at least `floor` (retention may delete what it reads: restoreFrom then lists again).
 * `killed()` says if the child was killed already (then its lock is rightly taken over).
 * @param {number} floor @param {() => boolean} killed
 */
async function besideTheWriter(floor, killed) {
  try {
    const intruder = await DirectoryStorage.open(dir);
    await intruder.close();
    if (killed()) {
      stats.lateProbes++;
      return null;
    }
    return 'a second writer opened the directory while the child held it';
  } catch (e) {
    if (/** @type {{ code?: string }} */ (e).code !== 'STORAGE_LOCKED') return `a second writer failed with ${String(e)}, not STORAGE_LOCKED`;
    stats.refusedWriters++;
  }
  const reader = await DirectoryStorage.open(dir, { readOnly: true });
  if ((await reader.list()).length === 0) {
    stats.readOnlyEmpty++;
    return null;
  }
  const store = await StateStore.restoreFrom(reader);
  try {
    const R = verifyRound(store, 'read-only restore beside the writer');
    if (R < floor) return `a read-only restore beside the writer holds round ${R}, older than ${floor}`;
    stats.readOnlyRestores++;
  } finally {
    store.close();
  }
  return null;
}

const t0 = Date.now();
const deadline = t0 + minutes * 60_000;
let nextReport = t0 + 60_000;
let lastRound = 0;
let lastId = 0;
let everConfirmed = false;
console.log(`soak: ${minutes} min, checkpoints every ${interval} ms under a heavy writer, SIGKILL at random; seed ${seed}; ${dir}`);
for (let i = 0; Date.now() < deadline; i++) {
  const early = i % 7 === 6; // now and then during open or restore
  const delay = early ? Math.floor(rand() * 300) : 100 + Math.floor(rand() * 1400);
  const what = `kill ${i + 1} (${early ? 'from spawn' : 'after start'} +${delay} ms)`;
  /** @type {Promise<string | null> | null} */
  let beside = null;
  const floor = lastRound;
  let killed = false;
  const run = await runAndKill(dir, 'heavy', delay, early, {
    env: { CRASH_INTERVAL_MS: String(interval) },
    onStart: () => (beside = besideTheWriter(floor, () => killed).catch((e) => `beside the writer: ${String(e)}`)),
    onKill: () => (killed = true),
  });
  const besideProblem = await (beside ?? Promise.resolve(null));
  if (run.code !== null) fail(`${what}: the child exited by itself (${run.code}): ${run.stderr}`);
  if (run.lines.some((l) => l.startsWith('error'))) fail(`${what}: a checkpoint failed in the child: ${run.lines.find((l) => l.startsWith('error'))}`);
  if (besideProblem) fail(`${what}: ${besideProblem}`);
  stats.kills++;
  if (early) stats.earlyKills++;

  // The model: the round of every checkpoint the child took, and the ones it saw confirmed.
  const start = run.lines.find((l) => l.startsWith('start '));
  if (start && Number(start.split(' ')[1]) !== lastRound) fail(`${what}: the child resumed at ${start}, not at round ${lastRound}`);
  /** @type {Map<number, number>} */
  const taken = new Map();
  let confirmed = 0;
  for (const l of run.lines) {
    const [tag, id, x] = l.split(' ');
    if (tag === 'taken') taken.set(Number(id), Number(x));
    if (tag === 'cp') {
      confirmed = Number(id);
      stats.checkpoints++;
      if (x === 'full') stats.full++;
    }
  }
  if (confirmed > 0) everConfirmed = true;

  // Take over from the dead child (its lock at once; a kill between making LOCK and writing its
  // owner file is taken over after a second: hence the wait), restore, verify.
  const manifest = path.join(dir, 'MANIFEST');
  /** @type {Set<string>} */
  const listed = new Set(fs.existsSync(manifest) ? JSON.parse(fs.readFileSync(manifest, 'utf8')).checkpoints.map((/** @type {{ name: string }} */ c) => c.name) : []);
  const leftovers = fs.readdirSync(dir).filter((f) => f.endsWith('.tmp') || (f.endsWith('.ks') && !listed.has(f)));
  const tTake = performance.now();
  const storage = await DirectoryStorage.open(dir, { lock: { wait: true, timeoutMs: 15_000 } });
  stats.takeoverMs = Math.max(stats.takeoverMs, performance.now() - tTake);
  if (JSON.stringify([...storage.removedOnOpen]) !== JSON.stringify(leftovers.sort())) {
    fail(`${what}: open removed ${JSON.stringify(storage.removedOnOpen)}, the kill left ${JSON.stringify(leftovers)}`);
  }
  stats.leftoversRemoved += storage.removedOnOpen.length;
  const list = await storage.list();
  const expectFiles = ['LOCK', ...(fs.existsSync(path.join(dir, 'MANIFEST')) ? ['MANIFEST'] : []), ...list.map((c) => c.name)].sort();
  if (JSON.stringify(fs.readdirSync(dir).sort()) !== JSON.stringify(expectFiles)) fail(`${what}: the directory holds ${fs.readdirSync(dir)}`);
  if (list.length === 0) {
    if (everConfirmed) fail(`${what}: nothing is stored, yet a checkpoint was confirmed`);
    await storage.close();
    continue;
  }
  let tip = 0;
  const store = await StateStore.restoreFrom(storage, { onRestored: (x) => ((tip = x.checkpoint.id), (stats.maxChain = Math.max(stats.maxChain, x.chain.length))) });
  let R = 0;
  try {
    R = verifyRound(store, what);
  } catch (e) {
    fail(String(/** @type {Error} */ (e).message));
  }
  store.close();
  await storage.close();
  stats.restores++;
  if (taken.has(tip)) {
    if (taken.get(tip) !== R) fail(`${what}: checkpoint ${tip} was taken at round ${taken.get(tip)}, it restores round ${R}`);
    stats.matchedTaken++;
  }
  if (tip < confirmed) fail(`${what}: restored checkpoint ${tip}; the child had confirmed ${confirmed}`);
  if (R < lastRound || tip < lastId) fail(`${what}: went backwards: round ${R} checkpoint ${tip} after round ${lastRound} checkpoint ${lastId}`);
  lastRound = R;
  lastId = tip;
  stats.maxRound = R;

  if (Date.now() >= nextReport) {
    nextReport += 60_000;
    console.log(`  ${((Date.now() - t0) / 60_000).toFixed(1)} min: ${stats.kills} kills survived, round ${R}, ${stats.checkpoints} checkpoints confirmed`);
  }
}

const secs = ((Date.now() - t0) / 1000).toFixed(0);
console.log(`soak: survived ${stats.kills} kills in ${secs} s (${stats.earlyKills} during open or restore), seed ${seed}`);
console.log(`  ${stats.restores} restores verified against the model (${stats.matchedTaken} of a checkpoint the killed child took, at the round it noted), final round ${stats.maxRound}, ${stats.checkpoints} checkpoints confirmed in the children ` +
  `(${stats.full} full), longest chain ${stats.maxChain}, ${stats.leftoversRemoved} leftover files removed on open`);
console.log(`  beside the writer: ${stats.refusedWriters} second writers refused with STORAGE_LOCKED (${stats.lateProbes} came after the kill and took the lock over), ` +
  `${stats.readOnlyRestores} read-only restores verified (${stats.readOnlyEmpty} found nothing stored yet); slowest takeover of a killed writer's lock ${stats.takeoverMs.toFixed(0)} ms`);
if (!args.keep && !args.dir) fs.rmSync(dir, { recursive: true, force: true });
