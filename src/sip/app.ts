import type { Server, Socket } from 'node:net';
import Srf from 'drachtio-srf';
import type { CallSession } from '../call/call-session.js';
import { CalleeRejectedError, CallEndedError } from '../call/errors.js';
import type { RecordingOffer } from '../call/recording.js';
import type { CallRegistry } from '../call/registry.js';
import type { CallRule } from '../call/rule.js';
import { relayableProgress, type AnswerWarning, type CallEnding, type DialOptions, type InboundLeg, type OutboundDialer, type OutboundLeg } from '../call/signalling.js';
import type { SipConfig } from '../config/schema.js';
import { asWhisperlineError, WhisperlineError } from '../errors.js';
import { callLogger, type Logger } from '../log.js';
import type { InviteFacts } from './dialplan.js';
import type { DialplanStore } from './dialplan-store.js';
import { finalResponseFor, reasonPhrase, responseForError, warningHeader } from './errors.js';
import { parseSiprecOffer, toRecordingOffer, type SiprecInput, type SiprecOffer } from './siprec.js';

/**
 * `connecting` also while drachtio-srf retries after a lost connection; `listening` in outbound
 * mode while no drachtio-server is connected (it connects when it has a call to route);
 * `disconnected` once stopped.
 */
export type SipConnectionState = 'connecting' | 'listening' | 'connected' | 'disconnected';

export interface SipAppDeps {
  readonly config: SipConfig;
  readonly dialplans: DialplanStore;
  readonly registry: CallRegistry;
  /** Builds the session of an admitted call (the composition root supplies media and speech). */
  readonly createSession: (inbound: InboundLeg, rule: CallRule, dialer: OutboundDialer, recording: RecordingOffer | undefined, facts: InviteFacts) => CallSession;
  readonly logger: Logger;
}

/** The parts of drachtio-srf's objects used here (its bundled typings are partly wrong). */
type Req = Srf.SrfRequest;
type Res = Srf.SrfResponse;

/**
 * The SIP edge: a drachtio-srf application. It turns INVITEs into call sessions through the
 * dialplan, answers OPTIONS, and maps refusals to SIP statuses: 503 + Retry-After when full or
 * draining, the dialplan's status when no rule matches or a rule rejects, 488 with a Warning for a
 * SIPREC body it cannot use. Everything after admission is the CallSession's; how a session's
 * set-up ended becomes the caller's final response in `sip/errors.ts`.
 */
export class SipApp {
  private readonly srf = new Srf();
  private stateValue: SipConnectionState = 'connecting';
  private readonly log: Logger;
  /** Outbound mode: the listener drachtio-server connects to, and its connections. */
  private listener: Server | undefined;
  private readonly drachtioSockets = new Set<Socket>();
  private stopping: Promise<void> | undefined;

  constructor(private readonly deps: SipAppDeps) {
    this.log = deps.logger.child({ component: 'sip' });
  }

  get connection(): SipConnectionState {
    return this.stateValue;
  }

  /** Connects to drachtio-server (inbound mode, reconnecting by itself) or listens for it (outbound). */
  start(): void {
    const { config } = this.deps;
    const srf = this.srf;
    // drachtio-srf retries every few seconds while drachtio-server is away: say so once, not each time.
    let quiet = false;
    srf.on('connect', (err, hostport) => {
      if (err) return;
      quiet = false;
      this.stateValue = 'connected';
      this.log.info({ hostport }, 'connected to drachtio-server');
    });
    // drachtio-srf emits 'close' when the connection drops (its typings say 'disconnect'), then
    // 'reconnecting' while it retries.
    (srf as unknown as { on(event: 'close', listener: () => void): void }).on('close', () => {
      // After stop(), or a failed attempt while connecting: drachtio-srf keeps retrying.
      if (this.stateValue !== 'connected') return;
      this.stateValue = 'connecting';
      // The dialogs lived in drachtio-server: without it the gateway can no longer end them, so
      // their media and transcripts are closed now (rtpengine calls deleted, finals emitted).
      this.log.warn({ calls: this.deps.registry.size }, 'disconnected from drachtio-server; ending its calls and reconnecting');
      void this.deps.registry.closeAll('disconnect');
    });
    srf.on('error', (err) => {
      if (quiet) return this.log.debug({ err: err.message }, 'drachtio connection error');
      quiet = true;
      this.log.warn({ err: err.message }, 'drachtio connection error; retrying');
    });
    // OPTIONS pings (from SBCs and drachtio itself) are answered while the gateway is up.
    srf.use('options', (_req: Req, res: Res) => res.send(200));
    srf.invite((req: Req, res: Res) => void this.onInvite(req, res));
    if (config.mode === 'inbound') {
      // drachtio-srf's connect() returns the app (not a promise) and retries on its own.
      srf.connect({ host: config.drachtioHost, port: config.drachtioPort, secret: config.drachtioSecret });
    } else {
      // drachtio-srf's listen() returns its net.Server; without `host` it binds every interface.
      const listener = srf.listen({ host: config.listenHost, port: config.listenPort, secret: config.drachtioSecret }) as unknown as Server;
      this.listener = listener;
      this.stateValue = 'listening';
      listener.on('connection', (socket: Socket) => {
        this.drachtioSockets.add(socket);
        this.stateValue = 'connected';
        socket.once('close', () => {
          this.drachtioSockets.delete(socket);
          if (this.drachtioSockets.size === 0 && this.stateValue === 'connected') this.stateValue = 'listening';
        });
      });
      listener.once('listening', () => this.log.info({ address: `${config.listenHost}:${config.listenPort}` }, 'listening for drachtio-server (outbound mode)'));
    }
  }

