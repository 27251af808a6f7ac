/**
 * `node --import tsx src/asr/whisper/build-cli.ts [buildDir] [--cuda]`: builds whisper-server once into the
 * cache (default `~/.cache/whisperline/whisper.cpp`), e.g. from CI set-up, and prints its path.
 */
import { DEFAULT_BUILD_DIR, ensureWhisperBinaries } from './whisper-build.js';
import { WhisperlineError } from '../../errors.js';

async function main(argv: string[]): Promise<number> {
  const cuda = argv.includes('--cuda');
  const positional = argv.filter((a) => !a.startsWith('--'));
  if (argv.includes('--help') || positional.length > 1) {
    process.stderr.write('usage: build-cli [buildDir] [--cuda]\n');
    return 2;
  }
  const buildDir = positional[0] ?? DEFAULT_BUILD_DIR;
  const started = Date.now();
  let lines = 0;
  process.stderr.write(`whisper-server (${cuda ? 'cuda' : 'cpu'}): ensuring a build in ${buildDir}\n`);
  try {
    const binaries = await ensureWhisperBinaries({
      buildDir,
      cuda,
      onOutput: (line) => {
        lines++;
        // Progress without flooding: cmake's "[ 42%] Building …" lines and anything that looks wrong.
        if (/^\[\s*\d+%\]/.test(line) || /error|warning: unused/i.test(line)) process.stderr.write(`  ${line}\n`);
      },
    });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    process.stderr.write(lines > 0 ? `built in ${seconds} s\n` : `already built (${seconds} s)\n`);
    process.stdout.write(`${binaries.server}\n`);
    return 0;
  } catch (err) {
    const message = err instanceof WhisperlineError ? `${err.code}: ${err.message}` : String(err);
    console.error(`whisper-server build failed: ${message}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
