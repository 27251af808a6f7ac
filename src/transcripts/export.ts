import type { CallEvent } from './events.js';
import { WhisperlineError } from '../errors.js';
import type { CallRecord, TranscriptStore } from './store.js';

export type ExportFormat = 'json' | 'vtt' | 'srt' | 'txt';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['json', 'vtt', 'srt', 'txt'];

/** One line of a transcript: a final, or a translation of one (`translation`: its language). */
interface Cue {
  readonly startMs: number;
  readonly endMs: number;
  readonly label: string;
  readonly text: string;
  readonly translation: string | undefined;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** `HH:MM:SS<sep>mmm` on the call clock. */
function timestamp(ms: number, sep: '.' | ','): string {
  const t = Math.max(0, Math.round(ms));
  const h = Math.floor(t / 3_600_000);
  const m = Math.floor(t / 60_000) % 60;
  const s = Math.floor(t / 1000) % 60;
  return `${pad(h)}:${pad(m)}:${pad(s)}${sep}${pad(t % 1000, 3)}`;
}

/** `mm:ss` (minutes keep counting past 59). */
function minutes(ms: number): string {
  const s = Math.floor(Math.max(0, ms) / 1000);
  return `${pad(Math.floor(s / 60))}:${pad(s % 60)}`;
}

/** A cue's text on one line: a blank line would end a VTT/SRT cue early. */
const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

const vttEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function cues(call: CallRecord, events: readonly CallEvent[]): Cue[] {
  const labels = new Map(call.parties.map((p) => [p.name, p.label ?? p.name]));
  const out: (Cue & { seq: number })[] = [];
  for (const e of events) {
    if (e.kind !== 'final' && e.kind !== 'translation') continue;
    const text = oneLine(e.text);
    if (text === '') continue;
    // A translation sorts right after its final: same start, later seq.
    out.push({ startMs: e.startMs, endMs: e.endMs, label: e.speaker ?? labels.get(e.party) ?? e.party, text, translation: e.kind === 'translation' ? e.language : undefined, seq: e.seq });
  }
  return out.sort((a, b) => a.startMs - b.startMs || a.seq - b.seq);
}

const marked = (c: Cue): string => (c.translation !== undefined ? `[${c.translation}] ${c.text}` : c.text);

function vtt(list: readonly Cue[]): string {
  const blocks = list.map((c) => `${timestamp(c.startMs, '.')} --> ${timestamp(c.endMs, '.')}\n<v ${vttEscape(c.label)}>${vttEscape(marked(c))}\n`);
  return ['WEBVTT\n', ...blocks].join('\n');
}

function srt(list: readonly Cue[]): string {
  return list.map((c, i) => `${i + 1}\n${timestamp(c.startMs, ',')} --> ${timestamp(c.endMs, ',')}\n${c.label}: ${marked(c)}\n`).join('\n');
}

function txt(list: readonly Cue[]): string {
  return list.map((c) => `[${minutes(c.startMs)}] ${c.label}: ${marked(c)}\n`).join('');
}

/**
 * A stored call as a document: `json` (the call and every stored event), WebVTT and SRT
 * subtitles, or plain text. Subtitle formats carry finals and their translations ([de], [en]…)
 * ordered by start time, each with its party's label (or name).
 * Throws `WhisperlineError` `NOT_FOUND` for a call the store does not hold.
 */
export function exportCall(store: TranscriptStore, callId: string, format: ExportFormat): string {
  const call = store.call(callId);
  if (!call) throw new WhisperlineError('NOT_FOUND', `no call "${callId}" in the transcript store`);
  const events: CallEvent[] = [];
  for (let after = 0; ; ) {
    const page = store.eventsAfter(callId, after, 1000);
    for (const s of page) events.push(s.event);
    if (page.length < 1000) break;
    after = page[page.length - 1]!.event.seq;
  }
  switch (format) {
    case 'json':
      return `${JSON.stringify({ call, events }, null, 2)}\n`;
    case 'vtt':
      return vtt(cues(call, events));
    case 'srt':
      return srt(cues(call, events));
    case 'txt':
      return txt(cues(call, events));
  }
}