  /** Stops taking calls, drains the live ones, disconnects. */
  stop(): Promise<void> {
    return (this.stopping ??= this.stopOnce());
  }

  private async stopOnce(): Promise<void> {
    await this.deps.registry.drain(this.deps.config.drainGraceMs);
    this.stateValue = 'disconnected';
    const listener = this.listener;
    if (listener) {
      // Outbound mode: the listener and drachtio-server's connections to it would keep the
      // process alive (server.close() waits for every connection to end).
      this.listener = undefined;
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      for (const socket of this.drachtioSockets) socket.destroy();
      this.drachtioSockets.clear();
      await closed;
      return;
    }
    try {
      this.srf.disconnect();
    } catch {
      // Not connected (drachtio-server gone): nothing to disconnect.
    }
    this.cancelReconnect();
  }

  /**
   * drachtio-srf has no way to cancel a reconnect it has scheduled: while drachtio-server is
   * unreachable its retry timer (backing off to tens of seconds) outlives stop() and keeps the
   * process alive after a SIGTERM. Its wire protocol object is reached through internals; if
   * they change, this does nothing and the process merely exits at the next retry.
   */
  private cancelReconnect(): void {
    type Wire = { closing?: boolean; reconnectVars?: { retryTimer?: NodeJS.Timeout | null } };
    const wp = (this.srf as unknown as { _app?: { client?: { wp?: Wire } } })._app?.client?.wp;
    if (!wp) return;
    wp.closing = true;
    if (wp.reconnectVars?.retryTimer) {
      clearTimeout(wp.reconnectVars.retryTimer);
      wp.reconnectVars.retryTimer = null;
    }
  }

  private async onInvite(req: Req, res: Res): Promise<void> {
    const callId = req.get('Call-ID');
    const log = callLogger(this.log, callId);
    const admission = this.deps.registry.admit();
    if (!admission.ok) {
      log.info({ status: admission.status, reason: admission.reason }, 'INVITE refused');
      res.send(admission.status, admission.reason, { headers: { 'Retry-After': String(admission.retryAfterSec) } });
      return;
    }
    const facts = inviteFacts(req);
    const decision = this.deps.dialplans.current().decide(facts);
    if (decision.kind === 'no-match') {
      log.info({ requestUser: facts.requestUser, status: decision.status }, 'no dialplan rule matches');
      res.send(decision.status, decision.reason, {});
      return;
    }
    if (decision.kind === 'reject') {
      const { status, reason } = decision.rule;
      res.send(status, reason ?? reasonPhrase(status), {});
      return;
    }
    const { rule } = decision;
    let siprec: SiprecOffer | undefined;
    if (rule.action === 'siprec') {
      try {
        siprec = parseSiprecOffer(recordingInput(req));
      } catch (err) {
        const refusal = responseForError(asWhisperlineError(err));
        log.info({ err: (err as Error).message, status: refusal.status }, 'unusable SIPREC INVITE');
        res.send(refusal.status, refusal.reason, { headers: { ...refusal.headers } });
        return;
      }
      if (siprec.metadataError) log.warn({ metadataError: siprec.metadataError }, 'SIPREC metadata unusable; streams labelled by order');
    }
    // The legs report BYEs to the session, which exists only once they do: a holder breaks the cycle.
    const holder: { session?: CallSession; recording?: SiprecOffer } = { ...(siprec ? { recording: siprec } : {}) };
    const side = (who: 'caller' | 'callee'): LegEvents => ({
      bye: () => void holder.session?.remoteBye(who),
      reinvite: async (req) => {
        const session = holder.session!;
        if (rule.action !== 'siprec') return session.reinvite(who, sdpOf(req));
        // A recording client's update: new metadata is read against the recording so far.
        const update = parseSiprecOffer(recordingInput(req), holder.recording ? { previous: holder.recording } : {});
        holder.recording = update;
        return session.reinvite(who, update.sdp, toRecordingOffer(update));
      },
      refreshOffer: () => holder.session!.refreshOffer(who),
      adopt: (sdp) => holder.session!.adoptAnswer(who, sdp),
    });
    const inbound = new DrachtioInboundLeg(this.srf, req, res, side('caller'), facts, log, siprec?.sdp);
    const dialer = new DrachtioDialer(this.srf, side('callee'), log);
    let session: CallSession;
    try {
      session = this.deps.createSession(inbound, rule, dialer, siprec ? toRecordingOffer(siprec) : undefined, facts);
    } catch (err) {
      const refusal = responseForError(asWhisperlineError(err));
      log.error({ err }, 'call session could not be created');
      res.send(refusal.status, refusal.reason, { headers: { ...refusal.headers } });
      return;
    }
    holder.session = session;
    this.deps.registry.add(session);
    req.on('cancel', () => void session.cancel());
    try {
      await session.start();
    } catch (err) {
      log.debug({ code: (err as WhisperlineError).code }, 'call did not start');
    }
  }
}

