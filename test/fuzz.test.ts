// Golden fuzz cases (test/vectors/fuzz, selected by crates/keystate-fuzz/tests/golden.rs):
// checkpoints with mutated headers, sections, footers and chains, every checksum resealed, so
// that the checks behind the checksums run. Through the public API on this backend (32-bit
// lengths in wasm, the binding's error conversion, the TypeScript restore driver) each case must
// give what the core gives natively: the same error code as a KeystateError, or a store with the
// same number of entries that checkpoints again to the same number. Never a trap.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compact, KeystateError, readFixture, StateStore } from './_backend.js';
import { checkpointBytes } from './_util.js';

type Expect = string | { entries: number; checkpoints: boolean };
interface GoldenCase {
  name: string;
  op: 'restore' | 'compact';
  range: [number, number] | null;
  chains: [number, number][][];
  expect: Expect;
}

// The core's clock in the native run: time 0. (On the wall clock, values of
// states with TTL would have expired long ago, and a checkpoint leaves out
// what expired: the count of entries would differ for that reason alone.)
const clock = () => 0;

async function outcome(c: GoldenCase, bin: Uint8Array): Promise<Expect> {
  const chains = c.chains.map((ch) => ch.map(([o, l]) => bin.slice(o, o + l)));
  let store: StateStore;
  try {
    store = c.op === 'compact'
      ? await StateStore.restore([await compact(chains[0])], { clock })
      : await StateStore.restore(chains.length === 1 ? chains[0] : chains, c.range ? { keyGroupRange: { start: c.range[0], end: c.range[1] }, clock } : { clock });
  } catch (e) {
    return e instanceof KeystateError ? e.code : `not a KeystateError: ${e}`;
  }
  const entries = store.memory().entries;
  let checkpoints = true;
  try {
    const again = await StateStore.restore([await checkpointBytes(store)], { clock });
    if (again.memory().entries !== entries) return `the checkpoint of a restored store holds ${again.memory().entries} entries, not ${entries}`;
    again.close();
  } catch (e) {
    if (!(e instanceof KeystateError)) return `not a KeystateError: ${e}`;
    checkpoints = false;
  }
  store.close();
  return { entries, checkpoints };
}

const Fuzz = suite('fuzz: golden resealed mutations');

Fuzz('every golden case gives the outcome the core gives natively', async () => {
  const bin = await readFixture('vectors/fuzz/pieces.bin');
  const doc = JSON.parse(new TextDecoder().decode(await readFixture('vectors/fuzz/cases.json'))) as { cases: GoldenCase[] };
  assert.ok(doc.cases.length > 100, `${doc.cases.length} cases`);
  const wrong: string[] = [];
  const codes = new Map<string, number>();
  for (const c of doc.cases) {
    const got = await outcome(c, bin);
    const key = typeof got === 'string' ? got : 'restored';
    codes.set(key, (codes.get(key) ?? 0) + 1);
    const same = typeof got === 'string' || typeof c.expect === 'string'
      ? got === c.expect
      : got.entries === c.expect.entries && got.checkpoints === c.expect.checkpoints;
    if (!same) wrong.push(`${c.name}: ${JSON.stringify(got)}, expected ${JSON.stringify(c.expect)}`);
  }
  assert.equal(wrong, [], `${wrong.length} of ${doc.cases.length} cases differ from the core`);
  assert.ok((codes.get('restored') ?? 0) >= 20, `restored: ${codes.get('restored')}`);
  assert.ok((codes.get('CORRUPT') ?? 0) >= 50, `CORRUPT: ${codes.get('CORRUPT')}`);
});

Fuzz.run();
