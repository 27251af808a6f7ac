/**
 * A prompt cache: IVR prompts repeat ("Please hold", a menu), so a prompt spoken once is replayed
 * without asking the provider again. Two tiers: memory (an LRU bounded by bytes) and optionally a
 * directory on disk (bounded by bytes, oldest evicted; it survives a restart). The key is a hash
 * of the provider's name, the voice, the language, the SSML flag and the text, plus a namespace
 * the configuration can change when a provider's settings change (model, default voice, speed),
 * so a changed voice is not served from old files. Only a synthesis that ran to its end is kept:
 * an aborted, failed or abandoned one is not. Disk writes go to a temporary file renamed into
 * place, so a reader (or a crash) never sees half a prompt.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WhisperlineError } from '../../errors.js';
import { aborted } from '../http.js';
import { MAX_CHUNK_SAMPLES } from '../pcm.js';
import type { SynthesisRequest, Synthesizer, SynthesizerCapabilities } from '../synthesizer.js';
import { spokenBy, type AttributedAudio } from './attribution.js';
import type { SynthesisMetrics } from './metrics.js';

export interface PromptCacheOptions {
  /** Bytes of PCM kept in memory (default 32 MiB; 0 keeps none there). */
  readonly memoryBytes?: number;
  /** A directory for the disk tier (created if missing); absent, memory only. */
  readonly directory?: string;
  /** Bytes kept on disk (default 512 MiB); the least recently used files go first. */
  readonly diskBytes?: number;
  /** A prompt longer than this is not cached (default 8 MiB, about 3 minutes at 24 kHz). */
  readonly maxEntryBytes?: number;
  /** Part of every key: change it when the provider's settings change. */
  readonly namespace?: string;
  /** Where hits and misses are counted too (besides `stats()`). */
  readonly metrics?: SynthesisMetrics;
}

export interface PromptCacheStats {
  readonly hits: number;
  readonly memoryHits: number;
  readonly diskHits: number;
  readonly misses: number;
  /** Complete syntheses kept. */
  readonly stored: number;
  readonly memoryEntries: number;
  readonly memoryBytes: number;
  readonly diskEntries: number;
  readonly diskBytes: number;
  readonly evictions: number;
  /** Disk reads or writes that failed (the cache went on without them). */
  readonly diskErrors: number;
}

interface Entry {
  readonly samples: Int16Array;
  readonly sampleRate: number;
  readonly provider: string;
}

const MAGIC = 'WLT1';
const FILE_SUFFIX = '.pcm';
/** A temporary file older than this was left by a crash, not by a write under way. */
const STALE_TEMP_MS = 60 * 60 * 1000;

export class CachedSynthesizer implements Synthesizer {
  readonly name: string;
  readonly capabilities: SynthesizerCapabilities;
  private readonly memory = new Map<string, Entry>();
  private memoryUsed = 0;
  private disk: Promise<Map<string, { bytes: number; usedAt: number }>> | undefined;
  private diskUsed = 0;
  private readonly pending = new Set<Promise<void>>();
  private diskEntries = 0;
  private counts = { hits: 0, memoryHits: 0, diskHits: 0, misses: 0, stored: 0, evictions: 0, diskErrors: 0 };

  constructor(
    private readonly inner: Synthesizer,
    private readonly options: PromptCacheOptions = {},
  ) {
    this.name = inner.name;
    this.capabilities = inner.capabilities;
  }

  supports(language: string): Promise<boolean> {
    return this.inner.supports(language);
  }

  synthesize(request: SynthesisRequest): AsyncIterable<AttributedAudio> {
    return { [Symbol.asyncIterator]: () => this.run(request)[Symbol.asyncIterator]() };
  }

  stats(): PromptCacheStats {
    return { ...this.counts, memoryEntries: this.memory.size, memoryBytes: this.memoryUsed, diskEntries: this.diskEntries, diskBytes: this.diskUsed };
  }

