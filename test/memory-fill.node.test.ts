// @keystate-test once: fills one WebAssembly instance to its 4 GiB, so it runs on the wasm backend only.
//
// A full WebAssembly memory is an error, not a trap: writing 32 MiB values
// until `memory.grow` fails ends in STORE_FULL, the failed write leaves
// nothing, the other stores of the instance go on working (read, write,
// snapshot, checkpoint, restore), and closing the full store gives its
// memory to them. Then the instance is filled to the last page with smaller
// and smaller values: still no trap, and reading a checkpoint (inspect, with
// its record listing) in the full instance is refused the same way. Node only (a browser may stop a tab
// first); about 4 GiB of memory for a few seconds.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { inspectCheckpoint, StateStore, StoreFullError } from './_backend.js';
import { checkpointBytes } from './_util.js';

const Fill = suite('memory: a full WebAssembly memory');

const BIG = 32 << 20;

/** Writes `len`-byte values under new keys until STORE_FULL; returns how many fit. */
function fillWith(set: (k: string, v: Uint8Array) => void, len: number, prefix: string, max = Infinity): number {
  const value = new Uint8Array(len);
  for (let i = 0; i < max; i++) {
    value[0] = i & 0xff;
    value[len - 1] = 0xff - (i & 0xff);
    try {
      set(`${prefix}${i}`, value);
    } catch (e) {
      if (!(e instanceof StoreFullError)) throw e;
      assert.is(e.code, 'STORE_FULL');
      return i;
    }
  }
  return max;
}

/** Everything another store of the instance must still do. */
async function usable(other: StateStore, tag: string): Promise<void> {
  const o = other.valueState<string>('o');
  assert.is(o.get(1), 'one', `${tag}: read`);
  o.set(`${tag}-new`, 'written');
  assert.is(o.get(`${tag}-new`), 'written', `${tag}: write`);
  const snap = other.snapshot();
  o.set(1, 'changed');
  assert.is(snap.valueState<string>('o').get(1), 'one', `${tag}: snapshot`);
  snap.release();
  o.set(1, 'one');
  const bytes = await checkpointBytes(other);
  let listed = 0;
  const report = await inspectCheckpoint(bytes, { backend: 'wasm', onRecord: () => listed++ });
  assert.is(report.records, other.memory().entries, `${tag}: inspect`);
  assert.is(listed, report.records, `${tag}: records listed`);
  const back = await StateStore.restore([bytes], { backend: 'wasm' });
  assert.is(back.valueState<string>('o').get(1), 'one', `${tag}: restore`);
  assert.is(back.memory().entries, other.memory().entries, `${tag}: restored entries`);
  back.close();
}

Fill('32 MiB values until memory.grow fails: STORE_FULL, nothing left, other stores work; closing gives the memory back', async () => {
  const other = await StateStore.create({ backend: 'wasm' });
  const o = other.valueState<string>('o');
  o.set(1, 'one');
  for (let i = 2; i < 1000; i++) o.set(i, `value ${i}`);
  const inspected = await checkpointBytes(other);
  const full = await StateStore.create({ backend: 'wasm' });
  const blob = full.valueState<Uint8Array>('blob', { codec: 'bytes' });
  const t0 = Date.now();
  const n = fillWith((k, v) => blob.set(k, v), BIG, 'big');
  const grown = full.memory().wasmMemoryBytes;
  console.log(`  ${n} values of 32 MiB fit (wasm memory ${(grown / 2 ** 30).toFixed(2)} GiB) in ${Date.now() - t0} ms`);
  assert.ok(n >= 60 && n < 128, `${n} values of 32 MiB before the 4 GiB memory was full`);
  assert.is(blob.get(`big${n}`), undefined, 'the failed write left nothing');
  assert.is(full.memory().entries, n);
  const first = blob.get('big0') as Uint8Array;
  assert.is(first.length, BIG);
  assert.is(first[BIG - 1], 0xff);
  await usable(other, 'after 32 MiB');

  // To the last page: smaller and smaller values, each size until refused.
  const sizes = [1 << 20, 64 << 10, 4 << 10, 256, 16];
  const counts = sizes.map((len) => fillWith((k, v) => blob.set(k, v), len, `s${len}-`, 200_000));
  console.log(`  then ${counts.map((c, i) => `${c} of ${sizes[i]} B`).join(', ')}`);
  assert.ok(counts[counts.length - 1] < 200_000, 'small writes are refused too, at last');
  const wasmBytes = full.memory().wasmMemoryBytes;
  // Nothing traps on a full instance: reads work, writes and snapshots work or are refused.
  assert.is(o.get(1), 'one');
  const outcomes: string[] = [];
  const attempts = { write: () => o.set('x', 'y'.repeat(1000)), snapshot: () => other.snapshot().release(), tiny: () => blob.set('tiny', new Uint8Array(1)),
    // Reading a checkpoint (the command line's inspect, with its record listing) in the same instance.
    inspect: () => inspectCheckpoint(inspected, { backend: 'wasm', onRecord: () => undefined }).then((r) => assert.is(r.records, 1000)),
  };
  for (const [what, attempt] of Object.entries(attempts)) {
    try {
      await attempt();
      outcomes.push(`${what} ok`);
    } catch (e) {
      if (!(e instanceof StoreFullError)) throw e;
      outcomes.push(`${what} STORE_FULL`);
    }
  }
  console.log(`  on the full instance: ${outcomes.join(', ')}`);
  // One 32 MiB value deleted is room for the others again.
  assert.ok(blob.delete('big1'));
  await usable(other, 'after a delete');

  // Closing the full store gives its memory to the others (wasm memory never shrinks; it is reused).
  full.close();
  const grow = other.valueState<Uint8Array>('grow', { codec: 'bytes' });
  const again = fillWith((k, v) => grow.set(k, v), BIG, 'again', 60);
  assert.is(again, 60, 'the closed store\'s memory holds new values');
  assert.is(other.memory().wasmMemoryBytes, wasmBytes, 'reused, not grown');
  for (let i = 0; i < again; i++) grow.delete(`again${i}`);
  await usable(other, 'after close');
  other.close();
});

Fill.run();
