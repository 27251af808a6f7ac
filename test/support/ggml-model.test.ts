import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BASE_DIMS,
  GGML_MAGIC,
  GGML_TYPE_F16,
  GGML_TYPE_F32,
  TINY_TEST_DIMS,
  readWhisperModelLayout,
  resolveDims,
  whisperModelSize,
  whisperTensorList,
  writeRandomWhisperModel,
} from './ggml-model.js';

const dir = mkdtempSync(join(tmpdir(), 'whisperline-ggml-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('random ggml Whisper model', () => {
  it('writes the header, filters, vocabulary and every tensor whisper_model_load expects', async () => {
    const path = join(dir, 'tiny.bin');
    const written = await writeRandomWhisperModel(path, TINY_TEST_DIMS, 7);
    expect(written.bytes).toBe(statSync(path).size);
    expect(written.bytes).toBe(whisperModelSize(TINY_TEST_DIMS));
    expect(written.bytes).toBeGreaterThan(7_000_000);
    expect(written.bytes).toBeLessThan(9_000_000);

    const raw = readFileSync(path);
    expect(raw.readUInt32LE(0)).toBe(GGML_MAGIC);

    const layout = await readWhisperModelLayout(path);
    expect(layout.dims).toEqual(TINY_TEST_DIMS);
    expect(layout.nMel).toBe(80);
    expect(layout.nFft).toBe(201);
    // Multilingual: ordinary tokens up to end-of-text; whisper.cpp adds the special ones.
    expect(layout.vocab).toHaveLength(50257);
    expect(layout.vocab[220]).toBe(' ');
    expect(layout.vocab.every((t) => /^[\x20-\x7e]*$/.test(t))).toBe(true);

    const expected = whisperTensorList(TINY_TEST_DIMS);
    // 7 encoder-level + 15 per encoder layer + 4 decoder-level + 24 per decoder layer
    expect(layout.tensors.map((t) => t.name)).toEqual(expected.map((t) => t.name));
    expect(layout.tensors).toHaveLength(7 + 15 * 1 + 4 + 24 * 1);
    const byName = new Map(layout.tensors.map((t) => [t.name, t]));
    expect(byName.get('encoder.conv1.weight')).toMatchObject({ ne: [3, 80, 64], type: GGML_TYPE_F16 });
    expect(byName.get('encoder.conv1.bias')).toMatchObject({ ne: [1, 64], type: GGML_TYPE_F32 });
    expect(byName.get('encoder.positional_embedding')).toMatchObject({ ne: [64, 1500], type: GGML_TYPE_F32 });
    expect(byName.get('decoder.token_embedding.weight')).toMatchObject({ ne: [64, 51865], type: GGML_TYPE_F16 });
    expect(byName.get('decoder.positional_embedding')).toMatchObject({ ne: [64, 448], type: GGML_TYPE_F32 });
    expect(byName.get('decoder.blocks.0.cross_attn.key.weight')).toMatchObject({ ne: [64, 64], type: GGML_TYPE_F16 });
    expect(byName.get('encoder.blocks.0.mlp.0.weight')).toMatchObject({ ne: [64, 256], type: GGML_TYPE_F16 });
    expect(byName.has('encoder.blocks.0.attn.key.bias')).toBe(false);

    // Layer norms start at 1 (f32), so the random network stays numerically sane.
    const ln = byName.get('encoder.ln_post.weight')!;
    expect(raw.readFloatLE(ln.offset)).toBe(1);
  });

  it('is deterministic for a seed and differs between seeds', async () => {
    const hash = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
    await writeRandomWhisperModel(join(dir, 'a.bin'), TINY_TEST_DIMS, 1);
    await writeRandomWhisperModel(join(dir, 'b.bin'), TINY_TEST_DIMS, 1);
    await writeRandomWhisperModel(join(dir, 'c.bin'), TINY_TEST_DIMS, 2);
    expect(hash(join(dir, 'a.bin'))).toBe(hash(join(dir, 'b.bin')));
    expect(hash(join(dir, 'a.bin'))).not.toBe(hash(join(dir, 'c.bin')));
  });

  it('writes f32 models and English-only vocabularies', async () => {
    const path = join(dir, 'f32-en.bin');
    const dims = { ...TINY_TEST_DIMS, nVocab: 51864, ftype: 0 as const };
    await writeRandomWhisperModel(path, dims, 1);
    const layout = await readWhisperModelLayout(path);
    expect(layout.vocab).toHaveLength(50256);
    expect(layout.tensors.every((t) => t.type === GGML_TYPE_F32)).toBe(true);
    expect(layout.size).toBe(whisperModelSize(dims));
  });

  it('sizes a base-dimension model at about 150 MB without writing it', () => {
    const size = whisperModelSize(BASE_DIMS);
    expect(size).toBeGreaterThan(140_000_000);
    expect(size).toBeLessThan(160_000_000);
    expect(whisperTensorList(BASE_DIMS)).toHaveLength(7 + 15 * 6 + 4 + 24 * 6);
  });

  it('rejects dimensions whisper.cpp cannot load', () => {
    expect(() => resolveDims({ ...TINY_TEST_DIMS, nVocab: 50000 })).toThrow(RangeError);
    expect(() => resolveDims({ ...TINY_TEST_DIMS, nTextState: 128 })).toThrow(RangeError);
    expect(() => resolveDims({ ...TINY_TEST_DIMS, nAudioHead: 3 })).toThrow(RangeError);
  });
});
