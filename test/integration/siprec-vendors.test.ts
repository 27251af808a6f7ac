/**
 * SIPREC recordings in the styles of real recording clients (Cisco CUBE, Avaya, Genesys,
 * Oracle/Acme, BroadWorks, FreeSWITCH, metadata-less), through the real rtpengine, recorder leg
 * and call session (fake SIP legs): every answer is well-formed SDP with one m= line per offered
 * stream and its own `a=label`, every stream is its own party named as the metadata says, and
 * its media reaches that party. Metadata that only comes in a re-INVITE (Oracle/Acme) names the
 * stored parties, the finals after it and the exports.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse as parseSdp } from 'sdp-transform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallRule } from '../../src/call/rule.js';
import { SpeechRuntime } from '../../src/pipeline/speech-runtime.js';
import { parseSiprecOffer, toRecordingOffer } from '../../src/sip/siprec.js';
import type { CallEvent, PartyMediaStats } from '../../src/transcripts/events.js';
import { CallEventHub } from '../../src/transcripts/event-hub.js';
import { exportCall } from '../../src/transcripts/export.js';
import { TranscriptStore } from '../../src/transcripts/store.js';
import { newTestCall, startCallHarness, type CallHarness } from '../support/calls.js';
import { FakeRecognizer } from '../support/fake-recognizer.js';
import { waitFor } from '../support/net.js';
import { RtpEndpoint } from '../support/rtp-endpoint.js';
import { acmeStyle, VENDOR_STYLES } from '../support/siprec-vendors.js';
import { speechPcmuPackets } from '../support/speech.js';

const recorder: CallRule = { name: 'recorder', action: 'siprec', labels: ['recording'] };
let h: CallHarness;
let speechPcmu: Uint8Array[];
/** A second of PCMU silence-ish packets: enough to see media reach a party. */
const second = Array.from({ length: 50 }, () => new Uint8Array(160).fill(0xfe));

beforeAll(async () => {
  h = await startCallHarness();
  speechPcmu = await speechPcmuPackets();
}, 300_000);

afterAll(async () => {
  await h?.close();
});

/** Every line of an SDP is one `x=` field; an attribute is one name, not two run together. */
function expectWellFormed(sdp: string): void {
  const lines = sdp.split('\r\n');
  expect(lines.at(-1)).toBe('');
  for (const line of lines.slice(0, -1)) {
    expect(line).toMatch(/^[a-z]=\S/);
    if (line.startsWith('a=')) expect(line).toMatch(/^a=[A-Za-z][A-Za-z0-9-]*(?::[^]*)?$/);
    // Two fields on one line: an `a=` inside a value.
    expect(line.slice(2)).not.toMatch(/[0-9a-z]a=[a-z]+[:]/);
  }
}

describe('SIPREC recording clients, as each sends its INVITE', () => {
  for (const style of VENDOR_STYLES) {
    it(`${style.name.replace(/Style$/, '')}: a well-formed answer per stream, parties named, media per party`, async () => {
      const a = await new RtpEndpoint('PCMU').open();
      const b = await new RtpEndpoint('PCMU').open();
      const v = style(a, b);
      const offer = parseSiprecOffer({ contentType: v.contentType, body: v.body });
      expect(offer.metadataError, v.style).toBeUndefined();
      const { session, leg, events } = await newTestCall(h, recorder, { caller: a, recording: toRecordingOffer(offer) });
      await session.start();

      const answer = leg.answered!;
      expectWellFormed(answer);
      const media = parseSdp(answer).media;
      expect(media).toHaveLength(2);
      for (const [i, m] of media.entries()) {
        expect(m.type).toBe('audio');
        expect(m.port).toBeGreaterThan(0);
        expect(m.protocol).toBe('RTP/AVP');
        expect(m.direction).toBe('recvonly');
        expect(m.label === undefined ? undefined : String(m.label), `${v.style} m=${i}`).toBe(v.labels[i]);
        // Only what was offered: each answered payload type names its offered encoding.
        for (const r of m.rtp) expect(['PCMU', 'PCMA', 'telephone-event', 'CN']).toContain(r.codec);
      }
      expect(answer.match(/^a=label:.*$/gm) ?? []).toEqual(v.labels.filter((l) => l !== undefined).map((l) => `a=label:${l}`));
      expect(media[0]!.port).not.toBe(media[1]!.port);
      expect(leg.answerWarnings).toEqual([]);

      // Each stream's media reaches its own party.
      await Promise.all([a.send(answer, second, 0xa1, 0), b.send(answer, second, 0xb2, 1)]);
      await new Promise((r) => setTimeout(r, 100));
      await session.remoteBye('caller');
      a.close();
      b.close();
      const all = events();
      expect(all[0]).toMatchObject({ kind: 'call.started', rule: 'recorder', parties: v.parties.map((name) => ({ name })) });
      const ended = all.at(-1) as Extract<CallEvent, { kind: 'call.ended' }>;
      expect(ended.kind).toBe('call.ended');
      const stats = ended.parties as Record<string, PartyMediaStats>;
      expect(Object.keys(stats).sort()).toEqual([...v.parties].sort());
      for (const party of v.parties) {
        expect(stats[party]!.packets, `${v.style} ${party}`).toBeGreaterThanOrEqual(45);
        expect(stats[party]!.codec).toBe('PCMU');
        expect(stats[party]!.foreign ?? 0).toBe(0);
      }
      expect(await h.rtpe.numSessions()).toBe(0);
    }, 30_000);
  }
});

