/* global document, location, history, sessionStorage, WebSocket, fetch, URL, URLSearchParams, Blob, setTimeout, clearTimeout, setInterval, clearInterval, requestAnimationFrame */
/**
 * whisperline supervisor page: live calls from the supervisor feed (WebSocket) and stored calls
 * from the history API. Plain DOM, no framework, no build step. Every piece of call data is put in
 * the page as text (textContent, setAttribute), never as markup.
 *
 * Live feed protocol (see src/feeds/supervisor.ts): `hello` first on every connect, then, when
 * resuming with `?cursor=`, the stored events missed (`replay: true`) and `replay.done`, then live
 * events. Events are de-duplicated per call by `seq`; the store cursor of the last event seen is
 * what a reconnect resumes from, so nothing is missed across a dropped socket.
 */

const TOKEN_KEY = 'whisperline.supervisor.token';
const PING_MS = 20_000;
/** No message at all (our pings get pongs) for this long: the socket is dead, reconnect. */
const SILENCE_MS = 60_000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 10_000;
/** An ended call stays in the live view this long, then fades out. */
const ENDED_LINGER_MS = 30_000;
const FADE_MS = 1000;
/** Lines kept in a live call's transcript (older ones are in the history). */
const MAX_LIVE_LINES = 400;
/** Calls whose stored transcript is fetched at the same time. */
const HISTORY_FETCHES = 4;
const HISTORY_PAGE = 50;
const SEVERITY_RANK = { info: 1, warning: 2, critical: 3 };
const SEVERITY_TEXT = { info: 'Info', warning: 'Warning', critical: 'Critical' };
const EXPORTS = [
  ['json', 'JSON'],
  ['vtt', 'WebVTT'],
  ['srt', 'SRT'],
  ['txt', 'Text'],
];

// ---------------------------------------------------------------------------------------------
// Small helpers

const $ = (id) => document.getElementById(id);

/**
 * Creates an element. `attrs`: `class`, `text` (textContent), `dataset` (object), `hidden`, and
 * any other attribute (string values; null/undefined/false skip it). Children: nodes or strings.
 */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k === 'hidden') el.hidden = true;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

const pad2 = (n) => String(n).padStart(2, '0');

/** `m:ss`, or `h:mm:ss` from an hour on. */
function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(s / 3600);
  const m = Math.floor(s / 60) % 60;
  return hours > 0 ? `${hours}:${pad2(m)}:${pad2(s % 60)}` : `${m}:${pad2(s % 60)}`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const formatDate = (ms) => (typeof ms === 'number' ? dateTime.format(new Date(ms)) : '');

const isLang = (s) => typeof s === 'string' && /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(s);
const str = (v) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

// ---------------------------------------------------------------------------------------------
// Token and API

let token = null;

function readToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromUrl = fragment.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    fragment.delete('token');
    const rest = fragment.toString();
    // Out of the address bar (and the history) at once.
    history.replaceState(null, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
    return fromUrl;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET with the bearer token; JSON by default. 401 signs out. */
async function api(path, as = 'json') {
  const res = await fetch(path, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (body && typeof body.error === 'string') message = body.error;
    } catch {
      // not JSON
    }
    if (res.status === 401) signOut('The gateway did not accept this token.');
    throw new ApiError(res.status, message);
  }
  return as === 'blob' ? res.blob() : res.json();
}

const callPath = (callId) => `/v1/calls/${encodeURIComponent(callId)}`;

// ---------------------------------------------------------------------------------------------
// Status line

function setConnection(state, text) {
  const el = $('connection');
  el.dataset.state = state;
  if (el.textContent !== text) el.textContent = text;
}

// ---------------------------------------------------------------------------------------------
// Parties: colour class by role (caller blue, callee green, other SIPREC parties other colours).

class Parties {
  constructor() {
    /** name → { name, label, cls, detail } */
    this.byName = new Map();
    this.others = 0;
  }

  /** The party, added if new. */
  get(name, label) {
    let p = this.byName.get(name);
    if (!p) {
      const cls = name === 'caller' ? 'party-caller' : name === 'callee' ? 'party-callee' : `party-other-${this.others++ % 4}`;
      p = { name, label: undefined, cls, detail: '' };
      this.byName.set(name, p);
    }
    if (typeof label === 'string' && label !== '') p.label = label;
    return p;
  }

  /** What a line shows as its speaker: the label (agent, customer...) or else the name. */
  display(name) {
    const p = this.get(name);
    return p.label ?? p.name;
  }
}

function partyChip(p) {
  const title = [p.label ? `${p.label} (${p.name})` : p.name, p.detail].filter(Boolean).join(' — ');
  return h(
    'li',
    { class: `party ${p.cls}`, dataset: { party: p.name }, title },
    h('span', { class: 'party-swatch', 'aria-hidden': 'true' }),
    h('span', { class: 'party-label', text: p.label ?? p.name }),
    p.label ? h('span', { class: 'party-name', text: p.name }) : null,
    p.detail ? h('span', { class: 'party-detail', text: p.detail }) : null,
  );
}

// ---------------------------------------------------------------------------------------------
// Transcript: an ordered list of lines (finals by startMs, partials in place until their final
// replaces them, translations and alerts under their final, DTMF digits).

