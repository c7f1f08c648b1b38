/**
 * Which backend the API uses. Each entry point (Node, browser) installs its
 * environment's loader; `setBackend` lets a user hand one in.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Backend } from './types.js';

type Loader = () => Backend | Promise<Backend>;

let loader: Loader | undefined;
let current: Promise<Backend> | undefined;

/** Installs the loader an entry point provides. */
export function setLoader(l: Loader): void {
  loader = l;
  current = undefined;
}

/** Uses `b` for stores created from now on. */
export function setBackend(b: Backend): void {
  current = Promise.resolve(b);
}

export function getBackend(): Promise<Backend> {
  if (!current) {
    if (!loader) return Promise.reject(new InvalidArgumentError('INVALID_ARGUMENT', 'no keystate backend is loaded'));
    current = Promise.resolve().then(loader);
    current.catch(() => (current = undefined));
  }
  return current;
}
