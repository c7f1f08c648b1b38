// keystate in a Web Worker: the page sends events, asks for checkpoints,
// receives their bytes transferred, and restores them. Bundle and serve it
// with `node examples/worker/serve.mjs`.
import { StateStore } from 'keystate';
import { drive } from './driver.js';

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const out = document.querySelector('#out');
const log = (line) => (out.textContent += `${line}\n`);

window.keystateResult = drive(
  StateStore,
  { send: (msg) => worker.postMessage(msg), onMessage: (f) => worker.addEventListener('message', (e) => f(e.data)) },
  log,
).then(
  (result) => {
    log(result.mismatches === 0 ? 'all users match' : 'MISMATCH');
    return result;
  },
  (e) => {
    log(`failed: ${e.stack ?? e}`);
    throw e;
  },
).finally(() => worker.terminate());