/** Per-line bookkeeping, kept off the DOM. */
const lineMeta = new WeakMap();

class Transcript {
  /**
   * @param {HTMLOListElement} list
   * @param {Parties} parties
   * @param {{ maxLines?: number, onAlert?: (alert: object) => void, onChange?: () => void }} options
   */
  constructor(list, parties, options = {}) {
    this.list = list;
    this.parties = parties;
    this.options = options;
    /** `${party}|${startMs}` → partial line */
    this.partials = new Map();
    /** `${party}|${startMs}` → final line */
    this.finalsByKey = new Map();
    /** final seq → line */
    this.finals = new Map();
    /** final seq → translations and alerts that came before their final */
    this.pending = new Map();
    /** translation seq → its line (spoken marks go on it) */
    this.translations = new Map();
    /** translation seq → a speech.started that came before its translation was shown */
    this.spokenPending = new Map();
  }

  /** Inserts a line in (sortMs, seq) order; new lines usually belong at the end. */
  insert(li, sortMs, seq) {
    lineMeta.set(li, { sortMs, seq });
    let after = this.list.lastElementChild;
    while (after) {
      const m = lineMeta.get(after);
      if (!m || m.sortMs < sortMs || (m.sortMs === sortMs && m.seq < seq)) break;
      after = after.previousElementSibling;
    }
    if (after) after.after(li);
    else this.list.prepend(li);
    const max = this.options.maxLines;
    while (max && this.list.childElementCount > max) this.forget(this.list.firstElementChild);
  }

  forget(li) {
    const m = lineMeta.get(li);
    li.remove();
    if (!m) return;
    const key = li.dataset.key;
    if (key && this.partials.get(key) === li) this.partials.delete(key);
    if (key && this.finalsByKey.get(key) === li) this.finalsByKey.delete(key);
    if (this.finals.get(m.seq) === li) this.finals.delete(m.seq);
  }

  /** Who said a line: the speaker the recording metadata named at the time, else the party's label or name. */
  speaker(party, named) {
    const p = this.parties.get(party);
    const who = str(named) || (p.label ?? p.name);
    return h('span', { class: `who ${p.cls}`, title: who !== p.name ? `${who} (${p.name})` : p.name, text: who });
  }

  textLine(ev, kind) {
    const startMs = num(ev.startMs) ?? 0;
    const key = `${ev.party}|${startMs}`;
    const p = this.parties.get(ev.party);
    const text = str(ev.text).trim();
    const li = h(
      'li',
      {
        class: `line line-${kind} ${p.cls}`,
        dataset: { kind, party: ev.party, startMs, seq: ev.seq, key },
        // Partials are previews: screen readers get the final only (it replaces the node).
        'aria-hidden': kind === 'partial' ? 'true' : null,
      },
      h(
        'div',
        { class: 'line-main' },
        h('span', { class: 'when', text: clock(startMs) }),
        this.speaker(ev.party, ev.speaker),
        h('span', { class: 'text', lang: isLang(ev.language) ? ev.language : null, text: text === '' ? '…' : text }),
      ),
    );
    return { li, key, startMs };
  }

  partial(ev) {
    const startMs = num(ev.startMs) ?? 0;
    const key = `${ev.party}|${startMs}`;
    if (this.finalsByKey.has(key)) return; // its final is already shown
    const existing = this.partials.get(key);
    if (existing) {
      if (Number(existing.dataset.seq) >= ev.seq) return;
      existing.dataset.seq = String(ev.seq);
      const text = existing.querySelector('.text');
      const value = str(ev.text).trim() || '…';
      if (text.textContent !== value) text.textContent = value;
      this.options.onChange?.();
      return;
    }
    const { li } = this.textLine(ev, 'partial');
    this.partials.set(key, li);
    this.insert(li, startMs, ev.seq);
    this.options.onChange?.();
  }

  final(ev) {
    const { li, key, startMs } = this.textLine(ev, 'final');
    const partial = this.partials.get(key);
    if (partial) {
      // The same utterance: the final takes the partial's place.
      this.partials.delete(key);
      lineMeta.set(li, { sortMs: startMs, seq: ev.seq });
      partial.replaceWith(li);
    } else {
      this.insert(li, startMs, ev.seq);
    }
    this.finalsByKey.set(key, li);
    this.finals.set(ev.seq, li);
    // Earlier partials of this party never got a final (filtered out): they are stale now.
    for (const [k, el] of this.partials) {
      if (el.dataset.party === ev.party && Number(el.dataset.startMs) < startMs) {
        this.partials.delete(k);
        el.remove();
      }
    }
    const waiting = this.pending.get(ev.seq);
    if (waiting) {
      this.pending.delete(ev.seq);
      for (const w of waiting) this.attach(li, w);
    }
    this.options.onChange?.();
  }

