// Checkpoint bytes can move between threads without a copy: `bytes()` and
// each chunk of `stream()` own their whole ArrayBuffer (copies out of wasm
// memory, never views into it), so postMessage can transfer them. Runs in
// Node and in Chromium (MessageChannel and structuredClone exist in both).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { StateStore } from './_backend.js';

const T = suite('transferable checkpoint bytes');

const owns = (b: Uint8Array) => b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;

async function filled(): Promise<StateStore> {
  const store = await StateStore.create();
  const v = store.valueState<string>('v', { codec: 'string' });
  for (let i = 0; i < 5000; i++) v.set(i, `value-${i}`.repeat(3));
  return store;
}

const readV = (s: StateStore, k: number) => s.valueState<string>('v', { codec: 'string' }).get(k);

T('bytes() and every stream() chunk own their whole buffer', async () => {
  const store = await filled();
  const bytes = await store.checkpoint().bytes({ chunkSize: 4096 });
  assert.ok(owns(bytes), `bytes(): offset ${bytes.byteOffset}, ${bytes.byteLength} of a ${bytes.buffer.byteLength}-byte buffer`);
  const reader = store.checkpoint().stream({ chunkSize: 4096 }).getReader();
  let chunks = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks++;
    assert.ok(owns(value), `chunk ${chunks}: offset ${value.byteOffset}, ${value.byteLength} of ${value.buffer.byteLength}`);
  }
  assert.ok(chunks > 3, `${chunks} chunks`);
});

T('structuredClone with transfer moves the bytes: the source is emptied, the moved bytes restore', async () => {
  const bytes = await (await filled()).checkpoint().bytes();
  const n = bytes.byteLength;
  const moved = structuredClone(bytes, { transfer: [bytes.buffer] });
  assert.is(bytes.byteLength, 0, 'the source array is detached');
  assert.is(moved.byteLength, n);
  assert.is(readV(await StateStore.restore([moved]), 4999), 'value-4999'.repeat(3));
});

T('postMessage over a MessageChannel transfers the bytes, and the receiver restores them', async () => {
  const bytes = await (await filled()).checkpoint().bytes();
  const n = bytes.byteLength;
  const { port1, port2 } = new MessageChannel();
  try {
    const received = new Promise<Uint8Array>((resolve) => {
      port2.onmessage = (e: MessageEvent) => resolve(e.data as Uint8Array);
    });
    port1.postMessage(bytes, [bytes.buffer]);
    assert.is(bytes.byteLength, 0, "the sender's array is empty right after postMessage");
    const got = await received;
    assert.is(got.byteLength, n);
    assert.is(readV(await StateStore.restore([got]), 0), 'value-0'.repeat(3));
  } finally {
    port1.close();
    port2.close();
  }
});

T.run();
