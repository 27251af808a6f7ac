/** One stretch of speech of one party, cut by the segmenter. Times are on the call clock (ms). */
export interface Utterance {
  readonly party: string;
  readonly startMs: number;
  readonly endMs: number;
  /** 16 kHz mono Int16, pre-roll included. */
  readonly samples: Int16Array;
  /** Why it ended: silence after speech, the maximum length, or the stream ending (hang-up). */
  readonly reason: 'silence' | 'max-length' | 'end';
}
