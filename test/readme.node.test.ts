/**
 * Every TypeScript block of README.md runs, with `keystate` resolved to the
 * built package, and type-checks against its declarations. A `console.log`
 * line with a trailing comment must print that comment (in order); comments
 * starting with "e.g." are examples, not checked.
 *
 * ```ts blocks run in Node: their types are stripped with esbuild (as tsx
 * does) and the result runs as plain ESM, so a block may start itself as a
 * worker_threads worker. ```ts browser blocks need a browser: here they only
 * type-check against the browser entry (DOM, no Node types); the packaging
 * test runs them in Chromium.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
const browserBlocks = [...readme.matchAll(/```ts browser\n([\s\S]*?)```/g)].map((m) => m[1]);
const entry = join(root, 'dist', 'index.js');

const Readme = suite('README examples');

Readme('the README has runnable examples', () => {
  assert.ok(blocks.length >= 5, `${blocks.length} blocks`);
  assert.ok(browserBlocks.length >= 3, `${browserBlocks.length} browser blocks`);
});

blocks.forEach((code, i) => {
  const first = code.split('\n').find((l) => l.trim() && !l.startsWith('import')) ?? '';
  Readme(`block ${i + 1}: ${first.slice(0, 60)}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ks-readme-'));
    try {
      const file = join(dir, 'block.mjs');
      const ts = code.replaceAll("from 'keystate'", `from ${JSON.stringify(entry)}`);
      writeFileSync(file, transformSync(ts, { loader: 'ts', format: 'esm', target: 'es2022' }).code);
      const r = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
      assert.is(r.status, 0, `exit ${r.status}\n${r.stderr}`);
      const expected = [...code.matchAll(/console\.log\(.*\); \/\/ (?!e\.g\.)(.*)$/gm)].map((m) => m[1].trim());
      let at = 0;
      const lines = r.stdout.split('\n').map((l) => l.trim());
      for (const want of expected) {
        const found = lines.indexOf(want, at);
        assert.ok(found >= 0, `expected output "${want}" (in order) in:\n${r.stdout}`);
        at = found + 1;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Type-checks `codes` as modules with `compilerOptions`, in a folder under node_modules (so `@types` resolve). */
function typecheck(codes: string[], compilerOptions: Record<string, unknown>) {
  const dir = mkdtempSync(join(root, 'node_modules', '.ks-readme-'));
  try {
    const files = codes.map((code, i) => {
      const f = join(dir, `block${i}.mts`);
      writeFileSync(f, `export {};\n${code}`);
      return f;
    });
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, ...compilerOptions }, files }));
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stdout + r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

Readme('every block type-checks against the published declarations', () => {
  typecheck(blocks, {
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2022', 'DOM', 'ESNext.Disposable'],
    types: ['node'],
    paths: { keystate: [join(root, 'dist', 'index.d.ts')] },
  });
});

Readme('every browser block type-checks against the browser entry, with the DOM and without Node types', () => {
  typecheck(browserBlocks, {
    module: 'ESNext',
    moduleResolution: 'Bundler',
    lib: ['ES2022', 'DOM', 'DOM.Iterable', 'ESNext.Disposable'],
    types: [],
    paths: { keystate: [join(root, 'dist', 'index.browser.d.ts')], 'keystate/slim': [join(root, 'dist', 'slim.d.ts')] },
  });
});

Readme.run();
