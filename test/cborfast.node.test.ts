// The cbor codec's fast path where code generation is forbidden (a page whose
// Content-Security-Policy lacks 'unsafe-eval'; here Node's
// --disallow-code-generation-from-strings, the same V8 switch): shapes are
// not compiled, and objects still decode, on both Node backends.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const child = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'cborfast-child.mjs');
const NoCodegen = suite('cbor fast path without code generation');

for (const backend of ['wasm', 'native']) {
  NoCodegen(`objects decode property by property (${backend})`, () => {
    const r = spawnSync(process.execPath, ['--disallow-code-generation-from-strings', child, backend], { encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    assert.equal(got, { codegen: false, fast: 50, wrong: 0, stored: 150 });
  });
}

NoCodegen.run();
