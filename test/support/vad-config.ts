import type { VadConfig } from '../../src/config/schema.js';

/**
 * The VAD settings the VAD tests and benchmark are written against (the shipped defaults today),
 * fixed here so a change of defaults does not silently change what they assert.
 */
export const TEST_VAD_CONFIG: VadConfig = {
  threshold: 0.5,
  negativeThreshold: 0.35,
  preRollMs: 300,
  hangoverMs: 600,
  minSpeechMs: 250,
  maxUtteranceMs: 20_000,
  maxBatch: 512,
  sampleRate: 8000,
};
