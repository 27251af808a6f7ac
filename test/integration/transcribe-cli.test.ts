/**
 * `whisperline transcribe` on a recorded call as a user runs it: a stereo WAV (caller left, callee
 * right, espeak-ng speech at different times), the real VAD and whisper.cpp on the tiny model.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../../src/audio/wav.js';
import { speechFixture } from '../support/speech.js';
import { ensureTestWhisper } from '../support/whisper.js';

const dir = mkdtempSync(join(tmpdir(), 'wl-transcribe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


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
    writeFileSync(file, encodeWav([caller.samples16k, callee.samples16k], 16000));
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
    // The same lifecycle as a live call: started with its parties, the last finals, then ended.
    expect(events[0]).toMatchObject({ kind: 'call.started', rule: 'file', parties: [{ name: 'caller' }, { name: 'callee' }] });
    expect(events.slice(-2).map((e) => e.kind)).toEqual(['ended', 'call.ended']);
    expect(events.at(-1)).toMatchObject({ reason: 'completed' });
  }, 120_000);

  it('reports a bad file of a batch (missing, not audio, unsupported format), transcribes the others, and exits 1', async () => {
    const whisper = await ensureTestWhisper();
    const speech = await speechFixture({ sentences: ['Hello, this is a short message.'], gapsMs: [], sampleRate: 8000, leadMs: 300, tailMs: 1500 });
    const wav = encodeWav([speech.samples16k], 16000);
    const first = join(dir, 'first.wav');
    const last = join(dir, 'last.wav');
    writeFileSync(first, wav);
    writeFileSync(last, wav);
    const notAudio = join(dir, 'notes.wav');
    writeFileSync(notAudio, 'these are meeting notes, not a recording\n');
    // IEEE float samples (format 3): a real WAV, but not what call recorders write.
    const float = Buffer.from(wav);
    float.writeUInt16LE(3, 20);
    const unsupported = join(dir, 'float.wav');
    writeFileSync(unsupported, float);
    const missing = join(dir, 'missing.wav');
    const env = { WHISPERLINE_ASR_MODEL: whisper.tinyModel, WHISPERLINE_TRANSCRIPTS_NO_SPEECH_THRESHOLD: '1', WHISPERLINE_TRANSCRIPTS_SILENCE_PHRASES: '[]', WHISPERLINE_LOG_LEVEL: 'error' };

    const r = await run(['transcribe', '--json', first, missing, notAudio, unsupported, last], env);
    expect(r.code).toBe(1);
    // Each bad file once on stderr, named with its reason; then the summary.
    const errors = r.stderr.trim().split('\n');
    expect(errors).toEqual([
      `${missing}: not transcribed: no such file`,
      `${notAudio}: not transcribed: unsupported WAV: not a RIFF/WAVE file`,
      expect.stringMatching(/float\.wav: not transcribed: unsupported WAV: format 3 with 16 bits per sample/),
      `3 of 5 files not transcribed: ${missing}, ${notAudio}, ${unsupported}`,
    ]);
    // The good files before and after the bad ones each went through the whole call lifecycle.
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; callId: string; reason?: string });
    expect([...new Set(events.map((e) => e.callId))]).toEqual(['first.wav', 'last.wav']);
    for (const callId of ['first.wav', 'last.wav']) {
      const call = events.filter((e) => e.callId === callId);
      expect(call[0]!.kind).toBe('call.started');
      expect(call.at(-1)).toMatchObject({ kind: 'call.ended', reason: 'completed' });
    }

    // All good: exit code 0 and nothing on stderr.
    const ok = await run(['transcribe', '--json', first], env);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
  }, 120_000);

  it('fails clearly when the model is missing', async () => {
    const r = await run(['transcribe', join(dir, 'none.wav')], { WHISPERLINE_ASR_MODEL: join(dir, 'absent.bin') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/model file .*absent\.bin does not exist/);
  });
});