describe('metadata that comes only in a re-INVITE (Oracle/Acme)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wl-siprec-late-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the stored parties, the finals after it and the exports', async () => {
    const log = pino({ level: 'silent' });
    const store = TranscriptStore.open(join(dir, 'transcripts.db'));
    const hub = new CallEventHub({ store, logger: log });
    // A recognizer stand-in with a known text, so the exports have lines to show.
    const recognizer = new FakeRecognizer(() => ({ text: 'check my balance', language: 'en', segments: [], processingMs: 1, queuedMs: 0 }));
    const published: CallEvent[] = [];
    const speech = new SpeechRuntime({
      vad: h.vad,
      recognizerFor: () => recognizer,
      vadConfig: h.config.vad,
      transcripts: h.config.transcripts,
      publish: (e) => {
        hub.publish(e);
        published.push(e);
      },
    });
    const a = await new RtpEndpoint('PCMU').open();
    const b = await new RtpEndpoint('PCMU').open();
    const v = acmeStyle(a, b);
    const first = parseSiprecOffer({ contentType: v.contentType, body: v.body });
    const { session, leg } = await newTestCall(h, recorder, { caller: a, recording: toRecordingOffer(first), services: { ...h.services(), speech } });
    const mine = (): CallEvent[] => published.filter((e) => e.callId === leg.callId);
    await session.start();
    expect(mine()[0]).toMatchObject({ kind: 'call.started', parties: [{ name: 'caller' }, { name: 'callee' }] });

    // The caller's stream speaks before the metadata is known...
    await a.send(leg.answered!, speechPcmu, 0xa1, 0);
    await waitFor('a final before the metadata', () => mine().some((e) => e.kind === 'final'));
    // ...then the re-INVITE names the participants...
    const update = parseSiprecOffer(v.reinvite, { previous: first });
    expect(update.metadataError).toBeUndefined();
    const answer = await session.reinvite('caller', update.sdp, toRecordingOffer(update));
    expectWellFormed(answer);
    expect(answer.match(/^a=label:.*$/gm)).toEqual(['a=label:11', 'a=label:12']);
    // ...and the stream speaks again (its sequence and timestamps go on).
    await a.send(answer, speechPcmu, 0xa1, 0, { sequence: 1000 + speechPcmu.length, timestamp: 5000 + speechPcmu.length * 160 });
    await waitFor('a final after the metadata', () => mine().filter((e) => e.kind === 'final').length >= 2);
    await session.remoteBye('caller');
    a.close();
    b.close();

    const all = mine();
    const updated = all.find((e) => e.kind === 'call.updated');
    expect(updated).toMatchObject({ participants: [{ party: 'caller', name: 'Alice', aor: 'sip:alice@acme.example' }, { party: 'callee', name: 'Bob', aor: 'sip:bob@acme.example' }] });
    const finals = all.filter((e) => e.kind === 'final');
    const at = all.indexOf(updated!);
    // The party stays `caller` for the whole call; what is said after the metadata carries the speaker.
    for (const f of finals) expect(f).toMatchObject({ party: 'caller' });
    for (const f of finals.filter((e) => all.indexOf(e) < at)) expect('speaker' in f).toBe(false);
    const after = finals.filter((e) => all.indexOf(e) > at);
    expect(after.length).toBeGreaterThanOrEqual(1);
    for (const f of after) expect(f).toMatchObject({ speaker: 'Alice' });

    // The stored call shows the parties by name, and so do its exports.
    await waitFor('the call stored as ended', () => store.call(leg.callId)?.endedAt !== undefined);
    expect(store.call(leg.callId)!.parties).toEqual([
      { name: 'caller', label: 'Alice' },
      { name: 'callee', label: 'Bob' },
    ]);
    const vtt = exportCall(store, leg.callId, 'vtt');
    expect(vtt).toContain('<v Alice>check my balance');
    expect(vtt).not.toContain('<v caller>');
    expect(exportCall(store, leg.callId, 'txt')).toMatch(/^\[\d\d:\d\d\] Alice: check my balance$/m);
    store.close();
    expect(await h.rtpe.numSessions()).toBe(0);
  }, 60_000);
});
