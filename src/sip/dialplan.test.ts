import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Dialplan, DialplanError, parseDialplanFile, type InviteFacts } from './dialplan.js';
import { DialplanStore, loadDialplans } from './dialplan-store.js';

const facts = (over: Partial<InviteFacts> = {}): InviteFacts => ({
  requestUri: 'sip:1000@gw.example.com',
  requestUser: '1000',
  from: '"Alice" <sip:alice@pbx.example.com>;tag=a1',
  to: '<sip:1000@gw.example.com>',
  headers: { 'x-queue': 'sales' },
  source: '10.1.2.3',
  kind: 'plain',
  ...over,
});

const plan = (yaml: string, noMatch?: number): Dialplan => new Dialplan(parseDialplanFile(parse(yaml), 'test.yaml'), noMatch);

function issues(yaml: string): { path: string; message: string }[] {
  try {
    parseDialplanFile(parse(yaml), 'bad.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(DialplanError);
    return [...(err as DialplanError).issues];
  }
  throw new Error('expected a DialplanError');
}

describe('dialplan matching', () => {
  const rules = `
rules:
  - name: siprec
    match: { kind: siprec, source: ["10.0.0.0/8", "fd00::/8"] }
    action: siprec
  - name: sales-queue
    match: { requestUser: "^1000$", headers: { X-Queue: "^sales$" } }
    action: bridge
    target: sip:agents@pbx.example.com
    parties: { caller: { label: customer }, callee: { label: agent, language: en } }
    labels: [queue:sales]
  - name: blocked-caller
    match: { from: "sip:spam@" }
    action: reject
    status: 603
  - name: line
    match: { to: "sip:transcribe@" }
    action: answer
`;

  it('takes the first rule whose conditions all hold', () => {
    const d = plan(rules);
    expect(d.decide(facts())).toMatchObject({ kind: 'rule', rule: { name: 'sales-queue', action: 'bridge', target: 'sip:agents@pbx.example.com', labels: ['queue:sales'] } });
    expect(d.decide(facts({ kind: 'siprec' }))).toMatchObject({ rule: { name: 'siprec' } });
    expect(d.decide(facts({ kind: 'siprec', source: 'fd00::1' }))).toMatchObject({ rule: { name: 'siprec' } });
  });

  it('requires every condition: header value, source block, kind', () => {
    const d = plan(rules);
    expect(d.decide(facts({ headers: { 'x-queue': 'support' } }))).toMatchObject({ kind: 'no-match' });
    expect(d.decide(facts({ headers: {} }))).toMatchObject({ kind: 'no-match' });
    // SIPREC from outside the allowed blocks falls through to the next rules (here: the sales rule).
    expect(d.decide(facts({ kind: 'siprec', source: '192.0.2.1' }))).toMatchObject({ rule: { name: 'sales-queue' } });
  });

  it('matches From and To, and carries the reject status', () => {
    const d = plan(rules);
    expect(d.decide(facts({ requestUser: '2000', from: '<sip:spam@bad.example>' }))).toMatchObject({ rule: { name: 'blocked-caller', status: 603 } });
    expect(d.decide(facts({ requestUser: '2000', to: '<sip:transcribe@gw>' }))).toMatchObject({ rule: { name: 'line', action: 'answer' } });
  });

  it('answers a call no rule matches with the configured status', () => {
    expect(plan(rules).decide(facts({ requestUser: '9' }))).toEqual({ kind: 'no-match', status: 404, reason: 'Not Found' });
    expect(plan(rules, 480).decide(facts({ requestUser: '9' }))).toMatchObject({ kind: 'no-match', status: 480 });
  });

  it('defaults: transcribe every party, stereo 16 kHz forks', () => {
    const d = plan(`
rules:
  - name: r
    action: answer
    parties: { caller: {} }
    fork: { url: "wss://listener.example.com/audio" }
`);
    expect(d.rules[0]!.rule).toMatchObject({ parties: { caller: { transcribe: true } }, fork: { mix: 'stereo', sampleRate: 16000, bidirectional: false }, labels: [] });
  });
});

describe('dialplan validation', () => {
  it('names the path of each bad key and what was expected', () => {
    const found = issues(`
rules:
  - name: a
    match: { requestUser: "([" , source: "10.0.0.0/33", color: red }
    action: bridge
  - name: b
    action: reject
    status: 200
  - name: c
    action: answer
    target: sip:x@y
  - name: d
    action: answer
    fork: { url: "http://not-ws", mix: quad }
`);
    const byPath = Object.fromEntries(found.map((i) => [i.path, i.message]));
    expect(byPath['rules.0.match.requestUser']).toMatch(/invalid regular expression/);
    expect(byPath['rules.0.match.source']).toMatch(/not an IP address or CIDR block/);
    expect(byPath['rules.0.match.color']).toBe('unknown key');
    expect(byPath['rules.0.target']).toBe('a bridge rule needs a target URI');
    expect(byPath['rules.1.status']).toMatch(/400|>=/);
    expect(byPath['rules.2.target']).toMatch(/only for bridge rules/);
    expect(byPath['rules.3.fork.url']).toMatch(/ws:\/\//);
    expect(byPath['rules.3.fork.mix']).toMatch(/mono|mixed|stereo/);
  });

  it('reads prompts and interpretation: say as a string, a list or with its voice; interpret with its defaults', () => {
    const rules = parseDialplanFile(
      parse(`rules:
  - { name: a, action: answer, say: "Welcome." }
  - { name: b, action: answer, say: { answered: [One., Two.], ending: Goodbye., language: de, voice: de+f3 }, synthesizer: kokoro }
  - name: c
    action: bridge
    target: sip:agent@127.0.0.1
    translator: ollama
    parties: { caller: { language: de }, callee: { language: en } }
    interpret: { voices: { caller: de } }
`),
      'speech.yaml',
    ).map((r) => r.rule);
    expect(rules[0]).toMatchObject({ action: 'answer', say: { answered: ['Welcome.'], ending: [] } });
    expect(rules[1]).toMatchObject({ say: { answered: ['One.', 'Two.'], ending: ['Goodbye.'], language: 'de', voice: 'de+f3' }, synthesizer: 'kokoro' });
    expect(rules[2]).toMatchObject({ action: 'bridge', translator: 'ollama', interpret: { original: 'mute', maxLagMs: 8000, voices: { caller: 'de' } } });
  });

  it('refuses interpretation without both languages, and speech options on the wrong action', () => {
    const found = issues(`rules:
  - { name: x, action: bridge, target: "sip:a@127.0.0.1", parties: { caller: { language: auto } }, interpret: {} }
  - { name: y, action: siprec, say: Hello }
  - { name: z, action: answer, interpret: { original: duck } }
`);
    expect(found).toEqual(
      expect.arrayContaining([
        { path: 'rules.0.parties.caller.language', message: expect.stringMatching(/interpret needs the caller's language/) },
        { path: 'rules.0.parties.callee.language', message: expect.stringMatching(/interpret needs the callee's language/) },
        { path: 'rules.1.say', message: expect.stringMatching(/say is for answer rules/) },
        { path: 'rules.2.interpret.original', message: expect.stringMatching(/mute|pass/) },
      ]),
    );
  });

  it('reads an app rule\'s status hook and dial routing, and refuses them, or a bad trunk or pattern, elsewhere', () => {
    const app = plan(`rules:
  - name: ivr
    action: app
    url: http://127.0.0.1:3000/ivr
    statusHook: http://127.0.0.1:3000/status
    dial: { trunk: "sip:carrier.example.com:5060;transport=tcp", allow: "@10\\\\.0\\\\." }
`).decide(facts());
    expect(app).toMatchObject({ rule: { action: 'app', statusHook: 'http://127.0.0.1:3000/status', dial: { trunk: 'sip:carrier.example.com:5060;transport=tcp', allow: '@10\\.0\\.' } } });
    const found = issues(`rules:
  - { name: a, action: answer, dial: { trunk: "sip:x.example.com" }, statusHook: "http://x/status" }
  - { name: b, action: app, url: "ws://127.0.0.1/x", dial: { trunk: "sip:1000@x.example.com", allow: "([" } }
`);
    expect(found).toEqual(
      expect.arrayContaining([
        { path: 'rules.0.dial', message: 'dial is only for app rules (this one is answer)' },
        { path: 'rules.0.statusHook', message: 'statusHook is only for app rules (this one is answer)' },
        { path: 'rules.1.dial.trunk', message: expect.stringMatching(/without a user part/) },
        { path: 'rules.1.dial.allow', message: expect.stringMatching(/invalid regular expression/) },
      ]),
    );
  });

  it('rejects duplicate rule names', () => {
    expect(issues('rules: [{ name: x, action: answer }, { name: x, action: siprec }]')).toEqual([{ path: 'rules', message: 'duplicate rule name "x"' }]);
  });

  it('accepts the shipped dialplans', async () => {
    const d = await loadDialplans(join(import.meta.dirname, '..', '..', 'dialplans'));
    expect(d.rules.map((r) => r.rule.name)).toEqual(['siprec-recording', 'transcription-line']);
    expect(d.decide(facts({ requestUser: 'transcribe' }))).toMatchObject({ rule: { name: 'transcription-line' } });
  });
});

describe('DialplanStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wl-dialplans-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads files in name order, reloads on change, and keeps the previous dialplan when an edit is broken', async () => {
    writeFileSync(join(dir, '90-default.yaml'), 'rules: [{ name: default, action: answer }]\n');
    writeFileSync(join(dir, '10-sales.yaml'), 'rules: [{ name: sales, match: { requestUser: "^1000$" }, action: answer }]\n');
    writeFileSync(join(dir, 'notes.txt'), 'not a dialplan');
    const results: string[] = [];
    const store = await DialplanStore.open(dir, {
      logger: pino({ level: 'silent' }),
      debounceMs: 50,
      onReload: (r) => results.push('dialplan' in r ? `ok:${r.dialplan.rules.map((x) => x.rule.name).join(',')}` : `error:${r.error.file}`),
    });
    try {
      expect(store.current().rules.map((r) => r.rule.name)).toEqual(['sales', 'default']);
      const waitFor = async (n: number): Promise<void> => {
        for (let i = 0; i < 100 && results.length < n; i++) await new Promise((r) => setTimeout(r, 20));
      };
      writeFileSync(join(dir, '10-sales.yaml'), 'rules: [{ name: sales, match: { requestUser: "^2000$" }, action: reject, status: 486 }]\n');
      await waitFor(1);
      expect(results.at(-1)).toBe('ok:sales,default');
      expect(store.current().decide(facts({ requestUser: '2000' }))).toMatchObject({ rule: { status: 486 } });

      writeFileSync(join(dir, '10-sales.yaml'), 'rules: [{ name: sales, action: teleport }]\n');
      await waitFor(2);
      expect(results.at(-1)).toBe('error:10-sales.yaml');
      // The broken edit changed nothing.
      expect(store.current().decide(facts({ requestUser: '2000' }))).toMatchObject({ rule: { status: 486 } });
      expect(readFileSync(join(dir, '10-sales.yaml'), 'utf8')).toContain('teleport');
    } finally {
      store.close();
    }
  });

  it('refuses to start on a broken dialplan, naming the file', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'wl-dialplans-bad-'));
    writeFileSync(join(bad, 'a.yaml'), 'rules: [{ name: x, action: bridge }]\n');
    await expect(loadDialplans(bad)).rejects.toThrow(/invalid dialplan a\.yaml:\n {2}rules\.0\.target: a bridge rule needs a target URI/);
    rmSync(bad, { recursive: true, force: true });
  });
});
