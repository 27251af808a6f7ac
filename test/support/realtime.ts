/** Feeding a CallPipeline as a live call does: 20 ms frames on the call clock, in real time. */
import { FRAME_SAMPLES, type AudioFrame } from '../../src/audio/frame.js';
import type { PartyInput } from '../../src/pipeline/call-pipeline.js';

/** 16 kHz samples as one party's 20 ms frames (up to `untilMs` of them). */
export function toFrames(party: string, samples: Int16Array, untilMs = Infinity): AudioFrame[] {
  const out: AudioFrame[] = [];
  for (let i = 0; (i + 1) * FRAME_SAMPLES <= samples.length && i * 20 < untilMs; i++) {
    out.push({ party, startMs: i * 20, samples: samples.slice(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES) });
  }
  return out;
}

/** Feeds frames in real time (20 ms each) with the VAD loop running, as live calls are. */
export async function feedRealtime(inputs: [PartyInput, AudioFrame[]][]): Promise<void> {
  const n = Math.max(...inputs.map(([, f]) => f.length));
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    for (const [input, f] of inputs) if (f[i]) input.push(f[i]!);
    const wait = t0 + (i + 1) * 20 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}
