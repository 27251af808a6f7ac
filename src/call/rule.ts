/**
 * What a call gets: the call level's part of a dialplan rule. The SIP edge matches an INVITE
 * against the dialplan and hands the session one of these; how the rule was matched (request
 * URI, headers, source) is the dialplan's business, not the call's.
 */

/** Per-party plan: how a party is named on the feed and how its speech is transcribed. */
export interface PartyPlan {
  /** Shown with every transcript line of this party (e.g. customer, agent). */
  readonly label?: string;
  readonly transcribe: boolean;
  /** 'auto' or an ISO 639-1 code; overrides the rule's and the configuration's. */
  readonly language?: string;
  /** Translate this party's finals (into `translateTo`, English by default). */
  readonly translate?: boolean;
  /** The language this party's translations are into (ISO 639-1). */
  readonly translateTo?: string;
}

/** What the gateway says to the caller of an `answer` rule. */
export interface PromptPlan {
  /** Spoken, in order, once the call is answered. */
  readonly answered: readonly string[];
  /** Spoken before the gateway itself ends the call (shutdown), not after the caller hung up. */
  readonly ending: readonly string[];
  readonly language?: string;
  readonly voice?: string;
}

/**
 * Live interpretation on a bridge: each party's finals, translated into the other party's
 * language (`parties.<name>.language`), spoken into the other party's leg.
 */
export interface InterpretationPlan {
  /** While a translation plays, the speaker's own audio towards the listener is muted, or passed (both heard). */
  readonly original: 'mute' | 'pass';
  /** The voice spoken into each leg; the listener's language's default otherwise. */
  readonly voices?: Partial<Record<'caller' | 'callee', string>>;
  /** A translation not spoken within this long after it was made is dropped (ms). */
  readonly maxLagMs: number;
}

/** An audio fork out (a WebSocket stream in the jambonz `listen` format) for each of the rule's calls. */
export interface AudioForkPlan {
  /** ws:// or wss:// URL of the consumer. */
  readonly url: string;
  readonly mix: 'mono' | 'mixed' | 'stereo';
  readonly sampleRate: 8000 | 16000;
  /** Binary L16 frames from the consumer are played into the call. */
  readonly bidirectional: boolean;
}

interface CallRuleCommon {
  readonly name: string;
  /** Free labels (queue, tenant...) that supervisor scopes select calls by. */
  readonly labels: readonly string[];
  /** Parties by name (`caller`, `callee`); absent: the action's parties, all transcribed. */
  readonly parties?: Readonly<Record<string, PartyPlan>>;
  readonly language?: string;
  /** Whisper model for this rule's calls (started on first use). */
  readonly model?: string;
  readonly partials?: boolean;
  readonly translate?: boolean;
  readonly fork?: AudioForkPlan;
  /** A `tts.providers` name for this rule's speech (prompts, interpretation); default: the configured chain. */
  readonly synthesizer?: string;
  /** A `translation.providers` name for this rule's translations; default: the configured chain. */
  readonly translator?: string;
}

/** The gateway is the called party: it answers and transcribes the caller. */
export interface AnswerRule extends CallRuleCommon {
  readonly action: 'answer';
  readonly say?: PromptPlan;
}

/** A B2BUA to `target`: both legs anchored, both parties transcribed. */
export interface BridgeRule extends CallRuleCommon {
  readonly action: 'bridge';
  /** sip: or sips: URI the outbound leg is sent to. */
  readonly target: string;
  readonly interpret?: InterpretationPlan;
}

/** A SIPREC recording server: each recorded stream is one party. */
export interface RecordingRule extends CallRuleCommon {
  readonly action: 'siprec';
}

/** A voice application (jambonz's application protocol, webhook or WebSocket) runs the answered call. */
export interface AppRule extends CallRuleCommon {
  readonly action: 'app';
  /** `http(s)://` (webhook) or `ws(s)://` (WebSocket, subprotocol ws.jambonz.org). */
  readonly url: string;
  readonly auth?: { readonly username: string; readonly password: string } | { readonly bearer: string };
  /** Session defaults before the application's own `config` verb. */
  readonly voice?: string;
  readonly bargein?: boolean;
  /** Webhook applications: where `call:status` updates are POSTed (jambonz's call status hook). */
  readonly statusHook?: string;
  /** `dial` verbs: where phone numbers go (a sip: URI without user), and the URIs that may be dialed (a regular expression). */
  readonly dial?: { readonly trunk?: string; readonly allow?: string };
}

export type CallRule = AnswerRule | BridgeRule | RecordingRule | AppRule;
export type CallAction = CallRule['action'];
