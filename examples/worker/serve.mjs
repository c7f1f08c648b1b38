// Bundles the browser example (main.js and worker.js, each with keystate) with
// esbuild, puts the wasm beside them, and serves it on 127.0.0.1.
//   node examples/worker/serve.mjs     (after `npm run build`), then open the URL it prints
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Builds the example into `out`: index.html, main.js, worker.js, wasm/keystate_wasm_bg.wasm. */
export async function bundle(out) {
  await esbuild.build({
    absWorkingDir: here,
    entryPoints: ['main.js', 'worker.js'],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir: out,
    logLevel: 'warning',
  });
  fs.copyFileSync(path.join(here, 'index.html'), path.join(out, 'index.html'));
  // esbuild does not follow keystate's new URL('./wasm/...', import.meta.url): the wasm goes beside the bundles.
  fs.mkdirSync(path.join(out, 'wasm'), { recursive: true });
  const wasm = fileURLToPath(new URL('wasm/keystate_wasm_bg.wasm', import.meta.resolve('keystate')));
  fs.copyFileSync(wasm, path.join(out, 'wasm', 'keystate_wasm_bg.wasm'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { serve } = await import('../../scripts/browser.mjs');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'keystate-worker-example-'));
  await bundle(out);
  const server = await serve({ '/': out });
  console.log(`serving ${out} at ${server.url}/ (Ctrl-C to stop)`);
  process.once('SIGINT', () => {
    fs.rmSync(out, { recursive: true, force: true });
    process.exit(0);
  });
}
