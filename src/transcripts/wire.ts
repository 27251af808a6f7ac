import type { CallEvent } from './events.js';

/** Event type names on the supervisor feed and in the history API. */
export type WireEventType =
  | 'call.started'
  | 'call.updated'
  | 'call.ended'
  | 'transcript.partial'
  | 'transcript.final'
  | 'transcript.ended'
  | 'translation'
  | 'dtmf'
  | 'alert'
  | 'speech.started'
  | 'speech.done'
  | 'speech.failed'
  | 'app';

/**
 * One call event as supervisors see it: a flat JSON object with `type`, `callId`, `seq` (per
 * call, what a per-call resume is keyed on), `cursor` (store-wide, what a global resume is keyed
 * on; absent on partials, which are not stored) and the event's own fields. `at` is the wall
 * clock (ms since the epoch) at which it was published or recorded.
 */
export interface WireEvent {
  readonly type: WireEventType;
  readonly callId: string;
  readonly seq: number;
  readonly cursor?: number;
  readonly at?: number;
  /** Set on events sent from the store during a resume, not live. */
  readonly replay?: true;
  readonly [field: string]: unknown;
}

const TYPE_OF: Readonly<Record<CallEvent['kind'], WireEventType>> = {
  'call.started': 'call.started',
  'call.updated': 'call.updated',
  'call.ended': 'call.ended',
  partial: 'transcript.partial',
  final: 'transcript.final',
  ended: 'transcript.ended',
  translation: 'translation',
  dtmf: 'dtmf',
  alert: 'alert',
  'speech.started': 'speech.started',
  'speech.done': 'speech.done',
  'speech.failed': 'speech.failed',
  app: 'app',
};

export function wireType(kind: CallEvent['kind']): WireEventType {
  return TYPE_OF[kind];
}

/** A call event in wire form. */
export function toWire(event: CallEvent, cursor: number | undefined, at?: number, replay = false): WireEvent {
  const { kind, callId, seq, ...fields } = event;
  return {
    type: TYPE_OF[kind],
    callId,
    seq,
    ...(cursor !== undefined ? { cursor } : {}),
    ...(at !== undefined ? { at } : {}),
    ...(replay ? { replay: true as const } : {}),
    ...fields,
  };
}
