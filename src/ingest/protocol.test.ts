import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { TranscriptEvent } from '../transcripts/events.js';
import { authorized, closeReason, CloseCode, ingestCallId, parseJsonObject, ProtocolError, whisperLanguage } from './common.js';
import { listenTranscription, parseListenMetadata } from './listen.js';
import { parseSttMessage, sttTranscription } from './stt.js';
import { decodeBase64, parseTwilioMessage } from './twilio.js';

const KEY = 'k'.repeat(16) + '-ingest-key';

function req(authorization?: string): IncomingMessage {
  return { headers: authorization ? { authorization } : {} } as IncomingMessage;
}

const url = (query = ''): URL => new URL(`http://gateway/v1/listen${query}`);

/** The ProtocolError `run` throws (fails the test when it throws nothing or something else). */
function protocolError(run: () => unknown): ProtocolError {
  try {
    run();
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    throw err;
  }
  throw new Error('expected a ProtocolError');
}

const final: TranscriptEvent = {
  callId: 'ingest-x',
  seq: 4,
  party: 'callee',
  kind: 'final',
  text: 'hello there',
  startMs: 120,
  endMs: 980,
  language: 'en',
  confidence: 0.75,
};

describe('ingest authentication', () => {
  it('takes a configured key as Bearer or as the Basic password, and nothing else', () => {
    const keys = ['another-key-0123456789', KEY];
    expect(authorized(req(`Bearer ${KEY}`), url(), keys)).toBe(true);
    expect(authorized(req(`Basic ${Buffer.from(`jambonz:${KEY}`).toString('base64')}`), url(), keys)).toBe(true);
    expect(authorized(req(), url(`?token=${KEY}`), keys)).toBe(true);
    expect(authorized(req(), url(), keys)).toBe(false);
    expect(authorized(req(`Bearer ${KEY}x`), url(), keys)).toBe(false);
    expect(authorized(req(`Bearer ${KEY.slice(0, -1)}`), url(), keys)).toBe(false);
    expect(authorized(req('Bearer'), url(), keys)).toBe(false);
    expect(authorized(req(`Digest ${KEY}`), url(), keys)).toBe(false);
  });

  it('needs no key when none is configured', () => {
    expect(authorized(req(), url(), [])).toBe(true);
  });
});

describe('ingest helpers', () => {
  it('maps platform language tags to Whisper codes', () => {
    expect(whisperLanguage('en-US')).toBe('en');
    expect(whisperLanguage('de_DE')).toBe('de');
    expect(whisperLanguage('French')).toBe('fr');
    expect(whisperLanguage('auto')).toBe('auto');
    expect(whisperLanguage('xx-YY')).toBeUndefined();
  });

  it('makes unique, safe call ids even for a reused callSid', () => {
    const a = ingestCallId('listen', 'CA/123 ../x');
    const b = ingestCallId('listen', 'CA/123 ../x');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^ingest-listen-CA123\.\.x-[0-9a-f]{8}$/);
    expect(ingestCallId('stt')).toMatch(/^ingest-stt-[0-9a-f]{8}$/);
    expect(ingestCallId('twilio', 'x'.repeat(500)).length).toBeLessThan(100);
  });

  it('refuses text that is not a JSON object', () => {
    for (const text of ['', '{', 'null', '[1]', '42', '"x"', '{"a":1}}']) {
      expect(protocolError(() => parseJsonObject(text, 'message')).code).toBe(CloseCode.invalidPayload);
    }
    expect(parseJsonObject('{"a":1}', 'm')).toEqual({ a: 1 });
  });

  it('cuts close reasons to the 123 bytes a close frame holds', () => {
    expect(Buffer.byteLength(closeReason('é'.repeat(200)))).toBeLessThanOrEqual(123);
    expect(closeReason('short')).toBe('short');
  });
});

