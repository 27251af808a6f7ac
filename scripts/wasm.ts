import wabt from 'wabt';

/** The WebAssembly bytes of a text-format module that uses SIMD (wabt, a development dependency). */
export async function assembleHalfBand(wat: string): Promise<Uint8Array> {
  const w = await wabt();
  const module = w.parseWat('halfband.wat', wat, { simd: true });
  try {
    module.validate();
    return module.toBinary({ log: false, write_debug_names: false }).buffer;
  } finally {
    module.destroy();
  }
}
