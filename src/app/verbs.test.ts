import { describe, expect, it } from 'vitest';
import { WhisperlineError } from '../errors.js';
import { appChannelOpener, normaliseVerbs, openAppChannel, validateVerbs, WebhookChannel, WsChannel } from './index.js';

const SUPPORTED = ['say', 'play', 'gather', 'pause', 'hangup'];

const appFailed = (fn: () => unknown, message: RegExp): void => {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(WhisperlineError);
  expect((caught as WhisperlineError).code).toBe('APP_FAILED');
  expect((caught as WhisperlineError).message).toMatch(message);
};

describe('normaliseVerbs', () => {
  it('takes both jambonz spellings and returns {verb, ...fields}', () => {
    const verbs = normaliseVerbs([{ verb: 'say', text: 'hi' }, { gather: { input: ['digits'], numDigits: 1 } }], 'the reply');
    expect(verbs).toEqual([
      { verb: 'say', text: 'hi' },
      { verb: 'gather', input: ['digits'], numDigits: 1 },
    ]);
  });

  it("applies jambonz's verb aliases (stream is listen, openai_s2s is llm with its vendor)", () => {
    expect(normaliseVerbs([{ verb: 'stream', url: 'wss://x' }, { openai_s2s: { model: 'm' } }], 'the reply')).toEqual([
      { verb: 'listen', url: 'wss://x' },
      { verb: 'llm', vendor: 'openai', model: 'm' },
    ]);
  });

  it('says what is wrong with a reply that is not a verb array', () => {
    appFailed(() => normaliseVerbs({ verb: 'say' }, 'the reply'), /the reply is not an array of verbs \(got an object\)/);
    appFailed(() => normaliseVerbs(['say'], 'the reply'), /entry 0 is not an object/);
    appFailed(() => normaliseVerbs([{ verb: 'say' }, { text: 'a', loop: 2 }], 'the reply'), /entry 1 has no "verb" property/);
    appFailed(() => normaliseVerbs([{ verb: 3 }], 'the reply'), /entry 0 has a "verb" that is not a verb name/);
    appFailed(() => normaliseVerbs([{ say: 'hi' }], 'the reply'), /entry 0 \("say"\) does not hold an object/);
  });
});

describe('validateVerbs', () => {
  it('passes a valid say and gather', () => {
    const verbs = normaliseVerbs(
      [
        { verb: 'say', text: 'Welcome', synthesizer: { vendor: 'whisperline', voice: 'en' } },
        { verb: 'gather', input: ['speech', 'digits'], timeout: 10, actionHook: '/gathered', say: { text: 'Say something' } },
      ],
      'the reply',
    );
    expect(validateVerbs(verbs, SUPPORTED)).toEqual({ ok: true });
  });

  it('names the verb and the field of a wrong type', () => {
    const check = validateVerbs([{ verb: 'say', text: 'ok' }, { verb: 'gather', timeout: 'x' }], SUPPORTED);
    expect(check).toEqual({ ok: false, index: 1, verb: 'gather', message: 'gather: "timeout" must be a number' });
  });

  it('names a nested field under its verb', () => {
    const check = validateVerbs([{ verb: 'gather', say: { text: 5 } }], SUPPORTED);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.message).toBe('gather > say: "text" must be a string or an array');
  });

  it('reports unknown properties and missing required fields', () => {
    const unknown = validateVerbs([{ verb: 'say', txt: 'typo' }]);
    expect(unknown.ok === false && unknown.message).toBe('say: unknown property "txt"');
    const missing = validateVerbs([{ verb: 'record' }]);
    expect(missing.ok === false && missing.message).toBe('record: missing required "path"');
  });

  it('fails an unknown verb, and a nested type used as a verb', () => {
    const unknown = validateVerbs([{ verb: 'sing', text: 'la' }]);
    expect(unknown).toMatchObject({ ok: false, index: 0, verb: 'sing' });
    expect(unknown.ok === false && unknown.message).toMatch(/"sing" is not a jambonz verb/);
    expect(validateVerbs([{ verb: 'synthesizer', vendor: 'x' }]).ok).toBe(false);
  });

  it('reports a valid jambonz verb outside the allow-list as not supported by whisperline', () => {
    const verbs = [{ verb: 'conference', name: 'room-1' }];
    expect(validateVerbs(verbs)).toEqual({ ok: true });
    const check = validateVerbs(verbs, SUPPORTED);
    expect(check).toMatchObject({ ok: false, verb: 'conference' });
    expect(check.ok === false && check.message).toMatch(/^conference: not supported by whisperline/);
  });
});

describe('openAppChannel', () => {
  const spec = { callSid: 'c1' };
  it('picks the transport by the URL scheme', () => {
    expect(openAppChannel({ ...spec, url: 'http://127.0.0.1:1/app' })).toBeInstanceOf(WebhookChannel);
    expect(openAppChannel({ ...spec, url: 'https://example.invalid/app' })).toBeInstanceOf(WebhookChannel);
    expect(openAppChannel({ ...spec, url: 'ws://127.0.0.1:1/app' })).toBeInstanceOf(WsChannel);
    expect(appChannelOpener()({ ...spec, url: 'wss://example.invalid/app' })).toBeInstanceOf(WsChannel);
  });

  it('refuses any other scheme, and no URL, at once', () => {
    appFailed(() => openAppChannel({ ...spec, url: 'ftp://example.invalid/app' }), /neither http\(s\) \(webhook\) nor ws\(s\)/);
    appFailed(() => openAppChannel({ ...spec, url: 'not a url' }), /is not a URL/);
  });
});
