/**
 * The import-direction rule (eslint/layers.js) as `npm run lint` applies it: through ESLint with
 * the repository's own configuration, on source text placed in the folders it would live in.
 */
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { LAYERS, SHARED_ROOT_FILES } from '../../eslint/layers.js';

const eslint = new ESLint({ cwd: new URL('../..', import.meta.url).pathname });

async function layerErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: file });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'whisperline/layers').map((m) => m.message);
}

describe('the layers rule', () => {
  it('fails a wrong-way import, naming both folders and what the importer may use', async () => {
    const errors = await layerErrors('src/call/wrong-way.ts', "import type { SipApp } from '../sip/app.js';\nexport type X = SipApp;\n");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/wrong-way import "\.\.\/sip\/app\.js": call\/ must not import sip\//);
    expect(errors[0]).toMatch(/may import pipeline, transcripts/);
  });

  it('catches re-exports and dynamic imports, and imports of the composition root', async () => {
    expect(await layerErrors('src/media/x.ts', "export { CallSession } from '../call/call-session.js';\n")).toHaveLength(1);
    expect(await layerErrors('src/transcripts/x.ts', "export async function f(): Promise<unknown> { return import('../feeds/supervisor.js'); }\n")).toHaveLength(1);
    expect(await layerErrors('src/http/x.ts', "import { startGateway } from '../main.js';\nexport const g = startGateway;\n")).toHaveLength(1);
    expect(await layerErrors('src/audio/x.ts', "import { FakeRecognizer } from '../../test/support/fake-recognizer.js';\nexport const f = FakeRecognizer;\n")).toHaveLength(1);
  });

  it('lets imports that point down pass, and the shared root files from anywhere', async () => {
    expect(await layerErrors('src/sip/x.ts', "import type { CallRule } from '../call/rule.js';\nimport { WhisperlineError } from '../errors.js';\nexport type R = CallRule;\nexport const E = WhisperlineError;\n")).toEqual([]);
    expect(await layerErrors('src/feeds/x.ts', "import type { LegPlayback } from '../call/playback.js';\nimport { credentialOf } from '../http/auth.js';\nexport type P = LegPlayback;\nexport const c = credentialOf;\n")).toEqual([]);
    expect(await layerErrors('src/main.ts', "import { SipApp } from './sip/app.js';\nexport const s = SipApp;\n")).toEqual([]);
  });

  it('leaves tests free to import across layers', async () => {
    expect(await layerErrors('src/media/x.test.ts', "import { CallSession } from '../call/call-session.js';\nexport const c = CallSession;\n")).toEqual([]);
  });

  it('is a directed acyclic graph over known folders: no folder-level import cycle can exist', () => {
    const layers = LAYERS as Record<string, readonly string[]>;
    for (const [from, tos] of Object.entries(layers)) {
      for (const to of tos) expect(Object.keys(layers), `${from} → ${to}`).toContain(to);
    }
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (folder: string, path: string[]): void => {
      if (state.get(folder) === 'done') return;
      if (state.get(folder) === 'visiting') throw new Error(`cycle: ${[...path, folder].join(' → ')}`);
      state.set(folder, 'visiting');
      for (const to of layers[folder] ?? []) visit(to, [...path, folder]);
      state.set(folder, 'done');
    };
    for (const folder of Object.keys(layers)) visit(folder, []);
    expect(SHARED_ROOT_FILES).toEqual(['errors', 'log', 'child-process']);
  });
});