  /** Settles when the disk writes under way are done (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** The key of a request: a hash, so the text never becomes a file name. */
  keyOf(request: SynthesisRequest): string {
    const parts = [this.options.namespace ?? '', this.inner.name, request.voice ?? '', request.language ?? '', request.ssml ? 'ssml' : 'text', request.text];
    return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
  }

  private async *run(request: SynthesisRequest): AsyncGenerator<AttributedAudio> {
    if (request.signal?.aborted) throw aborted(request.signal.reason);
    const key = this.keyOf(request);
    const hit = this.fromMemory(key) ?? (await this.fromDisk(key));
    if (hit) {
      this.counts.hits++;
      this.options.metrics?.recordCache(true);
      // Copies, so a consumer that changes samples in place (gain) does not change the cache.
      for (let at = 0; at < hit.samples.length; at += MAX_CHUNK_SAMPLES) {
        if (request.signal?.aborted) throw aborted(request.signal.reason);
        yield { samples: hit.samples.slice(at, at + MAX_CHUNK_SAMPLES), sampleRate: hit.sampleRate, provider: hit.provider, cached: true };
      }
      return;
    }
    this.counts.misses++;
    this.options.metrics?.recordCache(false);
    const chunks: Int16Array[] = [];
    let bytes = 0;
    let sampleRate: number | undefined;
    let provider: string | undefined;
    let keep = true;
    for await (const chunk of this.inner.synthesize(request)) {
      provider ??= spokenBy(chunk) ?? this.inner.name;
      if (sampleRate !== undefined && chunk.sampleRate !== sampleRate) keep = false;
      sampleRate = chunk.sampleRate;
      bytes += chunk.samples.byteLength;
      if (keep && bytes <= (this.options.maxEntryBytes ?? 8 * 1024 * 1024)) chunks.push(chunk.samples.slice());
      else keep = false;
      yield { ...chunk, provider: spokenBy(chunk) ?? provider };
    }
    // Reached only when the provider finished: a break, an abort or an error leaves by the loop.
    if (!keep || sampleRate === undefined || request.signal?.aborted) return;
    const samples = new Int16Array(bytes >> 1);
    let at = 0;
    for (const c of chunks) {
      samples.set(c, at);
      at += c.length;
    }
    const entry: Entry = { samples, sampleRate, provider: provider! };
    this.counts.stored++;
    this.toMemory(key, entry);
    if (this.options.directory !== undefined) this.track(this.toDisk(key, entry));
  }

  private fromMemory(key: string): Entry | undefined {
    const entry = this.memory.get(key);
    if (!entry) return undefined;
    // Most recently used goes last: eviction takes from the front.
    this.memory.delete(key);
    this.memory.set(key, entry);
    this.counts.memoryHits++;
    return entry;
  }

  private toMemory(key: string, entry: Entry): void {
    const limit = this.options.memoryBytes ?? 32 * 1024 * 1024;
    if (entry.samples.byteLength > limit) return;
    const old = this.memory.get(key);
    if (old) {
      this.memory.delete(key);
      this.memoryUsed -= old.samples.byteLength;
    }
    this.memory.set(key, entry);
    this.memoryUsed += entry.samples.byteLength;
    for (const [k, e] of this.memory) {
      if (this.memoryUsed <= limit) break;
      this.memory.delete(k);
      this.memoryUsed -= e.samples.byteLength;
      this.counts.evictions++;
    }
  }

  private async fromDisk(key: string): Promise<Entry | undefined> {
    if (this.options.directory === undefined) return undefined;
    const index = await this.diskIndex();
    const known = index.get(key);
    if (!known) return undefined;
    const file = join(this.options.directory, key + FILE_SUFFIX);
    try {
      const entry = decodeFile(await readFile(file));
      const now = Date.now();
      known.usedAt = now;
      // The file's time is its last use, so the next scan (another instance, a restart) evicts by use too.
      void utimes(file, now / 1000, now / 1000).catch(() => undefined);
      this.counts.diskHits++;
      this.toMemory(key, entry);
      return entry;
    } catch {
      // Gone (another instance evicted it) or unreadable: a miss, and the index forgets it.
      index.delete(key);
      this.diskUsed -= known.bytes;
      this.diskEntries = index.size;
      return undefined;
    }
  }

