/**
 * `npm run bench -- siprec [--rounds N]`: how long the SIPREC parser takes on bodies built to be
 * expensive (test/support/hostile-siprec.ts): each must be refused or read in a few ms, so one
 * hostile INVITE cannot stall the event loop (every call's media and feeds run on it).
 * Last line: `{"bench":"siprec","bodies","rounds","maxMs","p50Ms","slowest"}`.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseSiprecOffer } from '../../src/sip/siprec.js';
import { HOSTILE_SIPREC_BODIES } from '../support/hostile-siprec.js';

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { rounds: { type: 'string', default: '5' } } });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
  const times: { name: string; ms: number }[] = [];
  for (const body of HOSTILE_SIPREC_BODIES) {
    const input = body.input();
    let worst = 0;
    for (let r = 0; r < rounds; r++) {
      const started = performance.now();
      try {
        parseSiprecOffer(input);
      } catch {
        // refused: that is the point
      }
      worst = Math.max(worst, performance.now() - started);
    }
    times.push({ name: body.name, ms: worst });
    console.log(`siprec: ${body.name}: worst of ${rounds} ${worst.toFixed(1)} ms`);
  }
  const sorted = times.map((t) => t.ms).sort((a, b) => a - b);
  const slowest = times.reduce((a, b) => (b.ms > a.ms ? b : a));
  console.log(JSON.stringify({ bench: 'siprec', bodies: times.length, rounds, maxMs: Number(slowest.ms.toFixed(1)), p50Ms: Number(sorted[Math.floor(sorted.length / 2)]!.toFixed(1)), slowest: slowest.name }));
}
