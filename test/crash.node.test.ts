// The crash test. A child process (fixtures/crash-child.mjs) writes rounds of
// deterministic data and checkpoints them (incremental, with
// materialization) to a directory as fast as it can, and is killed with
// SIGKILL at random points, many times; each run resumes from the directory.
// After each kill the parent opens the directory and restores it, and checks:
// - what a crash left (temporary files, files MANIFEST does not list) is
//   removed on open, and nothing else is there;
// - the restored state is exactly the state after some round R: every key
//   of every state agrees with R (fixtures/crash-data.mjs), so a torn or
//   mixed restore cannot pass;
// - R never goes backwards, the child resumed exactly where the last
//   restore was, and every checkpoint the child saw confirmed is restored
//   (R is at least its last confirmed round; at most one round more);
// - every retained chain restores to a consistent round (every few kills).
// SIGKILL tests a process crash (the kernel keeps written pages), not power
// loss; the fsync ordering for power loss is not observable here.
// CRASH_KILLS sets the number of kills (default 32); CRASH_SEED the seed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { StateStore } from './_backend.js';
import { DirectoryStorage, type StoredCheckpoint } from '../dist/index.js';
// verifyRound checks every key of every state against the round the store holds (throws if one disagrees).
import { verifyRound } from './fixtures/crash-data.mjs';
import { runAndKill } from './fixtures/crash-run.mjs';
import { chainIn } from './_memstorage.js';
import { rng } from './_util.js';

const KILLS = Number(process.env.CRASH_KILLS ?? 32);
const SEED = Number(process.env.CRASH_SEED ?? Date.now() % 100_000);

const Crash = suite('crash safety');

