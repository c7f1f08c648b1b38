// The worker's side, the same in a browser and in Node: a store that counts
// events per user, and answers a request for a checkpoint with its bytes,
// transferred (moved, not copied) to the main thread. The checkpoint counts
// (confirm) only once the main thread says it has stored the bytes.
//
// `post(message, transfer)` sends to the main thread; the returned function
// takes each message from it.

/** @param {typeof import('keystate').StateStore} StateStore @param {(msg: object, transfer?: Transferable[]) => void} post */
export function counter(StateStore, post) {
  // Incremental checkpoints by policy: the first is full, later ones carry only what changed.
  const ready = StateStore.create({ checkpoints: { incremental: true } }).then((store) => ({
    store,
    count: store.valueState('count', { default: 0 }),
    spent: store.reducingState('spent', { codec: 'number', reduce: (a, b) => a + b }),
  }));
  /** Checkpoints sent, waiting for the main thread to say they are stored. */
  const sent = new Map();
  const handle = async (msg) => {
    const { store, count, spent } = await ready;
    switch (msg.type) {
      case 'events': {
        for (const [user, cents] of msg.events) {
          store.setCurrentKey(user);
          count.update(count.value() + 1);
          spent.add(cents);
        }
        post({ type: 'applied', events: msg.events.length, entries: store.memory().entries });
        break;
      }
      case 'checkpoint': {
        const cp = store.checkpoint();
        // bytes() returns an array that owns its whole ArrayBuffer (a copy out of wasm memory):
        // transferring the buffer moves it to the main thread, and leaves this one empty.
        const bytes = await cp.bytes();
        sent.set(cp.id, cp);
        post({ type: 'checkpoint', id: cp.id, parentId: cp.parentId, kind: cp.kind, bytes }, [bytes.buffer]);
        post({ type: 'sent', id: cp.id, byteLengthAfter: bytes.byteLength });
        break;
      }
      case 'stored':
      case 'failed': {
        // Confirmed, the next incremental checkpoint extends it; aborted, the next one carries its changes.
        const cp = sent.get(msg.id);
        sent.delete(msg.id);
        if (msg.type === 'stored') cp.confirm();
        else cp.abort();
        post({ type: msg.type === 'stored' ? 'confirmed' : 'aborted', id: msg.id });
        break;
      }
      default:
        throw new Error(`unknown message ${JSON.stringify(msg.type)}`);
    }
  };
  // One message at a time, in order.
  let queue = Promise.resolve();
  return (msg) => {
    queue = queue.then(() => handle(msg)).catch((e) => post({ type: 'error', message: String(e?.stack ?? e) }));
  };
}
