// @keystate-test once: every block runs in a child process on the default backend, whatever TEST_BACKEND says.
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
 *
 * Blocks that import keystate/s3 or keystate/kafka run against the real
 * servers the S3 and Kafka suites use (test/_s3.ts, test/_kafka.ts), started
 * here when such a block exists and handed to the block as a user's
 * environment would: S3_ENDPOINT with AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY (bucket `checkpoints`), KAFKA_BROKERS.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KafkaBroker } from './_kafka.js';
import { ACCESS_KEY, S3Gateway, SECRET_KEY } from './_s3.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
const browserBlocks = [...readme.matchAll(/```ts browser\n([\s\S]*?)```/g)].map((m) => m[1]);
const entry = join(root, 'dist', 'index.js');
const entries: Record<string, string> = { keystate: entry, 'keystate/s3': join(root, 'dist', 's3.js'), 'keystate/kafka': join(root, 'dist', 'kafka.js') };

const needs = (what: string) => blocks.some((b) => b.includes(`from '${what}'`));
const gw = needs('keystate/s3') || needs('keystate/kafka') ? await S3Gateway.start() : null;
const broker = needs('keystate/kafka') ? await KafkaBroker.start() : null;
if (gw) await gw.bucket('checkpoints');
const serverEnv: Record<string, string> = {
  ...(gw ? { S3_ENDPOINT: gw.endpoint, AWS_ACCESS_KEY_ID: ACCESS_KEY, AWS_SECRET_ACCESS_KEY: SECRET_KEY, AWS_REGION: 'us-east-1' } : {}),
  ...(broker ? { KAFKA_BROKERS: broker.brokers.join(',') } : {}),
};

const Readme = suite('README examples');

Readme('the README has runnable examples', () => {
  assert.ok(blocks.length >= 5, `${blocks.length} blocks`);
  assert.ok(browserBlocks.length >= 3, `${browserBlocks.length} browser blocks`);
});

blocks.forEach((code, i) => {
  const first = code.split('\n').find((l) => l.trim() && !l.startsWith('import')) ?? '';
  const server = code.includes("from 'keystate/kafka'") ? broker && gw : code.includes("from 'keystate/s3'") ? gw : true;
  if (!server) return; // skipped with the servers' notice (not on Debian as root, where a missing server fails)
  Readme(`block ${i + 1}: ${first.slice(0, 60)}`, () => {
    // Under node_modules/, so that the packages a block imports (@aws-sdk/client-s3, kafkajs) resolve.
    const dir = mkdtempSync(join(root, 'node_modules', '.ks-readme-run-'));
    try {
      const file = join(dir, 'block.mjs');
      const ts = code.replace(/from '(keystate(?:\/s3|\/kafka)?)'/g, (_, name: string) => `from ${JSON.stringify(entries[name])}`);
      writeFileSync(file, transformSync(ts, { loader: 'ts', format: 'esm', target: 'es2022' }).code);
      const r = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...serverEnv } });
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
    paths: { keystate: [join(root, 'dist', 'index.d.ts')], 'keystate/s3': [join(root, 'dist', 's3.d.ts')], 'keystate/kafka': [join(root, 'dist', 'kafka.d.ts')] },
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

Readme.after(async () => {
  await Promise.all([gw?.stop(), broker?.stop()]);
});

Readme.run();
