/** The gateway's internal audio format: 16 kHz mono signed 16-bit, cut into 20 ms frames. */
export const SAMPLE_RATE = 16_000;
export const FRAME_MS = 20;
export const FRAME_SAMPLES = (SAMPLE_RATE * FRAME_MS) / 1000; // 320

/**
 * One 20 ms frame of one call party. `startMs` is on the call's clock (ms since the media of the
 * call started), so a frame's position survives loss, reordering and concealment.
 */
export interface AudioFrame {
  readonly party: string;
  readonly startMs: number;
  readonly samples: Int16Array;
}
