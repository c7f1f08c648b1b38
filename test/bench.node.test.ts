/**
 * Smoke test of the benchmarks and the memory profile: both run in their
 * short form (--quick) into a temp directory (never docs/ or bench/), and
 * their output has the promised shape: a row per case per backend (wasm,
 * and native where it loads). No timing is asserted: the numbers depend on
 * the machine.
 */
// @keystate-test once: the benchmarks run every backend themselves.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cases } from '../bench/catalog.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'ks-bench-'));

function node(script: string): void {
  const r = spawnSync(process.execPath, [join(root, 'bench', script), '--quick', '--out', out], { cwd: root, encoding: 'utf8', timeout: 5 * 60_000 });
  assert.is(r.status, 0, `${script} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
}

const Bench = suite('benchmarks (--quick)');

Bench.after(() => rmSync(out, { recursive: true, force: true }));

Bench('run.mjs writes every case with finite numbers, into --out only', () => {
  node('run.mjs');
  const file = join(out, 'results-quick.json');
  assert.ok(existsSync(file), 'results-quick.json in --out');
  assert.not.ok(existsSync(join(out, 'BENCHMARKS.md')), 'a quick run writes no BENCHMARKS.md');
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(Object.keys(doc).sort(), ['env', 'results']);
  for (const k of ['node', 'v8', 'cpu', 'cores', 'os', 'memory', 'date', 'quick', 'keystateVersion', 'wasmBytes']) {
    assert.ok(k in doc.env, `env.${k}`);
  }
  assert.is(doc.env.quick, true);
  assert.ok(doc.results.wasm, 'wasm rows');
  assert.ok(doc.results.native, 'native rows (the addon is built before the tests)');
  for (const [backend, c] of Object.keys(doc.results).flatMap((b) => (cases as { name: string; optional?: boolean }[]).map((c) => [b, c] as const))) {
    const r = doc.results[backend][c.name];
    if (c.optional && r === undefined) continue; // the build may lack what an optional case needs
    assert.ok(r, `result for ${c.name} on ${backend}`);
    for (const k of ['keystate', 'baseline', 'ratio']) {
      assert.type(r[k], 'number', `${c.name}.${k}`);
      assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${c.name}.${k} = ${r[k]}`);
    }
    assert.type(r.unit, 'string', `${c.name}.unit`);
    assert.type(r.baselineName, 'string', `${c.name}.baselineName`);
    for (const [k, v] of Object.entries(r)) {
      if (typeof v === 'number') assert.ok(Number.isFinite(v), `${c.name}.${k} = ${v}`);
    }
  }
  for (const b of Object.keys(doc.results)) {
    assert.is(doc.results[b].snapshot_pinned_10pct.pinned_bytes_after_release, 0, `${b}: a released snapshot pins nothing`);
  }
});

Bench('profile.mjs draws an SVG and keeps the samples, into --out only', () => {
  node('profile.mjs');
  const svg = readFileSync(join(out, 'profile.svg'), 'utf8');
  assert.ok(svg.startsWith('<svg'), 'starts with <svg');
  assert.ok(svg.trimEnd().endsWith('</svg>'), 'ends with </svg>');
  assert.ok(/<(path|polyline)\b/.test(svg), 'has a path or polyline');
  assert.not.ok(svg.includes('NaN'), 'no NaN coordinates');
  const doc = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8'));
  for (const which of ['keystate', 'map']) {
    const run = doc.runs[which];
    assert.ok(run.samples.length > 3, `${which}: samples`);
    assert.ok(run.phases.length === 4, `${which}: phases`);
    assert.ok(run.checkpoints.length > 0, `${which}: checkpoints`);
    for (const s of run.samples) assert.ok(s.every((x: unknown) => typeof x === 'number' && Number.isFinite(x)), `${which}: numeric sample`);
  }
});

Bench.run();