  /**
   * Speech the gateway put into the call: an interpretation marks the translation it spoke (to
   * which leg); a prompt is a line of its own.
   */
  speech(ev, sortMs) {
    if (ev.type === 'speech.started' && ev.purpose === 'interpretation' && typeof ev.translationSeq === 'number') {
      if (this.translations.has(ev.translationSeq)) this.markSpoken(ev);
      else this.spokenPending.set(ev.translationSeq, ev);
      this.options.onChange?.();
      return;
    }
    const line = (cls, tag, text) =>
      h(
        'li',
        { class: `line line-speech ${cls}`, dataset: { kind: 'speech', startMs: sortMs, seq: ev.seq, speechId: str(ev.speechId) } },
        h('div', { class: 'line-main' }, h('span', { class: 'when', text: clock(sortMs) }), h('span', { class: 'text' }, h('span', { class: 'tag', text: tag }), ' ', h('span', { text }))),
      );
    if (ev.type === 'speech.started' && ev.purpose === 'prompt') {
      this.insert(line('speech-prompt', `🔊 to ${str(ev.leg)}`, str(ev.text).trim()), sortMs, ev.seq);
      this.options.onChange?.();
      return;
    }
    if (ev.type === 'speech.failed') {
      this.insert(line('speech-failed', 'not spoken', `${str(ev.text).trim()} (${str(ev.error?.message)})`), sortMs, ev.seq);
      this.options.onChange?.();
    }
  }

  markSpoken(ev) {
    const p = this.translations.get(ev.translationSeq);
    if (!p || p.querySelector('.spoken')) return;
    p.append(h('span', { class: 'spoken', title: `spoken into the call by ${str(ev.provider)}`, text: ` 🔊 to ${str(ev.leg)}` }));
  }

  /** A translation or alert: under its final, or kept until the final comes. */
  annotate(ev) {
    if (ev.type === 'alert') this.options.onAlert?.(ev);
    const li = this.finals.get(ev.finalSeq);
    if (li) this.attach(li, ev);
    else {
      const list = this.pending.get(ev.finalSeq) ?? [];
      list.push(ev);
      this.pending.set(ev.finalSeq, list);
    }
    this.options.onChange?.();
  }

  attach(li, ev) {
    if (ev.type === 'translation') {
      const language = /^[a-z]{2,3}$/.test(str(ev.language)) ? str(ev.language) : 'en';
      const p = h(
        'p',
        { class: 'translation', lang: language, dataset: { seq: ev.seq }, title: ev.provider ? `translated by ${str(ev.provider)}` : undefined },
        h('span', { class: 'tag', text: language.toUpperCase() }),
        ' ',
        h('span', { text: str(ev.text).trim() }),
      );
      li.append(p);
      this.translations.set(ev.seq, p);
      const spoken = this.spokenPending.get(ev.seq);
      if (spoken) {
        this.spokenPending.delete(ev.seq);
        this.markSpoken(spoken);
      }
      return;
    }
    const severity = SEVERITY_RANK[ev.severity] ? ev.severity : 'info';
    const current = li.dataset.alert;
    if (!current || SEVERITY_RANK[severity] > SEVERITY_RANK[current]) li.dataset.alert = severity;
    const matched = str(ev.text).trim();
    li.append(
      h(
        'p',
        { class: `line-alert severity-${severity}`, dataset: { seq: ev.seq, severity } },
        h('span', { class: 'severity', text: SEVERITY_TEXT[severity] }),
        ' ',
        h('span', { class: 'rule', text: str(ev.rule) }),
        matched ? h('span', { class: 'matched', text: ` “${matched}”` }) : null,
      ),
    );
  }

  dtmf(ev, sortMs) {
    const last = this.list.lastElementChild;
    // Digits of one party in a row share a line.
    if (last && last.dataset.kind === 'dtmf' && last.dataset.party === ev.party && sortMs - Number(last.dataset.startMs) < 10_000) {
      const digits = last.querySelector('.digits');
      digits.textContent = `${digits.textContent} ${str(ev.digit)}`;
      this.options.onChange?.();
      return;
    }
    const p = this.parties.get(ev.party);
    const li = h(
      'li',
      { class: `line line-dtmf ${p.cls}`, dataset: { kind: 'dtmf', party: ev.party, startMs: sortMs, seq: ev.seq } },
      h(
        'div',
        { class: 'line-main' },
        h('span', { class: 'when', text: clock(sortMs) }),
        this.speaker(ev.party),
        h('span', { class: 'text' }, h('span', { class: 'tag', text: 'DTMF' }), ' ', h('span', { class: 'digits', text: str(ev.digit) })),
      ),
    );
    this.insert(li, sortMs, ev.seq);
    this.options.onChange?.();
  }

