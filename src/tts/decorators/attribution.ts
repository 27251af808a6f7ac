/**
 * Who spoke a chunk. Decorators pass chunks through; the fallback puts the provider that actually
 * spoke on each chunk, and the cache puts back the provider that spoke a prompt it replays, so a
 * caller can name the real voice on its speech event whatever stack of decorators it holds.
 */
import type { SynthesizedAudio } from '../synthesizer.js';

export interface AttributedAudio extends SynthesizedAudio {
  /** The provider whose voice this is (its `name`). */
  readonly provider?: string;
  /** Replayed from the prompt cache, not synthesized now. */
  readonly cached?: boolean;
}

/** The provider that spoke `chunk`, if a decorator said so. */
export function spokenBy(chunk: SynthesizedAudio): string | undefined {
  return (chunk as AttributedAudio).provider;
}

export function wasCached(chunk: SynthesizedAudio): boolean {
  return (chunk as AttributedAudio).cached === true;
}

/** Checks a decorator's name as the contract wants names. */
export function checkedName(name: string): string {
  if (!/^[a-z0-9.-]+$/.test(name)) throw new Error(`synthesizer name "${name}" is not lower-case letters, digits, dots and dashes`);
  return name;
}
