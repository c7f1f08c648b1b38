// @ts-check
// One benchmark case in its own process (spawned by run.mjs), so that no case
// inherits another's heap, JIT state or wasm memory. Prints the result as one
// JSON line on stdout; anything else goes to stderr.
// Usage: node --expose-gc bench/case.mjs <name> [--quick]
import { parseArgs } from 'node:util';
import { caseNamed } from './catalog.mjs';
import { sizes } from './lib.mjs';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { quick: { type: 'boolean', default: false } } });
if (positionals.length !== 1) {
  console.error('usage: node --expose-gc bench/case.mjs <name> [--quick]');
  process.exit(2);
}
const name = positionals[0];
const mod = await import(new URL(caseNamed(name).module, import.meta.url).href);
const quick = values.quick ?? false;
// Repetitions after one warm-up round; slow baselines cap them in their case.
const result = await mod[name]({ n: quick ? sizes.quick : sizes.full, reps: quick ? 3 : 7, quick });
process.stdout.write(`${JSON.stringify(result)}\n`);
