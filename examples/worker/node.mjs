// keystate in a Node worker_threads worker: the main thread sends events, asks
// for checkpoints, receives their bytes transferred, and restores them.
//   node examples/worker/node.mjs          (after `npm run build`)
//   node examples/worker/node.mjs --json   (one line of JSON: what the tests check)
import { Worker } from 'node:worker_threads';
import { StateStore } from 'keystate';
import { drive } from './driver.js';

const json = process.argv.includes('--json');
const worker = new Worker(new URL('./node-worker.mjs', import.meta.url));
worker.on('error', (e) => {
  console.error(e);
  process.exit(1);
});
try {
  const result = await drive(
    StateStore,
    { send: (msg) => worker.postMessage(msg), onMessage: (f) => worker.on('message', f) },
    json ? () => {} : console.log,
  );
  if (json) console.log(JSON.stringify(result));
  process.exitCode = result.mismatches === 0 ? 0 : 1;
} finally {
  await worker.terminate();
}
