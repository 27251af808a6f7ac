import { describe, expect, it } from 'vitest';
import { describeTranslatorContract } from '../../test/contracts/translator.js';
import { FakeRecognizer, recognition } from '../../test/support/fake-recognizer.js';
import { WhisperTranslator } from './whisper.js';

const audio = new Int16Array(16000).fill(1000);

/** The recognizer answers the translate task with a fixed English text; `broken` fails it. */
function setup(): { translator: WhisperTranslator; recognizer: FakeRecognizer; breakIt: () => void } {
  let broken = false;
  const recognizer = new FakeRecognizer((req) => {
    if (broken) throw new Error('whisper-server is gone');
    return recognition(req.task === 'translate' ? ' I have a question about my bill.' : ' Ich habe eine Frage.', req.task === 'translate' ? 'en' : 'de');
  });
  return { translator: new WhisperTranslator(recognizer), recognizer, breakIt: () => (broken = true) };
}

describeTranslatorContract('whisper (shared fake recognizer)', () => {
  const { translator, breakIt } = setup();
  return {
    translator,
    request: { text: 'Ich habe eine Frage zu meiner Rechnung.', sourceLanguage: 'de', targetLanguage: 'en', samples: audio },
    unsupported: { sourceLanguage: 'en', targetLanguage: 'de' },
    breakIt,
  };
});

describe('WhisperTranslator', () => {
  it("decodes the utterance's audio again with the translate task, in the final's language", async () => {
    const { translator, recognizer } = setup();
    const result = await translator.translate({ text: 'Ich habe eine Frage.', sourceLanguage: 'de', targetLanguage: 'en', samples: audio });
    expect(result).toEqual({ text: 'I have a question about my bill.', sourceLanguage: 'de', targetLanguage: 'en', provider: 'whisper' });
    expect(recognizer.requests.map((r) => r.req)).toMatchObject([{ task: 'translate', language: 'de', priority: 'final', samples: audio }]);
  });

  it('does not decode English twice, and needs the audio otherwise', async () => {
    const { translator, recognizer } = setup();
    expect((await translator.translate({ text: 'Hello.', sourceLanguage: 'en', targetLanguage: 'en' })).text).toBe('Hello.');
    expect(recognizer.requests).toHaveLength(0);
    await expect(translator.translate({ text: 'Hallo.', sourceLanguage: 'de', targetLanguage: 'en' })).rejects.toMatchObject({ code: 'TRANSLATION_FAILED' });
  });

  it('lets the caller judge the decode (a hallucination filter): a dropped decode is an empty translation', async () => {
    const recognizer = new FakeRecognizer(() => recognition(' Thank you.', 'en', { noSpeechProb: 0.9 }));
    const translator = new WhisperTranslator(recognizer, { accept: (r) => (r.segments.every((s) => s.noSpeechProb > 0.6) ? undefined : r.text.trim()) });
    expect((await translator.translate({ text: 'Hmm.', sourceLanguage: 'de', targetLanguage: 'en', samples: audio })).text).toBe('');
  });

  it('translates into English only, and not with a recognizer that cannot', () => {
    expect(new WhisperTranslator(new FakeRecognizer()).supports('de', 'fr')).toBe(false);
    expect(new WhisperTranslator(new FakeRecognizer(undefined, { translate: false })).supports('de', 'en')).toBe(false);
  });
});
