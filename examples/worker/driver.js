// The main thread's side, the same in a browser and in Node: sends events to
// the worker, asks for a full and then an incremental checkpoint, receives
// their bytes transferred, restores them here into a store of its own, and
// checks every user against what it sent.
//
// `send(message)` posts to the worker; `onMessage(f)` registers for its replies.

/** Seeded events: [user, cents], so every run sends the same. */
export function* events(n, users, seed) {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let i = 0; i < n; i++) yield [`user-${Math.floor(next() * users)}`, 1 + Math.floor(next() * 5000)];
}

/**
 * @param {typeof import('keystate').StateStore} StateStore
 * @param {{ send: (msg: object) => void, onMessage: (f: (msg: any) => void) => void }} worker
 * @param {(line: string) => void} log
 */
export async function drive(StateStore, worker, log, { users = 10_000, batches = [50_000, 2_000] } = {}) {
  const waiting = [];
  const inbox = [];
  let failure = null;
  worker.onMessage((msg) => {
    if (msg.type === 'error') {
      failure = new Error(`the worker failed: ${msg.message}`);
      for (const w of waiting.splice(0)) w.reject(failure);
      return;
    }
    const i = waiting.findIndex((w) => w.type === msg.type);
    if (i >= 0) waiting.splice(i, 1)[0].resolve(msg);
    else inbox.push(msg);
  });
  /** The next message of `type` from the worker. */
  const next = (type) => {
    if (failure) return Promise.reject(failure);
    const i = inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => waiting.push({ type, resolve, reject }));
  };

  const expected = new Map(); // user -> [count, spent]
  const checkpoints = [];
  for (const [b, n] of batches.entries()) {
    const batch = [...events(n, users, b + 1)];
    for (const [user, cents] of batch) {
      const [c, s] = expected.get(user) ?? [0, 0];
      expected.set(user, [c + 1, s + cents]);
    }
    worker.send({ type: 'events', events: batch });
    const applied = await next('applied');
    log(`worker applied ${applied.events.toLocaleString('en-US')} events (${applied.entries.toLocaleString('en-US')} entries in its store)`);

    worker.send({ type: 'checkpoint' });
    const cp = await next('checkpoint');
    const { byteLengthAfter } = await next('sent');
    // Arrived as the worker's own buffer: not a copy, and not a view into anything larger.
    const owns = cp.bytes.byteOffset === 0 && cp.bytes.byteLength === cp.bytes.buffer.byteLength;
    log(`checkpoint ${cp.id} (${cp.kind}${cp.parentId ? `, extends ${cp.parentId}` : ''}): ${cp.bytes.byteLength.toLocaleString('en-US')} bytes transferred; the worker's array now holds ${byteLengthAfter}`);
    checkpoints.push({ id: cp.id, kind: cp.kind, bytes: cp.bytes, byteLengthAfter, owns });
    // Here an app would store the bytes durably (a file, a server, keystate's browser storage); then:
    worker.send({ type: 'stored', id: cp.id });
    await next('confirmed');
  }

  const restored = await StateStore.restore(checkpoints.map((c) => c.bytes));
  const count = restored.valueState('count', { default: 0 });
  const spent = restored.reducingState('spent', { codec: 'number', reduce: (a, b) => a + b });
  let mismatches = 0;
  let eventsRestored = 0;
  for (const [user, [c, s]] of expected) {
    const got = count.get(user);
    eventsRestored += got;
    if (got !== c || spent.forKey(user).get() !== s) mismatches++;
  }
  const entries = restored.memory().entries;
  log(`restored on the main thread from ${checkpoints.length} checkpoints: ${expected.size.toLocaleString('en-US')} users, ${eventsRestored.toLocaleString('en-US')} events, ${mismatches} mismatches`);
  return {
    checkpoints: checkpoints.map(({ bytes, ...c }) => ({ ...c, bytes: bytes.byteLength })),
    users: expected.size,
    eventsSent: batches.reduce((a, b) => a + b, 0),
    eventsRestored,
    entries,
    mismatches,
  };
}
