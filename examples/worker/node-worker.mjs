// The worker of node.mjs: a keystate store in a worker_threads worker.
import { parentPort } from 'node:worker_threads';
import { StateStore } from 'keystate';
import { counter } from './counter.js';

parentPort.on('message', counter(StateStore, (msg, transfer) => parentPort.postMessage(msg, transfer)));