Crash(`SIGKILL at random points, ${KILLS} times: every restore is exactly some confirmed checkpoint's state, never older than the last`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keystate-crash-'));
  const r = rng(SEED);
  const t0 = Date.now();
  const stats = { kills: 0, restores: 0, chainRestores: 0, checkpoints: 0, full: 0, tempLeft: 0, unlistedLeft: 0, earlyKills: 0, maxChain: 0 };
  let lastRound = 0;
  let lastId = 0;
  let everConfirmed = false;
  try {
    for (let i = 0; i < KILLS; i++) {
      const mode = i % 2 === 0 ? 'loop' : 'timer';
      const early = i % 6 === 5;
      const delay = early ? Math.floor(r() * 400) : 30 + Math.floor(r() * 470);
      const run = await runAndKill(dir, mode, delay, early);
      const what = `kill ${i + 1} (${mode}, ${early ? 'from spawn' : 'after start'} +${delay} ms, seed ${SEED})`;
      assert.is(run.code, null, `${what}: the child was killed, it did not exit (${run.code}): ${run.stderr}`);
      assert.not.ok(run.lines.some((l) => l.startsWith('error')), `${what}: no checkpoint failed: ${run.lines.filter((l) => l.startsWith('error'))}`);
      if (process.env.CRASH_DEBUG) console.log(`${what}: ${run.ms} ms: ${run.lines.join(' | ')}`);
      stats.kills++;
      if (early) stats.earlyKills++;

      // Resumed exactly where the last restore was.
      const start = run.lines.find((l) => l.startsWith('start '));
      if (start) assert.is(Number(start.split(' ')[1]), lastRound, `${what}: the child resumed from round ${lastRound}`);
      const oks = run.lines.filter((l) => l.startsWith('ok ')).map((l) => l.split(' '));
      const cps = run.lines.filter((l) => l.startsWith('cp ')).map((l) => l.split(' '));
      stats.checkpoints += oks.length + cps.length;
      stats.full += [...oks.map((o) => o[3]), ...cps.map((c) => c[2])].filter((k) => k === 'full').length;
      if (oks.length + cps.length > 0) everConfirmed = true;

      // What the crash left, seen before opening.
      const before = fs.readdirSync(dir);
      const manifest = fs.existsSync(path.join(dir, 'MANIFEST'))
        ? (JSON.parse(fs.readFileSync(path.join(dir, 'MANIFEST'), 'utf8')) as { checkpoints: StoredCheckpoint[] })
        : { checkpoints: [] };
      const listed = new Set(manifest.checkpoints.map((c) => c.name));
      const temps = before.filter((f) => f.endsWith('.tmp'));
      const unlisted = before.filter((f) => f.endsWith('.ks') && !listed.has(f));
      if (temps.length) stats.tempLeft++;
      if (unlisted.length) stats.unlistedLeft++;

      // The killed child's lock (LOCK) is taken over at once: its process is gone. (Within a second
      // if the kill fell between making LOCK and writing its owner file: hence the wait.)
      const storage = await DirectoryStorage.open(dir, { lock: { wait: true, timeoutMs: 10_000 } });
      assert.equal([...storage.removedOnOpen], [...temps, ...unlisted].sort(), `${what}: open removes the leftovers`);
      const list = await storage.list();
      const expectFiles = ['LOCK', ...(fs.existsSync(path.join(dir, 'MANIFEST')) ? ['MANIFEST'] : []), ...list.map((c) => c.name)];
      assert.equal(fs.readdirSync(dir).sort(), expectFiles.sort(), `${what}: only MANIFEST, the listed files and this writer's lock remain`);
      if (list.length === 0) {
        assert.not.ok(everConfirmed, `${what}: a confirmed checkpoint was lost`);
        await storage.close();
        continue;
      }

      let tip: StoredCheckpoint | null = null;
      let chainLength = 0;
      const store = await StateStore.restoreFrom(storage, { onRestored: (x) => ((tip = x.checkpoint), (chainLength = x.chain.length)) });
      stats.restores++;
      stats.maxChain = Math.max(stats.maxChain, chainLength);
      const R = verifyRound(store, what);
      const id = (tip as StoredCheckpoint | null)?.id ?? 0;
      store.close();

      assert.ok(R >= lastRound, `${what}: round ${R} after ${lastRound}: went backwards`);
      assert.ok(id >= lastId, `${what}: checkpoint ${id} after ${lastId}: went backwards`);
      if (oks.length > 0) {
        const [, okRound, okId] = oks[oks.length - 1].map(Number);
        assert.ok(R === okRound || R === okRound + 1, `${what}: restored round ${R}; the child had confirmed round ${okRound}`);
        assert.ok(id >= okId, `${what}: restored checkpoint ${id}; the child had confirmed ${okId}`);
      } else if (mode === 'loop' && start) {
        assert.ok(R <= lastRound + 1, `${what}: round ${R}, more than one past ${lastRound} without a confirmation`);
      }
      if (cps.length > 0) assert.ok(id >= Number(cps[cps.length - 1][1]), `${what}: restored checkpoint ${id}; the child had confirmed ${cps[cps.length - 1][1]}`);
      lastRound = R;
      lastId = id;

      // Every few kills: every listed checkpoint's chain restores to a consistent round, in order.
      if (i % 4 === 3 || i === KILLS - 1) {
        let prev = 0;
        for (let t = 0; t < list.length; t++) {
          const chain = chainIn(list, t);
          if (!chain) continue; // an ancestor of a retained chain only, never a tip of one
          const s = await StateStore.restore(await Promise.all(chain.map((c) => storage.open(c.name))));
          const round = verifyRound(s, `${what}, chain of ${list[t].id}`);
          s.close();
          assert.ok(round >= prev, `${what}: chains restore to rounds in order`);
          prev = round;
          stats.chainRestores++;
        }
      }
      await storage.close(); // the next child opens it for writing
    }
    assert.ok(lastRound >= KILLS / 4, `progress accumulates across kills: reached round ${lastRound}`);
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    console.log(`  crash test: ${stats.kills} kills (${stats.earlyKills} from spawn), ${stats.restores} restores + ${stats.chainRestores} chain restores, ` +
      `final round ${lastRound}, ${stats.checkpoints} checkpoints confirmed in the children (${stats.full} full), longest chain ${stats.maxChain}, ` +
      `kills that left temp files ${stats.tempLeft}, unlisted checkpoint files ${stats.unlistedLeft}; ${seconds} s, seed ${SEED}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

Crash.run();
