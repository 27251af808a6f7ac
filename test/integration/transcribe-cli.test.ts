/**
 * `whisperline transcribe` on a recorded call as a user runs it: a stereo WAV (caller left, callee
 * right, espeak-ng speech at different times), the real VAD and whisper.cpp on the tiny model.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { speechFixture } from '../support/speech.js';
import { ensureTestWhisper } from '../support/whisper.js';

const dir = mkdtempSync(join(tmpdir(), 'wl-transcribe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A 16-bit stereo WAV from two mono tracks. */
function stereoWav(left: Int16Array, right: Int16Array, rate: number): Buffer {
  const n = Math.max(left.length, right.length);
  const out = Buffer.alloc(44 + n * 4);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + n * 4, 4);
  out.write('WAVEfmt ', 8, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20);
  out.writeUInt16LE(2, 22);
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE(rate * 4, 28);
  out.writeUInt16LE(4, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(n * 4, 40);
  for (let i = 0; i < n; i++) {
    out.writeInt16LE(left[i] ?? 0, 44 + i * 4);
    out.writeInt16LE(right[i] ?? 0, 46 + i * 4);
  }
  return out;
}

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', '..', 'src', 'cli.ts'), ...args], {
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHISPERLINE_'))), ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('whisperline transcribe', () => {
  it('transcribes each channel of a call recording as its party, in order, then ends', async () => {
    const whisper = await ensureTestWhisper();
    const caller = await speechFixture({ sentences: ['I would like to pay my bill.', 'Yes, the one from March.'], gapsMs: [2500], sampleRate: 8000, leadMs: 300, tailMs: 2500 });
    const callee = await speechFixture({ sentences: ['Sure, which bill is it?'], gapsMs: [], sampleRate: 8000, leadMs: 2200, tailMs: 2000 });
    const file = join(dir, 'call.wav');
    writeFileSync(file, stereoWav(caller.samples16k, callee.samples16k, 16000));
    const env = {
      WHISPERLINE_ASR_MODEL: whisper.tinyModel,
      WHISPERLINE_TRANSCRIPTS_NO_SPEECH_THRESHOLD: '1',
      WHISPERLINE_TRANSCRIPTS_SILENCE_PHRASES: '[]',
      WHISPERLINE_LOG_LEVEL: 'error',
    };
    const r = await run(['transcribe', '--json', file], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; party?: string; startMs?: number; seq: number; callId: string });
    // Every event numbered once per call, in order; one final per sentence per party.
    expect(events.map((e) => e.seq)).toEqual(events.map((_, k) => k + 1));
    const finals = events.filter((e) => e.kind === 'final');
    expect(finals.filter((e) => e.party === 'caller').map((e) => Math.round(e.startMs! / 1000))).toEqual(caller.sentences.map((s) => Math.round((s.startMs - 300) / 1000)));
    expect(finals.filter((e) => e.party === 'callee')).toHaveLength(1);
    expect(events.every((e) => e.callId === 'call.wav')).toBe(true);
    expect(events[events.length - 1]!.kind).toBe('ended');
  }, 120_000);

  it('fails clearly when the model is missing', async () => {
    const r = await run(['transcribe', join(dir, 'none.wav')], { WHISPERLINE_ASR_MODEL: join(dir, 'absent.bin') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/model file .*absent\.bin does not exist/);
  });
});
