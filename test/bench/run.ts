/**
 * `npm run bench -- <name> [options]`: runs one benchmark. Each prints progress lines and, as its
 * last line, one JSON object with its figures.
 */
const benches: Record<string, () => Promise<{ main(args: string[]): Promise<void> }>> = {
  media: () => import('./media.js'),
  vad: () => import('./vad.js'),
  asr: () => import('./asr.js'),
  calls: () => import('./calls.js'),
  feed: () => import('./feed.js'),
  siprec: () => import('./siprec.js'),
  voice: () => import('./voice.js'),
  ivr: () => import('./ivr.js'),
};

const [name, ...args] = process.argv.slice(2);
if (!name || !benches[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [options]`);
  process.exit(2);
}
const bench = await benches[name]!();
await bench.main(args);
