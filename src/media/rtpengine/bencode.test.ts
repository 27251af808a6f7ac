import { describe, expect, it } from 'vitest';
import { WhisperlineError } from '../../errors.js';
import { decodeBencode, encodeBencode, isBencodeDict, MAX_BENCODE_DEPTH, type BencodeInput } from './bencode.js';

const enc = (value: BencodeInput): string => encodeBencode(value).toString('latin1');
const dec = (text: string): unknown => decodeBencode(Buffer.from(text, 'latin1'));

function expectProtocolError(fn: () => unknown): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(WhisperlineError);
  expect((caught as WhisperlineError).code).toBe('RTPENGINE_PROTOCOL');
}

describe('encodeBencode', () => {
  it('encodes the scalar types', () => {
    expect(enc('ping')).toBe('4:ping');
    expect(enc('')).toBe('0:');
    expect(enc(0)).toBe('i0e');
    expect(enc(-42)).toBe('i-42e');
    expect(enc(true)).toBe('3:yes');
    expect(enc(false)).toBe('2:no');
  });

  it('counts string lengths in UTF-8 bytes, not characters', () => {
    expect(encodeBencode('é€').equals(Buffer.concat([Buffer.from('5:'), Buffer.from('é€', 'utf8')]))).toBe(true);
  });

  it('sorts dictionary keys by their bytes and leaves out undefined values', () => {
    expect(enc({ sdp: 'x', command: 'offer', 'call-id': 'c', ICE: 'remove', skipped: undefined })).toBe(
      'd3:ICE6:remove7:call-id1:c7:command5:offer3:sdp1:xe',
    );
  });

  it('encodes nested lists and dictionaries (the ng codec dictionary)', () => {
    expect(enc({ codec: { transcode: ['PCMU', 'opus'], strip: [] }, flags: ['allow transcoding'] })).toBe(
      'd5:codecd5:striple9:transcodel4:PCMU4:opusee5:flagsl17:allow transcodingee',
    );
  });

  it('passes binary values through byte-exact', () => {
    const blob = Buffer.from([0x00, 0xff, 0x80, 0x20, 0x0a, 0xc3]);
    const out = encodeBencode({ blob });
    expect(out.equals(Buffer.concat([Buffer.from('d4:blob6:'), blob, Buffer.from('e')]))).toBe(true);
    const view = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
    expect(encodeBencode(view).equals(Buffer.from([0x33, 0x3a, 1, 2, 3]))).toBe(true);
  });

  it('refuses what bencode cannot carry', () => {
    expectProtocolError(() => encodeBencode(1.5));
    expectProtocolError(() => encodeBencode(Number.NaN));
    expectProtocolError(() => encodeBencode(2 ** 60));
    expectProtocolError(() => encodeBencode(null as unknown as BencodeInput));
    expectProtocolError(() => encodeBencode({ when: new Date() } as unknown as BencodeInput));
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expectProtocolError(() => encodeBencode(cyclic as BencodeInput));
  });
});

describe('decodeBencode', () => {
  it('round-trips nested structures', () => {
    const value = {
      result: 'ok',
      'from-tags': ['A', 'B'],
      totals: { RTP: { packets: 705, bytes: 100287, errors: 0 }, RTCP: { packets: -1, bytes: 0, errors: 0 } },
      empty: {},
      list: [[], [1, 'two', { three: 3 }]],
    };
    expect(decodeBencode(encodeBencode(value))).toEqual(value);
  });

  it('accepts unsorted dictionary keys, as rtpengine sends them', () => {
    expect(dec('d3:sdp1:x6:result2:oke')).toEqual({ sdp: 'x', result: 'ok' });
  });

  it('decodes byte strings as UTF-8 by default and keeps binary values on request', () => {
    const blob = Buffer.from([0xff, 0xfe, 0x00, 0x41]);
    const wire = encodeBencode({ blob, text: 'héllo' });
    expect(decodeBencode(wire)).toMatchObject({ text: 'héllo' });
    const kept = decodeBencode(wire, { binaryKeys: new Set(['blob']) });
    expect(isBencodeDict(kept) && Buffer.isBuffer(kept.blob) && kept.blob.equals(blob)).toBe(true);
    expect(isBencodeDict(kept) && kept.text).toBe('héllo');
    const all = decodeBencode(wire, { bytes: 'buffer' });
    expect(isBencodeDict(all) && Buffer.isBuffer(all.text)).toBe(true);
  });

  it('returns copies, not views into the datagram', () => {
    const wire = Buffer.from('4:abcd');
    const value = decodeBencode(wire, { bytes: 'buffer' }) as Buffer;
    wire.fill(0);
    expect(value.toString()).toBe('abcd');
  });

  it('keeps a "__proto__" key as data', () => {
    const value = dec('d9:__proto__d1:xi1eee') as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(['__proto__']);
  });

  it.each([
    ['empty input', ''],
    ['truncated integer', 'i12'],
    ['truncated string', '5:abc'],
    ['truncated list', 'l1:a'],
    ['truncated dict', 'd1:a'],
    ['dict key without value', 'd1:ae'],
    ['non-string dict key', 'di1e1:ae'],
    ['leading zero', 'i03e'],
    ['negative zero', 'i-0e'],
    ['empty integer', 'ie'],
    ['plus sign', 'i+1e'],
    ['unsafe integer', 'i9007199254740993e'],
    ['string length with leading zero', '01:a'],
    ['negative string length', '-1:a'],
    ['missing colon', '3abc'],
    ['unknown type byte', 'x'],
    ['trailing bytes', 'i1ei2e'],
    ['huge declared length', '99999999999999999999:a'],
  ])('rejects %s', (_name, text) => {
    expectProtocolError(() => dec(text));
  });

  it('rejects nesting deeper than the limit instead of overflowing the stack', () => {
    const deep = 'l'.repeat(MAX_BENCODE_DEPTH + 2) + 'e'.repeat(MAX_BENCODE_DEPTH + 2);
    expectProtocolError(() => dec(deep));
    expectProtocolError(() => dec('l'.repeat(1_000_000)));
    const ok = 'l'.repeat(MAX_BENCODE_DEPTH) + 'e'.repeat(MAX_BENCODE_DEPTH);
    expect(() => dec(ok)).not.toThrow();
  });

  it('never throws anything but a protocol error on random garbage', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const alphabet = 'dile0123456789:-xe';
    for (let n = 0; n < 2000; n++) {
      const length = random() % 40;
      let text = '';
      for (let i = 0; i < length; i++) text += alphabet[random() % alphabet.length];
      try {
        dec(text);
      } catch (error) {
        expect(error).toBeInstanceOf(WhisperlineError);
      }
    }
  });
});
