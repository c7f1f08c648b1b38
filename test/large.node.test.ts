/**
 * Past WebAssembly's 4 GiB: the native backend holds 4.25 GiB of values (34
 * values of 128 MiB, few writes) and reads every one back. On wasm this
 * cannot fit (one linear memory is at most 4 GiB), so there it is skipped.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { StateStore } from './_backend.js';

const Large = suite('more than 4 GiB');

const VALUE = 128 << 20;
const COUNT = 34;

Large('the native backend stores and reads back 4.25 GiB of values', async () => {
  const store = await StateStore.create({ backend: (await StateStore.create()).backend });
  if (store.backend !== 'native') {
    console.log('  (skipped on wasm: one WebAssembly memory holds at most 4 GiB)');
    return;
  }
  const blob = store.valueState<Uint8Array>('blob', { codec: 'bytes' });
  const value = new Uint8Array(VALUE);
  for (let i = 0; i < VALUE; i += 4096) value[i] = i >>> 12;
  for (let k = 0; k < COUNT; k++) {
    value[0] = k;
    value[VALUE - 1] = 255 - k;
    blob.set(k, value);
  }
  const m = store.memory();
  assert.is(m.entries, COUNT);
  assert.ok(m.liveBytes > 2 ** 32, `live bytes ${m.liveBytes} are past 4 GiB`);
  assert.ok(m.backendBytes > 2 ** 32, `the addon holds ${m.backendBytes} bytes`);
  for (let k = COUNT - 1; k >= 0; k--) {
    const got = blob.get(k) as Uint8Array;
    assert.is(got.length, VALUE, `value ${k}: length`);
    assert.is(got[0], k, `value ${k}: first byte`);
    assert.is(got[VALUE - 1], 255 - k, `value ${k}: last byte`);
    for (let i = 4096; i < VALUE - 1; i += 1 << 20) assert.is(got[i], (i >>> 12) & 0xff, `value ${k}: byte ${i}`);
  }
  store.close();
});

Large.run();
