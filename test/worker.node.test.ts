/**
 * keystate in workers, through examples/worker/ as users run it: in Node,
 * node.mjs (a worker_threads worker) as a child process; in Chromium, the page
 * (main.js and worker.js bundled by esbuild, as serve.mjs does) with a real
 * module Web Worker. Each time a store in the worker takes a full and an
 * incremental checkpoint, the bytes move to the main thread (the worker's
 * array is left empty: transferred, not copied), and the main thread restores
 * them and checks every user against the events it sent.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureChromium, launch, serve } from '../scripts/browser.mjs';
import { bundle } from '../examples/worker/serve.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Result {
  checkpoints: { id: number; kind: string; bytes: number; byteLengthAfter: number; owns: boolean }[];
  users: number;
  eventsSent: number;
  eventsRestored: number;
  entries: number;
  mismatches: number;
}

function check(r: Result, what: string) {
  assert.equal(r.checkpoints.map((c) => [c.id, c.kind]), [[1, 'full'], [2, 'incremental']], `${what}: checkpoint kinds`);
  for (const c of r.checkpoints) {
    assert.ok(c.bytes > 0, `${what}: checkpoint ${c.id} has bytes`);
    assert.is(c.byteLengthAfter, 0, `${what}: checkpoint ${c.id} was transferred (the worker's array is empty after postMessage)`);
    assert.ok(c.owns, `${what}: checkpoint ${c.id} arrived as an array that owns its whole buffer`);
  }
  assert.ok(r.checkpoints[1].bytes < r.checkpoints[0].bytes / 2, `${what}: the incremental carries only what changed`);
  assert.is(r.eventsRestored, r.eventsSent, `${what}: every event is in the restored store`);
  assert.is(r.mismatches, 0, `${what}: every user matches`);
  assert.is(r.entries, 2 * r.users, `${what}: count and spent per user, nothing else`);
}

const W = suite('workers');

W('Node worker_threads: examples/worker/node.mjs', () => {
  const r = spawnSync(process.execPath, ['examples/worker/node.mjs', '--json'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  assert.is(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  check(JSON.parse(r.stdout.trim().split('\n').at(-1) as string), 'Node');
});

const chromium = ensureChromium();
if (chromium.ok) {
  W('Chromium Web Worker: examples/worker/ (index.html, main.js, worker.js) bundled by esbuild', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ks-worker-test-'));
    await bundle(out);
    const server = await serve({ '/': out });
    const browser = await launch();
    try {
      const page = await browser.context.newPage();
      const log: string[] = [];
      page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
      page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
      await page.goto(`${server.url}/`);
      const result = await Promise.race([
        page.evaluate(() => (window as { keystateResult?: unknown }).keystateResult),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`no result after 60 s:\n${log.join('\n')}`)), 60_000).unref()),
      ]);
      check(result as Result, 'Chromium');
      const text = await page.textContent('#out');
      assert.match(text ?? '', /checkpoint 2 \(incremental, extends 1\): [\d,]+ bytes transferred; the worker's array now holds 0/);
      assert.match(text ?? '', /all users match/);
      // The worker fetched the wasm itself, beside its bundle.
      assert.ok(server.requests.filter((p) => p === '/wasm/keystate_wasm_bg.wasm').length >= 2, `the page and the worker each load the core: ${server.requests.join(' ')}`);
    } finally {
      await browser.close();
      await server.close();
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
} else {
  console.log(`workers: the Chromium test is skipped (counted neither as passed nor as failed): ${chromium.reason}`);
}

W.run();
