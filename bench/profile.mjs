// @ts-check
// Memory profile (issue 4, item 2): the same workload run once with keystate
// and once with a Map checkpointed by v8.serialize, each in its own process
// (bench/profile-child.mjs), sampled every 50 ms; draws docs/profile.svg and
// keeps the raw samples in docs/profile.json.
//
//   npm run profile               1M entries
//   npm run profile -- --quick    100k entries, a few seconds per run
//   --out DIR                     write profile.svg and profile.json into DIR instead of docs/
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chart } from './chart.mjs';
import { environment, root } from './lib.mjs';
import { params, SAMPLE_MS } from './profile-child.mjs';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('usage: node bench/profile.mjs [--quick] [--out DIR]');
  process.exit(0);
}
const quick = values.quick ?? false;
const out = values.out ? path.resolve(values.out) : path.join(root, 'docs');

/**
 * Runs one side in a child, checkpointing into a fresh temp directory.
 * @param {'keystate' | 'map'} which @returns {Promise<any>}
 */
function run(which) {
  const dir = mkdtempSync(path.join(tmpdir(), `ks-profile-${which}-`));
  const args = [path.join(root, 'bench', 'profile-child.mjs'), which, dir, ...(quick ? ['--quick'] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], timeout: (quick ? 3 : 15) * 60_000 });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      rmSync(dir, { recursive: true, force: true });
      if (code !== 0) return reject(new Error(`${which}: exit ${code ?? signal}`));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop() ?? ''));
      } catch {
        reject(new Error(`${which}: no JSON in ${JSON.stringify(stdout.slice(-200))}`));
      }
    });
  });
}

const mb = (/** @type {number} */ b) => `${(b / 1e6).toFixed(1)} MB`;
/** One line per run: what the chart shows, for the terminal. */
function summary(/** @type {any} */ r) {
  const peak = (/** @type {number} */ col) => Math.max(...r.samples.map((/** @type {number[]} */ s) => s[col]));
  const cps = r.checkpoints.map((/** @type {{ ms: number }} */ c) => c.ms);
  return `${r.which.padEnd(9)} ${(r.durationMs / 1000).toFixed(1)} s, ${r.samples.length} samples; peak RSS ${mb(peak(4))}, JS heap ${mb(peak(1))}, backend ${mb(peak(2))} (pinned ${mb(peak(3))}); ${cps.length} checkpoints ${Math.round(Math.min(...cps))}-${Math.round(Math.max(...cps))} ms; longest event-loop stall ${Math.round(r.longestStallMs)} ms`;
}

const p = params(quick);
console.log(`memory profile${quick ? ' (quick)' : ''}: ${p.entries.toLocaleString('en-US')} entries, sampled every ${SAMPLE_MS} ms`);
// One after the other, never side by side: each run has the machine to itself.
const keystate = await run('keystate');
console.log(summary(keystate));
const map = await run('map');
console.log(summary(map));

const doc = { env: environment(quick), params: { ...p, sampleMs: SAMPLE_MS }, entries: p.entries, quick, runs: { keystate, map } };
mkdirSync(out, { recursive: true });
for (const [name, text] of [
  ['profile.json', `${JSON.stringify(doc)}\n`],
  ['profile.svg', chart(doc)],
]) {
  const file = path.join(out, name);
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
  console.log(`wrote ${path.relative(process.cwd(), file) || file}`);
}
