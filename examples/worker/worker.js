// The worker of main.js: a keystate store in a Web Worker (a module worker).
import { StateStore } from 'keystate';
import { counter } from './counter.js';

self.onmessage = ((handle) => (e) => handle(e.data))(counter(StateStore, (msg, transfer) => self.postMessage(msg, transfer)));