describe('listen metadata', () => {
  it('reads jambonz metadata with its defaults', () => {
    expect(parseListenMetadata(JSON.stringify({ callSid: 'CA1', from: '+1', to: '+2', direction: 'inbound', custom: { x: 1 } }), url().searchParams)).toEqual({
      callSid: 'CA1',
      direction: 'inbound',
      sampleRate: 8000,
      mixType: 'mono',
    });
    expect(parseListenMetadata('{"sampleRate":16000,"mixType":"stereo","language":"de-DE"}', url().searchParams)).toEqual({
      sampleRate: 16000,
      mixType: 'stereo',
      language: 'de',
    });
  });

  it('falls back to the query parameters (mod_audio_fork metadata carries neither)', () => {
    expect(parseListenMetadata('{}', url('?sampleRate=16000&mixType=mixed').searchParams)).toMatchObject({ sampleRate: 16000, mixType: 'mixed' });
    expect(parseListenMetadata('{"sampleRate":24000}', url('?sampleRate=16000').searchParams)).toMatchObject({ sampleRate: 24000 });
  });

  it('refuses wrong types (1007) and unsupported formats (1003)', () => {
    const q = url().searchParams;
    expect(protocolError(() => parseListenMetadata('{"sampleRate":"8000"}', q)).code).toBe(CloseCode.invalidPayload);
    expect(protocolError(() => parseListenMetadata('{"callSid":5}', q)).code).toBe(CloseCode.invalidPayload);
    expect(protocolError(() => parseListenMetadata('{"mixType":[]}', q)).code).toBe(CloseCode.invalidPayload);
    expect(protocolError(() => parseListenMetadata('{"sampleRate":1e308}', q)).code).toBe(CloseCode.unsupported);
    expect(protocolError(() => parseListenMetadata('{"sampleRate":12345}', q)).code).toBe(CloseCode.unsupported);
    expect(protocolError(() => parseListenMetadata('{"sampleRate":-8000}', q)).code).toBe(CloseCode.unsupported);
    expect(protocolError(() => parseListenMetadata('{"mixType":"quad"}', q)).code).toBe(CloseCode.unsupported);
    expect(protocolError(() => parseListenMetadata('{}', url('?sampleRate=abc').searchParams)).code).toBe(CloseCode.invalidPayload);
    expect(protocolError(() => parseListenMetadata('{"callSid":', q)).code).toBe(CloseCode.invalidPayload);
  });

  it('replies to a final in the jambonz transcription shape', () => {
    expect(listenTranscription(final, 'CA1')).toEqual({
      type: 'transcription',
      data: {
        callId: 'ingest-x',
        callSid: 'CA1',
        seq: 4,
        party: 'callee',
        channel: 2,
        is_final: true,
        transcript: 'hello there',
        confidence: 0.75,
        language: 'en',
        startMs: 120,
        endMs: 980,
      },
    });
  });
});

describe('stt messages', () => {
  it('reads start and stop', () => {
    expect(parseSttMessage('{"type":"start","language":"en-US","format":"raw","encoding":"LINEAR16","sampleRateHz":16000,"interimResults":true,"options":{}}')).toEqual({
      type: 'start',
      start: { language: 'en-US', whisperLanguage: 'en', sampleRate: 16000, interimResults: true },
    });
    expect(parseSttMessage('{"type":"start"}')).toEqual({ type: 'start', start: { sampleRate: 8000, interimResults: false } });
    expect(parseSttMessage('{"type":"start","language":"tlh-KL"}')).toMatchObject({ start: { language: 'tlh-KL', whisperLanguage: 'auto' } });
    expect(parseSttMessage('{"type":"stop"}')).toEqual({ type: 'stop' });
  });

  it('refuses unknown types (1003), other encodings (1003) and wrong field types (1007)', () => {
    expect(protocolError(() => parseSttMessage('{"type":"pause"}')).code).toBe(CloseCode.unsupported);
    expect(protocolError(() => parseSttMessage('{"type":"start","encoding":"MULAW"}')).code).toBe(CloseCode.unsupported);
    expect(protocolError(() => parseSttMessage('{"type":"start","format":"wav"}')).code).toBe(CloseCode.unsupported);
    expect(protocolError(() => parseSttMessage('{"type":"start","sampleRateHz":7999}')).code).toBe(CloseCode.unsupported);
    expect(protocolError(() => parseSttMessage('{"type":"start","sampleRateHz":"8000"}')).code).toBe(CloseCode.invalidPayload);
    expect(protocolError(() => parseSttMessage('{"type":"start","interimResults":"yes"}')).code).toBe(CloseCode.invalidPayload);
    expect(protocolError(() => parseSttMessage('{"type":1}')).code).toBe(CloseCode.invalidPayload);
    expect(protocolError(() => parseSttMessage('{"type":"start","language":false}')).code).toBe(CloseCode.invalidPayload);
  });

  it('answers in the jambonz transcription shape, echoing the requested language', () => {
    expect(sttTranscription(final, 'en-US')).toEqual({
      type: 'transcription',
      is_final: true,
      alternatives: [{ transcript: 'hello there', confidence: 0.75 }],
      channel: 1,
      language: 'en-US',
    });
    expect(sttTranscription({ ...final, kind: 'partial' }, undefined)).toMatchObject({ is_final: false, language: 'en' });
  });
});

