import { describe, expect, it } from 'vitest';
import { AlertRuleSchema, type AlertRule } from '../config/schema.js';
import { KeywordAlerts } from './alerts.js';

const rule = (r: Partial<AlertRule> & { name: string }): AlertRule => AlertRuleSchema.parse({ severity: 'warning', ...r });

describe('KeywordAlerts', () => {
  it('matches whole words and phrases, case-insensitively, across punctuation', () => {
    const alerts = new KeywordAlerts([rule({ name: 'cancel', words: ['cancel my account', 'supervisor'] })]);
    expect(alerts.match('I want to Cancel, my account now.', 'caller')).toEqual([{ rule: 'cancel', severity: 'warning', text: 'Cancel, my account' }]);
    expect(alerts.match('Get me a SUPERVISOR!', 'caller')).toHaveLength(1);
    expect(alerts.match('the supervisors are busy', 'caller')).toEqual([]);
    expect(alerts.match('uncancel my account', 'caller')).toEqual([]);
  });

  it('matches non-ASCII words on letter boundaries', () => {
    const alerts = new KeywordAlerts([rule({ name: 'kündigen', words: ['kündigen'] })]);
    expect(alerts.match('Ich möchte kündigen.', 'caller')).toHaveLength(1);
    expect(alerts.match('Ich möchte kündigenx', 'caller')).toHaveLength(0);
  });

  it('treats the words of a rule as text, not as a pattern', () => {
    const alerts = new KeywordAlerts([rule({ name: 'price', words: ['$5.00 (total)'] })]);
    expect(alerts.match('it is $5.00 (total) today', 'caller')).toHaveLength(1);
    expect(alerts.match('it is $5x00 (total) today', 'caller')).toHaveLength(0);
  });

  it('applies regular expressions and party filters by name or label', () => {
    const alerts = new KeywordAlerts([
      rule({ name: 'card', pattern: '\\b(?:\\d[ -]?){13,16}\\b', severity: 'critical' }),
      rule({ name: 'agent-rude', words: ['shut up'], party: 'agent' }),
    ]);
    expect(alerts.match('my card is 4111 1111 1111 1111 thanks', 'caller')).toEqual([
      { rule: 'card', severity: 'critical', text: '4111 1111 1111 1111 ' },
    ]);
    expect(alerts.match('oh shut up', 'caller')).toEqual([]);
    expect(alerts.match('oh shut up', 'callee', 'agent')).toEqual([{ rule: 'agent-rude', severity: 'warning', text: 'shut up' }]);
    expect(alerts.match('oh shut up', 'agent')).toHaveLength(1);
  });

  it('is rejected by the schema without words or pattern, or with a bad pattern', () => {
    expect(AlertRuleSchema.safeParse({ name: 'x', severity: 'info' }).success).toBe(false);
    const bad = AlertRuleSchema.safeParse({ name: 'x', severity: 'info', pattern: '(' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toBe('not a valid regular expression');
  });
});
