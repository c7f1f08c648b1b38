/** The command line's errors and exit codes: 0 ok, 1 bad input or a failed check, 2 usage. */
import { KeystateError } from '../errors.js';

/** A command used wrongly: exit code 2. */
export class UsageError extends Error {}

/** A check that failed (the message says which): exit code 1. `reported`: the command printed its JSON already. */
export class CheckFailed extends Error {
  constructor(
    message: string,
    readonly reported = false,
  ) {
    super(message);
  }
}

/** The exit code and message for an error a command threw. */
export function describe(e: unknown): { code: 1 | 2; message: string; errorCode?: string } {
  if (e instanceof UsageError) return { code: 2, message: e.message };
  if (e instanceof KeystateError) return { code: 1, message: e.message, errorCode: e.code };
  const err = e as { code?: unknown; message?: unknown; path?: unknown };
  if (typeof err?.code === 'string' && typeof err.message === 'string') {
    // A file system error: ENOENT and the like, with the path in the message.
    return { code: 1, message: err.message, errorCode: err.code };
  }
  return { code: 1, message: e instanceof Error ? e.message : String(e) };
}