  /** No more partials will be finalised (transcript ended, call ended). */
  dropPartials() {
    for (const el of this.partials.values()) el.remove();
    this.partials.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Live calls

/** callId → LiveCall */
const calls = new Map();
/** Calls removed from the live view: late events for them are ignored. */
const gone = new Set();
/** Cards whose transcript should scroll to the end at the next frame. */
const toScroll = new Set();
let scrollScheduled = false;

function scheduleScroll(call) {
  if (!call.stick) return;
  toScroll.add(call);
  if (scrollScheduled) return;
  scrollScheduled = true;
  requestAnimationFrame(() => {
    scrollScheduled = false;
    for (const c of toScroll) c.els.transcript.scrollTop = c.els.transcript.scrollHeight;
    toScroll.clear();
  });
}

let nextCallNumber = 1;

class LiveCall {
  constructor(callId) {
    this.id = callId;
    this.number = nextCallNumber++;
    this.rule = null;
    this.labels = [];
    this.startedAt = undefined;
    this.ended = false;
    this.endReason = null;
    this.endStatus = null;
    this.durationMs = undefined;
    /** seqs applied (dedup across replay, history fetch and live) */
    this.seen = new Set();
    this.hold = { caller: false, callee: false };
    this.parties = new Parties();
    this.alerts = 0;
    this.maxSeverity = null;
    this.lastAlert = null;
    this.historyLoaded = false;
    this.stick = true;
    this.build();
    this.transcript = new Transcript(this.els.transcript, this.parties, {
      maxLines: MAX_LIVE_LINES,
      onAlert: (a) => this.alert(a),
      onChange: () => scheduleScroll(this),
    });
  }

  build() {
    const headingId = `call-${this.number}-heading`;
    const els = {};
    els.title = h('span', { class: 'call-id', text: this.id });
    els.rule = h('span', { class: 'rule-name' });
    els.labels = h('ul', { class: 'labels', 'aria-label': 'Labels' });
    els.duration = h('span', { class: 'duration', text: '0:00' });
    els.state = h('span', { class: 'call-state', dataset: { state: 'live' }, text: 'Live' });
    els.parties = h('ul', { class: 'parties', 'aria-label': 'Parties' });
    els.alert = h('p', { class: 'call-alert', hidden: true });
    els.transcript = h('ol', {
      class: 'transcript',
      'aria-live': 'polite',
      'aria-relevant': 'additions',
      'aria-label': `Transcript of call ${this.id}`,
      tabindex: '0',
    });
    els.transcript.addEventListener(
      'scroll',
      () => {
        const t = els.transcript;
        this.stick = t.scrollTop + t.clientHeight >= t.scrollHeight - 24;
      },
      { passive: true },
    );
    els.root = h(
      'article',
      { class: 'call', 'aria-labelledby': headingId, dataset: { callId: this.id, state: 'live' } },
      h(
        'header',
        { class: 'call-head' },
        h('h3', { id: headingId, class: 'call-title' }, els.title),
        h(
          'dl',
          { class: 'call-meta' },
          h('div', {}, h('dt', { text: 'Rule' }), h('dd', {}, els.rule)),
          h('div', {}, h('dt', { text: 'Duration' }), h('dd', {}, els.duration)),
          h('div', {}, h('dt', { text: 'State' }), h('dd', {}, els.state)),
        ),
        els.labels,
        els.parties,
        els.alert,
      ),
      els.transcript,
    );
    this.els = els;
  }

  /** What `call.started`, `hello` or the history API say about the call. */
  describe({ rule, labels, parties, startedAt }) {
    if (typeof rule === 'string') this.rule = rule;
    if (Array.isArray(labels)) this.labels = labels.map(str);
    if (Array.isArray(parties)) for (const p of parties) if (p && typeof p.name === 'string') this.parties.get(p.name, p.label);
    if (num(startedAt) !== undefined) this.startedAt = startedAt;
    this.renderHead();
  }

  renderHead() {
    const { els } = this;
    els.rule.textContent = this.rule ?? '—';
    els.labels.replaceChildren(...this.labels.map((l) => h('li', { class: 'label', text: l })));
    els.labels.hidden = this.labels.length === 0;
    els.parties.replaceChildren(...[...this.parties.byName.values()].map(partyChip));
    this.renderState();
    this.tick(Date.now());
  }

  renderState() {
    let state = 'live';
    let text = 'Live';
    if (this.ended) {
      state = 'ended';
      text = this.endReason ? `Ended (${endText(this.endReason, this.endStatus)})` : 'Ended';
    } else {
      const holding = Object.entries(this.hold)
        .filter(([, v]) => v)
        .map(([side]) => this.parties.display(side));
      if (holding.length > 0) {
        state = 'hold';
        text = `On hold by ${holding.join(' and ')}`;
      }
    }
    this.els.state.dataset.state = state;
    this.els.state.textContent = text;
    this.els.root.dataset.state = state;
  }

  /** Updates the running duration (every second). */
  tick(now) {
    const ms = this.ended && this.durationMs !== undefined ? this.durationMs : this.startedAt !== undefined ? now - this.startedAt : undefined;
    const text = ms === undefined ? '—' : clock(ms);
    if (this.els.duration.textContent !== text) this.els.duration.textContent = text;
  }

  alert(ev) {
    const severity = SEVERITY_RANK[ev.severity] ? ev.severity : 'info';
    this.alerts++;
    if (!this.maxSeverity || SEVERITY_RANK[severity] > SEVERITY_RANK[this.maxSeverity]) this.maxSeverity = severity;
    this.els.root.dataset.alert = this.maxSeverity;
    const matched = str(ev.text).trim();
    const el = this.els.alert;
    el.hidden = false;
    el.className = `call-alert severity-${severity}`;
    el.dataset.severity = severity;
    el.replaceChildren(
      h('span', { class: 'severity', text: SEVERITY_TEXT[severity] }),
      ' ',
      h('span', { class: 'rule', text: str(ev.rule) }),
      ` — ${this.parties.display(str(ev.party))}`,
      matched ? ` “${matched}”` : '',
      this.alerts > 1 ? h('span', { class: 'alert-count', text: ` (${this.alerts} alerts)` }) : '',
    );
  }

  /** Applies one event (live, replayed or from the history API). */
  apply(ev) {
    switch (ev.type) {
      case 'call.started':
        this.describe({ rule: ev.rule, labels: ev.labels, parties: ev.parties, startedAt: this.startedAt ?? ev.at });
        break;
      case 'call.updated':
        if (ev.by === 'caller' || ev.by === 'callee') this.hold[ev.by] = ev.hold === true;
        if (Array.isArray(ev.participants)) {
          for (const p of ev.participants) {
            if (!p || typeof p.party !== 'string') continue;
            this.parties.get(p.party).detail = [str(p.name), str(p.aor)].filter(Boolean).join(' ');
          }
          this.els.parties.replaceChildren(...[...this.parties.byName.values()].map(partyChip));
        }
        this.renderState();
        break;
      case 'call.ended':
        this.end(ev);
        break;
      case 'transcript.partial':
        if (!this.ended) this.withParty(ev, () => this.transcript.partial(ev));
        break;
      case 'transcript.final':
        this.withParty(ev, () => this.transcript.final(ev));
        break;
      case 'translation':
      case 'alert':
        this.withParty(ev, () => this.transcript.annotate(ev));
        break;
      case 'speech.started':
      case 'speech.failed': {
        const at = num(ev.at);
        this.transcript.speech(ev, at !== undefined && this.startedAt !== undefined ? Math.max(0, at - this.startedAt) : 0);
        break;
      }
      case 'dtmf': {
        const at = num(ev.at);
        const sortMs = at !== undefined && this.startedAt !== undefined ? Math.max(0, at - this.startedAt) : 0;
        this.withParty(ev, () => this.transcript.dtmf(ev, sortMs));
        break;
      }
      case 'transcript.ended':
        this.transcript.dropPartials();
        break;
      default:
        break;
    }
  }

  /** Runs `fn`, then shows the event's party if it was not known (a SIPREC party joining). */
  withParty(ev, fn) {
    const known = this.parties.byName.has(ev.party);
    fn();
    if (!known && typeof ev.party === 'string') this.els.parties.replaceChildren(...[...this.parties.byName.values()].map(partyChip));
  }

  end(ev) {
    if (this.ended) return;
    this.ended = true;
    this.endReason = ev ? str(ev.reason) || null : null;
    this.endStatus = ev ? num(ev.sipStatus) ?? null : null;
    if (ev && num(ev.durationMs) !== undefined) this.durationMs = ev.durationMs;
    else if (this.startedAt !== undefined) this.durationMs = Date.now() - this.startedAt;
    this.transcript.dropPartials();
    this.renderState();
    this.tick(Date.now());
    updateLiveCount();
    markHistoryStale();
    this.removal = setTimeout(() => {
      this.els.root.classList.add('leaving');
      this.removal = setTimeout(() => removeCall(this), FADE_MS);
    }, ENDED_LINGER_MS);
  }
}

function liveCall(callId) {
  let call = calls.get(callId);
  if (!call) {
    call = new LiveCall(callId);
    calls.set(callId, call);
    gone.delete(callId);
    $('live-calls').prepend(call.els.root);
    updateLiveCount();
  }
  return call;
}

function removeCall(call) {
  clearTimeout(call.removal);
  const hadFocus = call.els.root.contains(document.activeElement);
  call.els.root.remove();
  calls.delete(call.id);
  gone.add(call.id);
  if (gone.size > 5000) gone.delete(gone.values().next().value);
  toScroll.delete(call);
  updateLiveCount();
  if (hadFocus) $('live-heading').focus();
}

function updateLiveCount() {
  let live = 0;
  for (const c of calls.values()) if (!c.ended) live++;
  $('live-count').textContent = String(live);
  $('live-empty').hidden = calls.size > 0;
}

setInterval(() => {
  const now = Date.now();
  for (const c of calls.values()) if (!c.ended) c.tick(now);
}, 1000);

// Stored transcripts of calls already live when the page connects, a few at a time.
const historyQueue = [];
let historyFetches = 0;

function loadStored(call) {
  if (call.historyLoaded || call.historyQueued) return;
  call.historyQueued = true;
  historyQueue.push(call);
  pumpHistory();
}

function pumpHistory() {
  while (historyFetches < HISTORY_FETCHES && historyQueue.length > 0) {
    const call = historyQueue.shift();
    historyFetches++;
    api(callPath(call.id))
      .then((body) => {
        if (calls.get(call.id) !== call) return;
        const c = body.call ?? {};
        call.describe({ rule: c.rule, labels: c.labels, parties: c.parties, startedAt: c.startedAt });
        // Not feed events: they do not move the resume cursor.
        for (const ev of body.events ?? []) applyToCall(call, ev);
        call.historyLoaded = true;
      })
      .catch((err) => {
        if (token && !(err instanceof ApiError && err.status === 404)) setConnection('warning', `Could not load call ${call.id}: ${err.message}`);
      })
      .finally(() => {
        call.historyQueued = false;
        historyFetches--;
        pumpHistory();
      });
  }
}

function applyToCall(call, ev) {
  if (typeof ev.seq !== 'number') return;
  if (call.seen.has(ev.seq)) return;
  // Partials are not stored and never replayed: no need to remember their numbers.
  if (ev.type !== 'transcript.partial') call.seen.add(ev.seq);
  call.apply(ev);
}

/** One call event from the feed. */
function onFeedEvent(ev) {
  if (typeof ev.callId !== 'string' || typeof ev.seq !== 'number') return;
  if (typeof ev.cursor === 'number' && (feed.cursor === null || ev.cursor > feed.cursor)) feed.cursor = ev.cursor;
  let call = calls.get(ev.callId);
  if (!call) {
    // Nothing to show for the end of a call this page never saw (or already took down).
    if (gone.has(ev.callId) || ev.type === 'call.ended' || ev.type === 'transcript.ended') return;
    call = liveCall(ev.callId);
    if (ev.type !== 'call.started') loadStored(call);
  }
  applyToCall(call, ev);
}

// ---------------------------------------------------------------------------------------------
// The feed connection

const feed = {
  ws: null,
  /** Store cursor of the last event seen; null before the first hello. */
  cursor: null,
  backoff: BACKOFF_MIN_MS,
  retry: null,
  ping: null,
  lastMessageAt: 0,
  /** Calls this page showed as live before a reconnect's hello did not list them. */
  stale: null,
  /** After REPLAY_TOO_FAR: reload every live call's stored transcript. */
  reload: false,
  stopped: true,
};

function connect() {
  clearTimeout(feed.retry);
  feed.retry = null;
  if (!token) return;
  feed.stopped = false;
  const q = new URLSearchParams({ token });
  const resuming = feed.cursor !== null;
  if (resuming) q.set('cursor', String(feed.cursor));
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/v1/supervisor?${q}`);
  feed.ws = ws;
  let greeted = false;
  setConnection('connecting', resuming ? 'Reconnecting…' : 'Connecting…');
  ws.onmessage = (m) => {
    if (feed.ws !== ws) return;
    feed.lastMessageAt = Date.now();
    let msg;
    try {
      msg = JSON.parse(m.data);
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;
    switch (msg.type) {
      case 'hello':
        greeted = true;
        onHello(msg, resuming);
        break;
      case 'replay.done':
        if (typeof msg.cursor === 'number' && (feed.cursor === null || msg.cursor > feed.cursor)) feed.cursor = msg.cursor;
        settleStale();
        setConnection('connected', `Connected as ${str(feed.principal)}`);
        break;
      case 'pong':
        break;
      case 'error':
        if (msg.code === 'REPLAY_TOO_FAR') {
          // Too much was missed to replay: start afresh from the history API.
          feed.cursor = null;
          feed.reload = true;
        }
        setConnection('warning', str(msg.message) || str(msg.code) || 'Feed error');
        break;
      default:
        onFeedEvent(msg);
    }
  };
  ws.onclose = (e) => {
    if (feed.ws !== ws) return;
    feed.ws = null;
    clearInterval(feed.ping);
    if (feed.stopped) return;
    if (!greeted) {
      // Refused before the upgrade (the browser hides the status) or unreachable: ask the API why.
      probe();
      return;
    }
    const why = e.code === 1001 ? 'The gateway is restarting.' : e.code === 4008 ? 'Fell behind.' : 'Connection lost.';
    if (e.code === 4008) feed.backoff = BACKOFF_MIN_MS;
    scheduleReconnect(why);
  };
}

function onHello(msg, resuming) {
  feed.backoff = BACKOFF_MIN_MS;
  feed.principal = msg.principal;
  if (feed.cursor === null && typeof msg.cursor === 'number') feed.cursor = msg.cursor;
  clearInterval(feed.ping);
  feed.ping = setInterval(() => {
    const ws = feed.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - feed.lastMessageAt > SILENCE_MS) {
      ws.close(4000, 'no answer');
      return;
    }
    ws.send(JSON.stringify({ type: 'ping' }));
  }, PING_MS);
  const listed = new Set();
  const reload = feed.reload;
  feed.reload = false;
  for (const c of Array.isArray(msg.calls) ? msg.calls : []) {
    if (!c || typeof c.callId !== 'string') continue;
    listed.add(c.callId);
    const known = calls.has(c.callId);
    const call = liveCall(c.callId);
    if (!known) call.describe({ rule: c.rule, labels: c.labels, parties: c.parties, startedAt: c.startedAt });
    if (!known || reload || !resuming) {
      if (reload) call.historyLoaded = false;
      loadStored(call);
    }
  }
  // Calls shown as live that this hello does not list ended while the page was away; a resume
  // replays their end, otherwise they are closed once the replay is done.
  feed.stale = [...calls.values()].filter((c) => !c.ended && !listed.has(c.id));
  if (resuming) setConnection('connecting', 'Catching up…');
  else {
    settleStale();
    setConnection('connected', `Connected as ${str(msg.principal)}`);
  }
}

function settleStale() {
  for (const c of feed.stale ?? []) if (!c.ended) c.end(null);
  feed.stale = null;
}

function scheduleReconnect(why) {
  const delay = feed.backoff;
  feed.backoff = Math.min(feed.backoff * 2, BACKOFF_MAX_MS);
  setConnection('disconnected', `${why} Reconnecting in ${Math.round(delay / 1000)} s…`);
  clearTimeout(feed.retry);
  feed.retry = setTimeout(connect, delay);
}

async function probe() {
  try {
    await api('/v1/calls?limit=1');
    scheduleReconnect('Could not connect to the live feed.');
  } catch (err) {
    if (!token) return; // 401: signed out
    if (err instanceof ApiError && err.status === 403) {
      setConnection('error', 'This page is not allowed to use the gateway (origin refused).');
      return;
    }
    scheduleReconnect('The gateway is unreachable.');
  }
}

function disconnect() {
  feed.stopped = true;
  clearTimeout(feed.retry);
  clearInterval(feed.ping);
  const ws = feed.ws;
  feed.ws = null;
  if (ws) ws.close(1000, 'signed out');
  feed.cursor = null;
}

// ---------------------------------------------------------------------------------------------
// History view

const historyState = { next: null, search: '', loaded: false, stale: false, loading: false, selected: null, generation: 0 };

function markHistoryStale() {
  historyState.stale = true;
}

/** How a call ended, for people: `bye-caller`, or `failed, SIP 486` for a call refused during set-up. */
function endText(reason, status) {
  const code = num(status);
  return code !== undefined ? `${reason}, SIP ${code}` : reason;
}

function historyItem(c) {
  const parties = new Parties();
  for (const p of Array.isArray(c.parties) ? c.parties : []) if (p && typeof p.name === 'string') parties.get(p.name, p.label);
  const facts = [
    c.rule ? `rule ${c.rule}` : null,
    c.live ? 'live now' : num(c.durationMs) !== undefined ? clock(c.durationMs) : null,
    !c.live && c.endReason ? endText(c.endReason, c.endStatus) : null,
  ].filter(Boolean);
  const button = h(
    'button',
    { type: 'button', class: 'history-item', dataset: { callId: c.id }, 'aria-controls': 'history-detail', 'aria-pressed': c.id === historyState.selected ? 'true' : 'false' },
    h('span', { class: 'history-id', text: c.id }),
    c.live ? h('span', { class: 'badge badge-live', text: 'Live' }) : null,
    num(c.startedAt) !== undefined ? h('span', { class: 'history-when' }, h('time', { datetime: new Date(c.startedAt).toISOString(), text: formatDate(c.startedAt) })) : null,
    h('span', { class: 'history-facts', text: facts.join(' · ') }),
    h(
      'span',
      { class: 'history-parties' },
      ...[...parties.byName.values()].map((p) => h('span', { class: `who ${p.cls}`, text: p.label ?? p.name })),
    ),
  );
  button.addEventListener('click', () => showCall(c.id));
  return h('li', {}, button);
}

async function loadHistory({ more = false } = {}) {
  if (!token) return;
  const generation = more ? historyState.generation : ++historyState.generation;
  const q = new URLSearchParams({ limit: String(HISTORY_PAGE) });
  if (historyState.search) q.set('search', historyState.search);
  if (more && historyState.next !== null) q.set('before', String(historyState.next));
  const list = $('history-list');
  const summary = $('history-summary');
  const button = $('load-more');
  historyState.loading = true;
  button.disabled = true;
  if (!more) summary.textContent = 'Loading…';
  try {
    const body = await api(`/v1/calls?${q}`);
    if (generation !== historyState.generation) return;
    const items = (Array.isArray(body.calls) ? body.calls : []).map(historyItem);
    if (more) list.append(...items);
    else list.replaceChildren(...items);
    historyState.next = typeof body.next === 'string' || typeof body.next === 'number' ? body.next : null;
    historyState.loaded = true;
    historyState.stale = false;
    const n = list.childElementCount;
    summary.textContent =
      n === 0
        ? historyState.search
          ? `No calls with “${historyState.search}” in their transcript.`
          : 'No calls stored yet.'
        : `${n} call${n === 1 ? '' : 's'}${historyState.search ? ` with “${historyState.search}”` : ''}${historyState.next !== null ? ', more below' : ''}.`;
    button.hidden = historyState.next === null;
    if (more && items[0]) items[0].querySelector('button').focus();
  } catch (err) {
    if (generation === historyState.generation) summary.textContent = `Could not load the history: ${err.message}`;
  } finally {
    historyState.loading = false;
    button.disabled = false;
  }
}

async function showCall(callId) {
  historyState.selected = callId;
  for (const b of document.querySelectorAll('.history-item')) b.setAttribute('aria-pressed', b.dataset.callId === callId ? 'true' : 'false');
  const detail = $('history-detail');
  detail.setAttribute('aria-busy', 'true');
  try {
    const body = await api(callPath(callId));
    if (historyState.selected !== callId) return;
    renderDetail(detail, body.call ?? { id: callId }, Array.isArray(body.events) ? body.events : []);
    detail.querySelector('h3').focus();
  } catch (err) {
    if (historyState.selected === callId) detail.replaceChildren(h('p', { class: 'form-error', role: 'alert', text: `Could not load call ${callId}: ${err.message}` }));
  } finally {
    detail.removeAttribute('aria-busy');
  }
}

function renderDetail(detail, c, events) {
  const parties = new Parties();
  for (const p of Array.isArray(c.parties) ? c.parties : []) if (p && typeof p.name === 'string') parties.get(p.name, p.label);
  const list = h('ol', { class: 'transcript transcript-static', 'aria-label': `Transcript of call ${c.id}`, tabindex: '0' });
  const transcript = new Transcript(list, parties, {});
  const started = num(c.startedAt);
  for (const ev of events) {
    switch (ev.type) {
      case 'transcript.final':
        transcript.final(ev);
        break;
      case 'translation':
      case 'alert':
        transcript.annotate(ev);
        break;
      case 'speech.started':
      case 'speech.failed':
        transcript.speech(ev, started !== undefined && num(ev.at) !== undefined ? Math.max(0, ev.at - started) : 0);
        break;
      case 'dtmf':
        transcript.dtmf(ev, started !== undefined && num(ev.at) !== undefined ? Math.max(0, ev.at - started) : 0);
        break;
      default:
        break;
    }
  }
  const exports = h(
    'ul',
    { class: 'exports', 'aria-label': 'Export' },
    ...EXPORTS.map(([format, name]) => {
      const a = h('a', { href: `${callPath(c.id)}/export?format=${format}`, download: `${c.id}.${format}`, dataset: { format }, text: name });
      a.addEventListener('click', (e) => {
        e.preventDefault();
        download(c.id, format, a);
      });
      return h('li', {}, a);
    }),
  );
  const facts = [
    ['Rule', c.rule ?? '—'],
    ['Labels', Array.isArray(c.labels) && c.labels.length > 0 ? c.labels.join(', ') : '—'],
    ['Started', formatDate(c.startedAt)],
    ['Duration', c.live ? 'in progress' : num(c.durationMs) !== undefined ? clock(c.durationMs) : '—'],
    ['Ended', c.live ? '—' : c.endReason ? endText(c.endReason, c.endStatus) : '—'],
    ...(c.endError && typeof c.endError.message === 'string' ? [['Why', c.endError.message]] : []),
  ];
  detail.replaceChildren(
    h('h3', { class: 'detail-heading', tabindex: '-1' }, 'Call ', h('span', { class: 'call-id', text: c.id })),
    h('dl', { class: 'call-meta' }, ...facts.map(([k, v]) => h('div', {}, h('dt', { text: k }), h('dd', { text: v })))),
    h('ul', { class: 'parties', 'aria-label': 'Parties' }, ...[...parties.byName.values()].map(partyChip)),
    h('div', { class: 'export-row' }, h('span', { class: 'export-title', text: 'Export:' }), exports),
    list.childElementCount > 0 ? list : h('p', { class: 'empty', text: 'No transcript was stored for this call.' }),
  );
}

/** Fetches an export with the bearer token and hands it to the browser as a download. */
async function download(callId, format, link) {
  link.setAttribute('aria-busy', 'true');
  try {
    const blob = await api(`${callPath(callId)}/export?format=${format}`, 'blob');
    const url = URL.createObjectURL(new Blob([blob], { type: blob.type || 'application/octet-stream' }));
    const a = h('a', { href: url, download: `${callId.replace(/[^A-Za-z0-9._-]/g, '_')}.${format}`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    $('history-summary').textContent = `Export failed: ${err.message}`;
  } finally {
    link.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------------
// Views, sign-in, start

let view = 'live';

function showView(name, { focus = false } = {}) {
  view = name;
  for (const b of document.querySelectorAll('.view-button')) {
    if (b.dataset.view === name) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
  $('live-view').hidden = name !== 'live';
  $('history-view').hidden = name !== 'history';
  if (name === 'history' && (!historyState.loaded || historyState.stale) && !historyState.loading) loadHistory();
  if (focus) $(name === 'live' ? 'live-heading' : 'history-heading').focus();
}

function showApp() {
  $('login').hidden = true;
  $('views').hidden = false;
  $('sign-out').hidden = false;
  showView(view);
}

function signOut(message) {
  disconnect();
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  for (const c of [...calls.values()]) removeCall(c);
  gone.clear();
  historyQueue.length = 0;
  historyState.loaded = false;
  historyState.selected = null;
  $('history-list').replaceChildren();
  $('history-detail').replaceChildren(h('p', { class: 'empty', text: 'Select a call to read its transcript.' }));
  $('views').hidden = true;
  $('sign-out').hidden = true;
  $('live-view').hidden = true;
  $('history-view').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message ?? '';
  setConnection('idle', 'Not connected');
  $('token-input').focus();
}

function start(t) {
  token = t;
  showApp();
  connect();
}

function init() {
  for (const b of document.querySelectorAll('.view-button')) b.addEventListener('click', () => showView(b.dataset.view, { focus: true }));
  for (const id of ['live-heading', 'history-heading']) $(id).setAttribute('tabindex', '-1');
  $('sign-out').addEventListener('click', () => signOut('Signed out.'));
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = $('token-input').value.trim();
    if (!value) return;
    $('token-input').value = '';
    sessionStorage.setItem(TOKEN_KEY, value);
    $('login-error').textContent = '';
    start(value);
  });
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    historyState.search = $('search-input').value.trim();
    loadHistory();
  });
  $('load-more').addEventListener('click', () => loadHistory({ more: true }));
  const t = readToken();
  if (t) start(t);
  else signOut();
}

init();