  private async toDisk(key: string, entry: Entry): Promise<void> {
    const dir = this.options.directory!;
    const index = await this.diskIndex();
    const data = encodeFile(entry);
    const temp = join(dir, `${key}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await writeFile(temp, data);
      await rename(temp, join(dir, key + FILE_SUFFIX));
    } catch {
      this.counts.diskErrors++;
      await unlink(temp).catch(() => undefined);
      return;
    }
    const old = index.get(key);
    if (old) this.diskUsed -= old.bytes;
    index.set(key, { bytes: data.length, usedAt: Date.now() });
    this.diskUsed += data.length;
    const limit = this.options.diskBytes ?? 512 * 1024 * 1024;
    if (this.diskUsed > limit) {
      const oldest = [...index.entries()].sort((a, b) => a[1].usedAt - b[1].usedAt);
      for (const [k, e] of oldest) {
        if (this.diskUsed <= limit) break;
        if (k === key && index.size === 1) break;
        index.delete(k);
        this.diskUsed -= e.bytes;
        this.counts.evictions++;
        await unlink(join(dir, k + FILE_SUFFIX)).catch(() => undefined);
      }
    }
    this.diskEntries = index.size;
  }

  /** What is on disk, read once: file sizes and last-use times (their mtime). */
  private diskIndex(): Promise<Map<string, { bytes: number; usedAt: number }>> {
    return (this.disk ??= (async () => {
      const dir = this.options.directory!;
      const index = new Map<string, { bytes: number; usedAt: number }>();
      try {
        await mkdir(dir, { recursive: true });
        for (const name of await readdir(dir)) {
          const path = join(dir, name);
          const info = await stat(path).catch(() => undefined);
          if (!info?.isFile()) continue;
          if (name.endsWith('.tmp')) {
            if (Date.now() - info.mtimeMs > STALE_TEMP_MS) await unlink(path).catch(() => undefined);
            continue;
          }
          if (!name.endsWith(FILE_SUFFIX)) continue;
          index.set(name.slice(0, -FILE_SUFFIX.length), { bytes: info.size, usedAt: info.mtimeMs });
          this.diskUsed += info.size;
        }
      } catch {
        this.counts.diskErrors++;
      }
      this.diskEntries = index.size;
      return index;
    })());
  }

  private track(write: Promise<void>): void {
    const p = write.catch(() => void this.counts.diskErrors++).finally(() => this.pending.delete(p));
    this.pending.add(p);
  }
}

/** `WLT1`, rate (u32 LE), provider name length (u16 LE) and name, then the samples (s16 LE). */
function encodeFile(entry: Entry): Buffer {
  const name = Buffer.from(entry.provider, 'utf8');
  const head = Buffer.alloc(10 + name.length);
  head.write(MAGIC, 0, 'ascii');
  head.writeUInt32LE(entry.sampleRate, 4);
  head.writeUInt16LE(name.length, 8);
  name.copy(head, 10);
  const body = Buffer.alloc(entry.samples.length * 2);
  for (let i = 0; i < entry.samples.length; i++) body.writeInt16LE(entry.samples[i]!, i * 2);
  return Buffer.concat([head, body]);
}

function decodeFile(data: Buffer): Entry {
  if (data.length < 10 || data.toString('ascii', 0, 4) !== MAGIC) throw new WhisperlineError('TTS_FAILED', 'not a prompt cache file');
  const sampleRate = data.readUInt32LE(4);
  const nameLength = data.readUInt16LE(8);
  const start = 10 + nameLength;
  if (start > data.length || (data.length - start) % 2 !== 0) throw new WhisperlineError('TTS_FAILED', 'truncated prompt cache file');
  const provider = data.toString('utf8', 10, start);
  const samples = new Int16Array((data.length - start) >> 1);
  for (let i = 0; i < samples.length; i++) samples[i] = data.readInt16LE(start + i * 2);
  return { samples, sampleRate, provider };
}
