import type { AlertRule } from '../config/schema.js';

/** One alert rule that matched one final. */
export interface AlertMatch {
  readonly rule: string;
  readonly severity: AlertRule['severity'];
  /** The matched words as they appear in the final. */
  readonly text: string;
}

interface CompiledAlert {
  readonly rule: AlertRule;
  readonly pattern: RegExp;
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Keyword alert rules compiled once. A word list matches whole words, case-insensitively, with
 * any run of spaces or punctuation between the words of a phrase ("cancel, my account" matches
 * "cancel my account"), because Whisper's punctuation is not stable from one decode to the next.
 * Each rule raises at most one alert per final.
 */
export class KeywordAlerts {
  private readonly compiled: readonly CompiledAlert[];

  constructor(rules: readonly AlertRule[]) {
    this.compiled = rules.map((rule) => {
      const sources: string[] = [];
      for (const phrase of rule.words ?? []) {
        const words = phrase.trim().split(/\s+/).map(escapeRegExp);
        // \p{L}\p{N} boundaries rather than \b, which knows only ASCII word characters.
        sources.push(`(?<![\\p{L}\\p{N}])${words.join('[\\s\\p{P}]+')}(?![\\p{L}\\p{N}])`);
      }
      if (rule.pattern !== undefined) sources.push(`(?:${rule.pattern})`);
      return { rule, pattern: new RegExp(sources.join('|'), 'iu') };
    });
  }

  get size(): number {
    return this.compiled.length;
  }

  /** The rules that match a final of `party` (whose label, if any, also selects rules). */
  match(text: string, party: string, label?: string): AlertMatch[] {
    const matches: AlertMatch[] = [];
    for (const { rule, pattern } of this.compiled) {
      if (rule.party !== undefined && rule.party !== party && rule.party !== label) continue;
      const found = pattern.exec(text);
      if (found) matches.push({ rule: rule.name, severity: rule.severity, text: found[0] });
    }
    return matches;
  }
}
