/**
 * The import direction of `src/`, checked by `npm run lint` (and so by `npm test`).
 *
 * Each folder under `src/` is one stage; `LAYERS` says which other folders a stage's modules may
 * import. Dependencies point one way: from the edges (sip, http, feeds, ingest) through call and
 * pipeline down to transcripts, asr, translation, tts, vad, media, audio and config. The table is
 * a directed acyclic graph (the layers test checks it), so no folder-level import cycle can
 * exist. The files at the top of `src/` are either shared utilities (imported from anywhere) or the
 * composition root and CLI (importing anything, imported by nothing but each other).
 *
 * Tests (`*.test.ts`) may import across layers; `src/` code never imports `test/`.
 */
import { dirname, relative, resolve, sep } from 'node:path';

/** folder → the folders its modules may import (besides their own and the shared root files). */
export const LAYERS = {
  config: [],
  audio: [],
  media: ['audio', 'config'],
  vad: ['audio', 'config'],
  asr: ['audio', 'config'],
  translation: ['asr', 'audio', 'config'],
  tts: ['audio', 'config'],
  transcripts: ['asr', 'vad', 'audio', 'config'],
  pipeline: ['transcripts', 'translation', 'tts', 'asr', 'vad', 'audio', 'config'],
  call: ['pipeline', 'transcripts', 'translation', 'tts', 'asr', 'vad', 'media', 'audio', 'config'],
  http: ['transcripts', 'config'],
  feeds: ['http', 'call', 'transcripts', 'tts', 'audio', 'config'],
  ingest: ['http', 'pipeline', 'transcripts', 'asr', 'audio', 'config'],
  sip: ['call', 'transcripts', 'config'],
  app: ['call', 'transcripts', 'config'],
};

/** Files at the top of `src/` that every layer may import: they depend on no layer but config. */
export const SHARED_ROOT_FILES = ['errors', 'log', 'child-process'];
/** The composition root and the CLI: they may import anything; no layer may import them. */
export const ROOT_FILES = ['main', 'cli'];

const stripExt = (p) => p.replace(/\.(ts|js|mjs|cjs)$/, '');

/** Where a path under `srcDir` sits: a layer folder, a root file, or outside `src/`. */
export function placeOf(srcDir, absPath) {
  const rel = relative(srcDir, absPath);
  if (rel.startsWith('..') || rel === '') return { kind: 'outside', rel };
  const parts = rel.split(sep);
  if (parts.length === 1) return { kind: 'root', name: stripExt(parts[0]) };
  return { kind: 'layer', name: parts[0] };
}

/** Why `from` may not import `to` (undefined when it may). */
export function violation(from, to) {
  if (to.kind === 'outside') return from.kind === 'outside' ? undefined : `src/ must not import ${to.rel} (tests and tools import src, never the other way)`;
  if (from.kind === 'outside') return undefined;
  if (from.kind === 'root') {
    if (ROOT_FILES.includes(from.name)) return undefined;
    if (to.kind === 'root') return ROOT_FILES.includes(to.name) ? `${from.name}.ts must not import ${to.name}.ts` : undefined;
    return to.name === 'config' ? undefined : `${from.name}.ts is shared by every layer and must not import ${to.name}/`;
  }
  if (to.kind === 'root') return ROOT_FILES.includes(to.name) ? `${from.name}/ must not import ${to.name}.ts (only the composition root wires layers)` : undefined;
  if (to.name === from.name) return undefined;
  const allowed = LAYERS[from.name];
  if (allowed === undefined) return `src/${from.name}/ is not a known layer: add it to LAYERS in eslint/layers.js`;
  if (allowed.includes(to.name)) return undefined;
  return `${from.name}/ must not import ${to.name}/ (${from.name}/ may import ${allowed.length > 0 ? allowed.join(', ') : 'no other layer'})`;
}

/** @type {import('eslint').Rule.RuleModule} */
const layersRule = {
  meta: {
    type: 'problem',
    docs: { description: 'imports between src/ folders follow the layer table (eslint/layers.js)' },
    schema: [{ type: 'object', properties: { srcDir: { type: 'string' } }, additionalProperties: false }],
    messages: { wrongWay: 'wrong-way import "{{spec}}": {{why}}' },
  },
  create(context) {
    const srcDir = resolve(context.options[0]?.srcDir ?? 'src');
    const file = context.filename;
    if (/\.test\.ts$/.test(file)) return {};
    const from = placeOf(srcDir, file);
    if (from.kind === 'outside') return {};
    const check = (node, source) => {
      const spec = source?.value;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const why = violation(from, placeOf(srcDir, resolve(dirname(file), spec)));
      if (why) context.report({ node, messageId: 'wrongWay', data: { spec, why } });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source),
      ExportNamedDeclaration: (node) => check(node, node.source),
      ExportAllDeclaration: (node) => check(node, node.source),
      ImportExpression: (node) => check(node, node.source.type === 'Literal' ? node.source : undefined),
    };
  },
};

export default { rules: { layers: layersRule } };
