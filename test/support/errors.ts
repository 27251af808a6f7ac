import { WhisperlineError } from '../../src/errors.js';

/** The typed error code `p` rejects with (undefined when it resolves; a note when the error is not typed). */
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return err instanceof WhisperlineError ? err.code : `not a WhisperlineError: ${String(err)}`;
  }
  return undefined;
}
