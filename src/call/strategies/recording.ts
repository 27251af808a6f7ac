import { randomBytes } from 'node:crypto';
import { RecorderLeg } from '../../media/local-legs.js';
import { decodableEverywhere, sameSessionVersion, withOfferedLabels } from '../../media/sdp.js';
import type { RecordingOffer } from '../recording.js';
import type { CallContext, CallStrategy, ConnectedCall, Renegotiation, Side } from '../strategy.js';
import { answerCaller, familyOf } from './common.js';

/**
 * `siprec` rules: the gateway is the recording server. rtpengine anchors every recorded stream
 * (transcoded to `transcodeTo` when the gateway does not decode the offered codecs); the
 * gateway's leg receives each stream on its own party socket, so each stream is one party, named
 * by the recording offer. Nothing plays into a recording.
 */
export class RecordingStrategy implements CallStrategy {
  constructor(
    private readonly offer: RecordingOffer,
    private readonly transcodeTo: 'PCMU' | 'opus',
  ) {}

  async connect(ctx: CallContext): Promise<ConnectedCall> {
    const { inbound, anchor } = ctx;
    const localTag = `wl-${randomBytes(4).toString('hex')}`;
    const sdp = this.offer.sdp;
    const offer = await anchor.offer({ fromTag: inbound.fromTag, sdp, initial: true, towards: familyOf(ctx.receiver.address), ...(decodableEverywhere(sdp) ? {} : { transcodeTo: this.transcodeTo }) });
    ctx.checkOpen('anchoring');
    const recorder = await RecorderLeg.open(ctx.receiver, offer, this.offer.streams, (party) => ctx.media.sinkFor(party));
    ctx.media.adoptRecorder(recorder);
    const answer = recorder.answer(offer);
    const toSrc = withOfferedLabels(await anchor.answer({ fromTag: inbound.fromTag, toTag: localTag, sdp: answer.sdp }), sdp);
    ctx.checkOpen('answering');
    // Metadata that could not be used: the recording goes on with positional names, and says so.
    const warning = this.offer.metadataWarning;
    await answerCaller(ctx, toSrc, warning !== undefined ? [{ code: 399, text: `${warning}; streams named by position` }] : []);
    return new RecordedCall(ctx, recorder, localTag, this.offer.metadataWarning, { towards: toSrc, from: sdp });
  }
}

class RecordedCall implements ConnectedCall {
  readonly playbackTags = {};
  readonly parties: readonly string[];
  readonly channels: readonly [string | undefined, string | undefined];

  constructor(
    private readonly ctx: CallContext,
    private readonly recorder: RecorderLeg,
    private readonly localTag: string,
    readonly warning: string | undefined,
    /** The SDP last sent to the recording client, and the client's own latest. */
    private readonly sdp: { towards: string; from: string },
  ) {
    this.parties = recorder.parties;
    this.channels = [recorder.parties[0], recorder.parties[1]];
  }

  /**
   * A recording client's re-INVITE (hold with `a=inactive`, resume, updated metadata): the same
   * sockets answer the new offer. Parties keep their names for the whole call (transcripts stay
   * attributable); who sends each stream now is reported with the update.
   */
  async reinvite(_from: 'caller' | 'callee', offerSdp: string, update?: RecordingOffer): Promise<Renegotiation> {
    const { anchor, inbound } = this.ctx;
    const offer = await anchor.offer({ fromTag: inbound.fromTag, toTag: this.localTag, sdp: offerSdp, initial: false, towards: familyOf(this.ctx.receiver.address) });
    const answered = this.recorder.answer(offer);
    const answer = withOfferedLabels(await anchor.answer({ fromTag: inbound.fromTag, toTag: this.localTag, sdp: answered.sdp }), offerSdp);
    this.sdp.towards = answer;
    this.sdp.from = offerSdp;
    const participants = update
      ? this.parties.map((party, i) => {
          const p = update.streams.find((s) => s.mediaIndex === i)?.participant;
          return { party, ...(p?.name ? { name: p.name } : {}), ...(p?.aor ? { aor: p.aor } : {}) };
        })
      : undefined;
    return { answer, hold: answered.held, ...(participants ? { participants } : {}) };
  }

  sdpTowards(): string {
    return this.sdp.towards;
  }

  /** The recording client's answer to a refresh's offer: its streams renegotiated as for a re-INVITE, the answer already sent. */
  async adopt(_side: Side, answer: string): Promise<{ readonly hold: boolean } | undefined> {
    if (sameSessionVersion(this.sdp.from, answer)) return undefined;
    const towards = this.sdp.towards;
    const { hold } = await this.reinvite('caller', answer);
    this.sdp.towards = towards;
    return { hold };
  }

  async hangUp(): Promise<void> {}
}