/** What the dialplan sees of an INVITE. */
export function inviteFacts(req: Req): InviteFacts {
  const user = Srf.parseUri(req.uri)?.user ?? '';
  const contentType = (req.get('Content-Type') ?? '').toLowerCase();
  const headers = Object.fromEntries(Object.entries(req.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const siprec = contentType.includes('multipart/mixed') && (req.body ?? '').includes('application/rs-metadata+xml');
  return {
    requestUri: req.uri,
    requestUser: user,
    from: req.get('From') ?? '',
    to: req.get('To') ?? '',
    headers,
    source: req.source_address,
    kind: siprec || /\bsiprec\b/i.test(req.get('Require') ?? '') ? 'siprec' : 'plain',
  };
}

/**
 * A SIPREC request's body for the parser: the raw multipart body with its Content-Type when
 * drachtio passes it whole (our parser knows the field's variants), else drachtio's split parts.
 */
function recordingInput(req: Req): SiprecInput {
  const contentType = req.get('Content-Type') ?? '';
  if (!/multipart\//i.test(contentType) || (/boundary=/i.test(contentType) && (req.body ?? '').includes('--'))) {
    return { contentType, body: req.body ?? '' };
  }
  return { parts: (req.payload ?? []).map((p) => ({ type: p.type ?? '', content: p.content ?? '' })) };
}

/** The SDP of a request: its body, or the SDP part of a multipart (SIPREC) body. */
function sdpOf(req: Req): string {
  if (/multipart\//i.test(req.get('Content-Type') ?? '')) {
    try {
      return parseSiprecOffer(recordingInput(req)).sdp;
    } catch {
      // not a recording body: fall through to the raw body
    }
  }
  return req.body;
}

/** What a dialog reports to its call session. */
interface LegEvents {
  bye(): void;
  /** A re-INVITE or UPDATE with an offer; resolves with the SDP answer to send in the 200 OK. */
  reinvite(req: Req): Promise<string>;
  /** The offer for a re-INVITE without SDP: the SDP last sent to this side. */
  refreshOffer(): string;
  /** This side's answer (from the ACK) to `refreshOffer`'s offer. */
  adopt(sdp: string): Promise<void>;
}

/** Whether a request carries a body (an offer, for INVITE and UPDATE). */
const hasBody = (req: Req): boolean => (req.body ?? '').trim() !== '';

/**
 * Routes a dialog's BYE, re-INVITEs and UPDATEs to the session:
 * - a re-INVITE or UPDATE with SDP is an offer, renegotiated and answered in the 200 OK;
 * - a re-INVITE without SDP (a session refresh, RFC 3261 §14.2, RFC 4028) is answered with the
 *   gateway's current offer, and the answer in its ACK is applied when it changed anything;
 * - an UPDATE without SDP (an RFC 4028 refresh) is answered 200 without a body.
 * A failed renegotiation gets the mapped error response.
 */
function watchDialog(dialog: Srf.Dialog, events: LegEvents, log: Logger): void {
  const refuse = (res: Res, what: string, err: unknown): void => {
    const cause = asWhisperlineError(err);
    const refusal = responseForError(cause);
    log.info({ code: cause.code, err: cause.message, status: refusal.status }, `${what} refused`);
    res.send(refusal.status, refusal.reason, { headers: { ...refusal.headers } });
  };
  const offered = (what: string) => (req: Req, res: Res) => {
    events.reinvite(req).then(
      (sdp) => res.send(200, { body: sdp, headers: { 'Content-Type': 'application/sdp' } }),
      (err: unknown) => refuse(res, what, err),
    );
  };
  const onReinvite = offered('re-INVITE');
  const onUpdate = offered('UPDATE');
  dialog.on('destroy', () => events.bye());
  dialog.on('modify', (req: Req, res: Res) => {
    if (hasBody(req)) return onReinvite(req, res);
    let offer: string;
    try {
      offer = events.refreshOffer();
    } catch (err) {
      return refuse(res, 're-INVITE without SDP', err);
    }
    // drachtio-srf records the ACK's body as the dialog's remote SDP before it emits 'ack'.
    onceAck(dialog, (ack) => {
      const answer = ackAnswer(ack);
      if (answer === undefined) return log.info('the ACK of a refresh carried no SDP answer; the media stays as it was');
      events.adopt(answer).catch((err: unknown) => log.warn({ err: asWhisperlineError(err).message }, 'the answer in a refresh ACK could not be applied'));
    });
    res.send(200, { body: offer, headers: { 'Content-Type': 'application/sdp' } });
  });
  (dialog as unknown as { on(event: 'update', listener: (req: Req, res: Res) => void): void }).on('update', (req, res) => {
    if (hasBody(req)) return onUpdate(req, res);
    res.send(200);
  });
}

/** The dialog's next ACK (drachtio-srf emits the ACK request; its typings say a response). */
function onceAck(dialog: Srf.Dialog, listener: (ack: Req) => void): void {
  (dialog as unknown as { once(event: 'ack', listener: (ack: Req) => void): void }).once('ack', listener);
}

/** The SDP answer an ACK carries (the SDP part of a multipart body), if any. */
function ackAnswer(ack: Req): string | undefined {
  if (!hasBody(ack)) return undefined;
  return sdpOf(ack);
}

/** A failure of the SIP stack on an established or forming dialog, as a typed error. */
function signallingFailed(what: string, err: unknown): WhisperlineError {
  if (err instanceof WhisperlineError) return err;
  return new WhisperlineError('SIGNALLING_FAILED', `${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** The caller's dialog through drachtio. */
class DrachtioInboundLeg implements InboundLeg {
  readonly callId: string;
  readonly fromTag: string;
  readonly offer: string | undefined;
  readonly from: string;
  readonly to: string;
  readonly requestUri: string;
  private dialog: Srf.Dialog | undefined;

  constructor(
    private readonly srf: Srf,
    private readonly req: Req,
    private readonly res: Res,
    private readonly events: LegEvents,
    facts: InviteFacts,
    private readonly log: Logger,
    /** The SDP part of a multipart (SIPREC) INVITE; otherwise the body is the SDP. */
    sdp?: string,
  ) {
    this.callId = req.get('Call-ID');
    this.fromTag = String(req.getParsedHeader('From').params?.tag ?? '');
    // No body at all: a delayed offer, the gateway offers in its 200 OK.
    this.offer = sdp ?? (hasBody(req) ? req.body : undefined);
    this.from = facts.from;
    this.to = facts.to;
    this.requestUri = facts.requestUri;
  }

  async answer(sdp: string, options: { readonly warnings?: readonly AnswerWarning[] } = {}): Promise<void> {
    const warnings = options.warnings ?? [];
    try {
      this.dialog = await this.srf.createUAS(this.req, this.res, {
        localSdp: sdp,
        ...(warnings.length > 0 ? { headers: { Warning: warnings.map((w) => warningHeader(w.code, w.text)).join(', ') } } : {}),
      });
    } catch (err) {
      // The caller's CANCEL won the race: drachtio answered it 487 and refused the 200 OK.
      if (err instanceof SipError && err.status === 487) throw new CallEndedError(this.callId, 'answering (cancelled)', 'cancel');
      throw signallingFailed('the 200 OK to the caller', err);
    }
    watchDialog(this.dialog, this.events, this.log);
  }

  /** The ACK of a 2xx to an INVITE comes within 64*T1 (RFC 3261 §13.3.1.4), or the dialog is to be ended. */
  private static readonly ACK_TIMEOUT_MS = 32_000;

  async answerWithOffer(sdp: string, options: { readonly warnings?: readonly AnswerWarning[] } = {}): Promise<string> {
    await this.answer(sdp, options);
    const dialog = this.dialog!;
    const ack = await new Promise<Req>((resolve, reject) => {
      const timer = setTimeout(() => reject(new WhisperlineError('SIGNALLING_FAILED', `no ACK to the 200 OK within ${DrachtioInboundLeg.ACK_TIMEOUT_MS / 1000} s`)), DrachtioInboundLeg.ACK_TIMEOUT_MS);
      onceAck(dialog, (req) => {
        clearTimeout(timer);
        resolve(req);
      });
      dialog.once('destroy', () => {
        clearTimeout(timer);
        reject(new CallEndedError(this.callId, 'waiting for the ACK (BYE)', 'bye-caller'));
      });
    });
    const answer = ackAnswer(ack);
    if (answer === undefined) throw new WhisperlineError('SDP_INVALID', 'the ACK carried no SDP answer to the offer in the 200 OK (RFC 3261 §13.2.1)');
    return answer;
  }

  async progress(status: 180 | 183): Promise<void> {
    if (!this.res.finalResponseSent) this.res.send(status, status === 180 ? 'Ringing' : 'Session Progress', {});
  }

  async modify(offer: string): Promise<string> {
    if (!this.dialog) throw new WhisperlineError('CALL_STATE', 're-INVITE towards the caller before the call was answered');
    try {
      return await this.dialog.modify(offer);
    } catch (err) {
      throw signallingFailed('the re-INVITE to the caller', err);
    }
  }

  async reject(ending: CallEnding): Promise<number | undefined> {
    if (this.res.finalResponseSent) return undefined;
    const response = finalResponseFor(ending);
    if (!response) return undefined;
    this.res.send(response.status, response.reason, { headers: { ...response.headers } });
    return response.status;
  }

  async bye(): Promise<void> {
    // Awaited: with drachtio-server gone the BYE cannot be sent and destroy() rejects, which the
    // session's clean-up step logs; not awaited, it was an unhandled rejection.
    try {
      await this.dialog?.destroy();
    } catch (err) {
      throw signallingFailed('the BYE to the caller', err);
    }
  }
}

/** drachtio-srf's error for a non-2xx final response (its typings leave it out). */
const SipError = (Srf as unknown as { SipError: abstract new (...args: never[]) => Error & { status: number; reason?: string } }).SipError;

/** The B2BUA's outbound leg through drachtio. */
class DrachtioDialer implements OutboundDialer {
  constructor(
    private readonly srf: Srf,
    private readonly events: LegEvents,
    private readonly log: Logger,
  ) {}

  async dial(target: string, offer: string, inbound: InboundLeg, signal: AbortSignal, options: DialOptions = {}): Promise<OutboundLeg> {
    let invite: Req | undefined;
    const cancel = (): void => invite?.cancel(() => undefined);
    signal.addEventListener('abort', cancel, { once: true });
    let dialog: Srf.Dialog;
    try {
      dialog = await this.srf.createUAC(
        target,
        {
          localSdp: offer,
          headers: { ...options.headers, 'X-Whisperline-Call-ID': inbound.callId },
          ...(options.callingNumber !== undefined ? { callingNumber: options.callingNumber } : {}),
        },
        {
          // drachtio-srf calls this with (err, req), whatever its typings say.
          cbRequest: ((err: unknown, req?: Req) => {
            if (err || !req) return;
            invite = req;
            if (signal.aborted) cancel();
          }) as unknown as (req: Req) => void,
          // The caller hears the agent's phone ring.
          cbProvisional: (res) => {
            if (options.relayProgress === false) return;
            const status = relayableProgress(res.status);
            if (status) void inbound.progress(status).catch(() => undefined);
          },
        },
      );
    } catch (err) {
      // drachtio-srf's SipError: the callee's final response, relayed to the caller by the session's ending.
      if (err instanceof SipError) throw new CalleeRejectedError(err.status, err.reason ?? reasonPhrase(err.status), { cause: err });
      throw new WhisperlineError('CALLEE_UNREACHABLE', `the INVITE to ${target} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    } finally {
      signal.removeEventListener('abort', cancel);
    }
    watchDialog(dialog, this.events, this.log);
    return {
      toTag: dialog.sip.remoteTag,
      answer: dialog.remote.sdp,
      bye: async () => {
        try {
          await dialog.destroy();
        } catch (err) {
          throw signallingFailed('the BYE to the callee', err);
        }
      },
      modify: async (sdp) => {
        try {
          return await dialog.modify(sdp);
        } catch (err) {
          throw signallingFailed('the re-INVITE to the callee', err);
        }
      },
    };
  }
}
