/**
 * Every TypeScript block of README.md runs, with `keystate` resolved to the
 * built package, and type-checks against its declarations. A `console.log`
 * line with a trailing comment must print that comment (in order); comments
 * starting with "e.g." are examples, not checked.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
const entry = join(root, 'dist', 'index.js');

const Readme = suite('README examples');

Readme('the README has runnable examples', () => {
  assert.ok(blocks.length >= 5, `${blocks.length} blocks`);
});

blocks.forEach((code, i) => {
  const first = code.split('\n').find((l) => l.trim() && !l.startsWith('import')) ?? '';
  Readme(`block ${i + 1}: ${first.slice(0, 60)}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ks-readme-'));
    try {
      const file = join(dir, 'block.mts');
      writeFileSync(file, code.replaceAll("from 'keystate'", `from ${JSON.stringify(entry)}`));
      const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), file], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
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

Readme('every block type-checks against the published declarations', () => {
  const dir = mkdtempSync(join(root, 'node_modules', '.ks-readme-'));
  try {
    const files = blocks.map((code, i) => {
      const f = join(dir, `block${i}.mts`);
      writeFileSync(f, `export {};\n${code}`);
      return f;
    });
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          lib: ['ES2022', 'DOM', 'ESNext.Disposable'],
          types: ['node'],
          paths: { keystate: [join(root, 'dist', 'index.d.ts')] },
        },
        files,
      }),
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stdout + r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Readme.run();
