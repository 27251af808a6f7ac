import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Logger } from '../log.js';
import { Dialplan, DialplanError, parseDialplanFile, type CompiledRule } from './dialplan.js';

const isDialplanFile = (name: string): boolean => /\.ya?ml$/.test(name) && !name.startsWith('.');

/**
 * Loads every `*.yaml` of a directory, in file-name order (so `10-sales.yaml` comes before
 * `90-default.yaml`). Throws DialplanError for the first broken file, naming it and the keys.
 */
export async function loadDialplans(dir: string, noMatchStatus = 404): Promise<Dialplan> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter(isDialplanFile).sort();
  } catch (err) {
    throw new DialplanError(dir, [{ path: '(directory)', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  const rules: CompiledRule[] = [];
  const seen = new Map<string, string>();
  for (const name of names) {
    const text = await readFile(join(dir, name), 'utf8');
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      throw new DialplanError(name, [{ path: '(file)', message: `not valid YAML: ${(err as Error).message.split('\n')[0]}` }]);
    }
    for (const rule of parseDialplanFile(doc, name)) {
      const other = seen.get(rule.rule.name);
      if (other) throw new DialplanError(name, [{ path: 'rules', message: `rule name "${rule.rule.name}" is also used in ${other}` }]);
      seen.set(rule.rule.name, name);
      rules.push(rule);
    }
  }
  return new Dialplan(rules, noMatchStatus);
}

export interface DialplanStoreOptions {
  readonly noMatchStatus?: number;
  readonly logger: Logger;
  /** Edits come in bursts (editors write, rename, touch): wait this long for quiet (ms). */
  readonly debounceMs?: number;
  /** Called after each reload attempt: the new dialplan, or the error that kept the old one. */
  readonly onReload?: (result: { dialplan: Dialplan } | { error: DialplanError }) => void;
}

/**
 * The live dialplan: loaded at start (a broken one stops start-up), then reloaded whenever a file
 * in the directory changes. A broken edit is reported and the previous dialplan stays in force,
 * so a typo never takes calls down.
 */
export class DialplanStore {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private dialplan: Dialplan,
    private readonly options: DialplanStoreOptions,
  ) {}

  static async open(dir: string, options: DialplanStoreOptions): Promise<DialplanStore> {
    const store = new DialplanStore(dir, await loadDialplans(dir, options.noMatchStatus), options);
    store.watcher = watch(dir, () => store.schedule());
    store.watcher.on('error', (err) => options.logger.error({ err, dir }, 'dialplan directory watch failed'));
    options.logger.info({ dir, rules: store.dialplan.rules.length }, 'dialplans loaded');
    return store;
  }

  current(): Dialplan {
    return this.dialplan;
  }

  /** Reloads now; resolves once applied or rejected (see onReload). */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(async () => {
      try {
        this.dialplan = await loadDialplans(this.dir, this.options.noMatchStatus);
        this.options.logger.info({ dir: this.dir, rules: this.dialplan.rules.length }, 'dialplans reloaded');
        this.options.onReload?.({ dialplan: this.dialplan });
      } catch (err) {
        if (!(err instanceof DialplanError)) throw err;
        this.options.logger.error({ file: err.file, issues: err.issues }, 'dialplan change rejected; previous dialplan kept');
        this.options.onReload?.({ error: err });
      }
    });
    return this.reloading;
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(), this.options.debounceMs ?? 200);
    this.timer.unref();
  }
}
