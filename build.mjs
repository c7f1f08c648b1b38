#!/usr/bin/env node
// @ts-check
// Builds keystate. Usage: node build.mjs [step...] [--dev]
//   toolchain  get a Rust toolchain for wasm32 plus wasm-pack and wasm-bindgen (scripts/toolchain.mjs)
//   wasm       crates/keystate-wasm -> dist/wasm/ (wasm-pack, then wasm-opt -O3 unless --dev)
//   ts         ts/ -> dist/ (tsc -p tsconfig.json)
//   all        toolchain, wasm, ts (the default; what `npm install` runs through `prepare`)
//   clean      remove dist/ and throwaway build folders (keeps target/ and the .tools/ cache)
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { run, toolchain } from './scripts/toolchain.mjs';

const root = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(root, 'dist');
const wasmOut = path.join(dist, 'wasm');
const OUT_NAME = 'keystate_wasm';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    dev: { type: 'boolean', default: false },
    release: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(2, 8).join('\n').replace(/^\/\/ ?/gm, ''));
  process.exit(0);
}
const release = !values.dev;

/** @type {Promise<NodeJS.ProcessEnv> | undefined} */
let toolEnv;
const tools = () => (toolEnv ??= toolchain(root));
const nodeEnv = () => ({ ...process.env, PATH: [path.join(root, 'node_modules', '.bin'), process.env.PATH].join(path.delimiter) });

/** @param {string} cmd @param {string[]} args @param {NodeJS.ProcessEnv} env */
function must(cmd, args, env) {
  if (!run(cmd, args, { cwd: root, env })) throw new Error(`${cmd} failed`);
}

/** @type {Record<string, () => void | Promise<void>>} */
const steps = {
  async toolchain() {
    await tools();
  },

  async wasm() {
    const env = await tools();
    fs.rmSync(wasmOut, { recursive: true, force: true });
    // no-install: use the wasm-bindgen on PATH (.tools/cargo), never download one.
    // no-opt: wasm-opt comes from binaryen's npm package, run below.
    must('wasm-pack', ['build', 'crates/keystate-wasm', '--target', 'web', release ? '--release' : '--dev',
      '--mode', 'no-install', '--no-opt', '--no-pack', '--no-gitignore',
      '--out-dir', wasmOut, '--out-name', OUT_NAME], env);
    // Keep only the glue, its types, the wasm and any JS snippets; drop README, LICENSE and the like.
    for (const f of fs.readdirSync(wasmOut)) {
      if (!f.startsWith(OUT_NAME) && f !== 'snippets') fs.rmSync(path.join(wasmOut, f), { recursive: true });
    }
    const wasm = path.join(wasmOut, `${OUT_NAME}_bg.wasm`);
    const before = fs.statSync(wasm).size;
    if (release) must('wasm-opt', ['-O3', wasm, '-o', wasm], env);
    const bytes = fs.readFileSync(wasm);
    const opt = release ? ` (${before} before wasm-opt)` : '';
    console.log(`${path.relative(root, wasm)}: ${bytes.length} bytes raw${opt}, ${zlib.gzipSync(bytes).length} gzipped`);
  },

  ts() {
    const src = path.join(root, 'ts');
    const files = fs.existsSync(src) ? fs.readdirSync(src, { recursive: true }).map(String) : [];
    if (!files.some((f) => f.endsWith('.ts'))) return console.log('no TypeScript sources in ts/ yet; nothing to compile');
    must('tsc', ['-p', 'tsconfig.json'], nodeEnv());
  },

  clean() {
    for (const dir of [dist, path.join(root, 'target', 'wasm32-std')]) {
      console.log(`removing ${path.relative(root, dir)}`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};

if (values.dev && values.release) {
  console.error('build.mjs: --dev and --release exclude each other');
  process.exit(2);
}
const names = (positionals.length ? positionals : ['all'])
  .flatMap((name) => (name === 'all' ? ['toolchain', 'wasm', 'ts'] : [name]));
for (const name of names) {
  if (!Object.hasOwn(steps, name)) {
    console.error(`build.mjs: unknown step "${name}"; steps: all, ${Object.keys(steps).join(', ')}`);
    process.exit(2);
  }
}
for (const name of names) {
  const t0 = performance.now();
  console.log(`\n== ${name}`);
  try {
    await steps[name]();
  } catch (e) {
    console.error(`build.mjs: step ${name} failed: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
  }
  console.log(`== ${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