describe('twilio messages', () => {
  const start = {
    event: 'start',
    sequenceNumber: '1',
    start: {
      streamSid: 'MZ1',
      accountSid: 'AC1',
      callSid: 'CA1',
      tracks: ['inbound', 'outbound'],
      customParameters: { language: 'es-MX' },
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
    streamSid: 'MZ1',
  };

  it('reads start, media, dtmf, mark, stop', () => {
    expect(parseTwilioMessage(JSON.stringify(start))).toEqual({
      event: 'start',
      start: { streamSid: 'MZ1', callSid: 'CA1', parties: ['caller', 'callee'], language: 'es' },
    });
    expect(parseTwilioMessage('{"event":"connected","protocol":"Call","version":"1.0.0"}')).toEqual({ event: 'connected' });
    const media = parseTwilioMessage('{"event":"media","sequenceNumber":"3","media":{"track":"outbound","chunk":"1","timestamp":"5","payload":"/39/fw=="},"streamSid":"MZ1"}');
    expect(media).toMatchObject({ event: 'media', party: 'callee' });
    expect([...(media as { payload: Uint8Array }).payload]).toEqual([0xff, 0x7f, 0x7f, 0x7f]);
    expect(parseTwilioMessage('{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"#"}}')).toEqual({ event: 'dtmf', party: 'caller', digit: '#' });
    expect(parseTwilioMessage('{"event":"mark","mark":{"name":"x"}}')).toEqual({ event: 'mark' });
    expect(parseTwilioMessage('{"event":"stop","stop":{"accountSid":"AC1","callSid":"CA1"}}')).toEqual({ event: 'stop' });
  });

  it('refuses what is malformed (1007), unknown (1003) or another audio format (1003)', () => {
    const code = (m: unknown): number => protocolError(() => parseTwilioMessage(typeof m === 'string' ? m : JSON.stringify(m))).code;
    expect(code('{"event":"media","media":{"payload":"!!!!"}}')).toBe(CloseCode.invalidPayload);
    expect(code('{"event":"media","media":{"payload":"AAA"}}')).toBe(CloseCode.invalidPayload);
    expect(code('{"event":"media","media":{"payload":5}}')).toBe(CloseCode.invalidPayload);
    expect(code('{"event":"media","media":{"track":"sideways","payload":""}}')).toBe(CloseCode.invalidPayload);
    expect(code('{"event":"media"}')).toBe(CloseCode.invalidPayload);
    expect(code('{"event":"dtmf","dtmf":{"digit":"12"}}')).toBe(CloseCode.invalidPayload);
    expect(code('{"event":"clear"}')).toBe(CloseCode.unsupported);
    expect(code('{"event":null}')).toBe(CloseCode.invalidPayload);
    expect(code({ ...start, start: { ...start.start, tracks: 'inbound' } })).toBe(CloseCode.invalidPayload);
    expect(code({ ...start, start: { ...start.start, tracks: [] } })).toBe(CloseCode.invalidPayload);
    expect(code({ ...start, start: 5 })).toBe(CloseCode.invalidPayload);
    expect(code({ ...start, start: { ...start.start, mediaFormat: { encoding: 'audio/x-alaw', sampleRate: 8000, channels: 1 } } })).toBe(CloseCode.unsupported);
    expect(code({ ...start, start: { ...start.start, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 16000, channels: 1 } } })).toBe(CloseCode.unsupported);
    expect(code({ ...start, start: { ...start.start, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 2 } } })).toBe(CloseCode.unsupported);
    expect(code({ ...start, start: { ...start.start, mediaFormat: { sampleRate: '8000' } } })).toBe(CloseCode.invalidPayload);
  });

  it('decodes strict base64 only', () => {
    expect(decodeBase64('')).toEqual(Buffer.alloc(0));
    expect(decodeBase64('AAAA')).toEqual(Buffer.from([0, 0, 0]));
    expect(decodeBase64('AA==')).toEqual(Buffer.from([0]));
    for (const bad of ['A', 'AA=', 'AAA=A', 'AA AA', '====', 'AA-_', 'A===']) expect(decodeBase64(bad), bad).toBeUndefined();
  });
});
