import { z } from 'zod';

/**
 * The one schema of the gateway's configuration. Every key is required here: the embedded
 * defaults live in `config/default.yaml` (which documents each key) and are merged under the
 * user's file before validation, so there is a single source of default values.
 * Objects are strict: an unknown key is a typo until proven otherwise, and fails start-up.
 */
const port = z.number().int().min(1).max(65_535);
const host = z.string().min(1);

const portRange = <T extends z.ZodRawShape>(shape: T) =>
  z
    .object(shape)
    .strict()
    .superRefine((v, ctx) => {
      const r = v as { portMin?: number; portMax?: number };
      if (r.portMin !== undefined && r.portMax !== undefined && r.portMin > r.portMax) {
        ctx.addIssue({ code: 'custom', path: ['portMax'], message: `must be >= portMin (${r.portMin})` });
      }
    });

export const LogConfigSchema = z
  .object({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
    /** `auto`: readable lines on a terminal, JSON lines otherwise (a file, journald, a log shipper). */
    format: z.enum(['auto', 'json', 'pretty']),
    redactTranscripts: z.boolean(),
  })
  .strict();

export const RtpengineConfigSchema = portRange({
  host,
  port,
  timeoutMs: z.number().int().min(50).max(60_000),
  launch: z.boolean(),
  binary: z.string().min(1),
  portMin: port,
  portMax: port,
});

export const MediaConfigSchema = portRange({
  bindAddress: z.union([z.ipv4(), z.ipv6()]),
  portMin: port,
  portMax: port,
  reorderWindowMs: z.number().int().min(0).max(200),
  fillDelayMs: z.number().int().min(20).max(2000),
  forkCodec: z.enum(['PCMU', 'opus']),
}).superRefine((m, ctx) => {
  if (m.fillDelayMs <= m.reorderWindowMs) {
    ctx.addIssue({ code: 'custom', path: ['fillDelayMs'], message: `must be longer than reorderWindowMs (${m.reorderWindowMs})` });
  }
});

export const VadConfigSchema = z
  .object({
    threshold: z.number().min(0).max(1),
    negativeThreshold: z.number().min(0).max(1),
    preRollMs: z.number().int().min(0).max(2000),
    hangoverMs: z.number().int().min(32).max(5000),
    minSpeechMs: z.number().int().min(0).max(5000),
    maxUtteranceMs: z.number().int().min(1000).max(120_000),
    maxBatch: z.number().int().min(1).max(4096),
    sampleRate: z.union([z.literal(8000), z.literal(16000)]),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.negativeThreshold > v.threshold) {
      ctx.addIssue({ code: 'custom', path: ['negativeThreshold'], message: `must be <= threshold (${v.threshold})` });
    }
  });

/** The speech recognition providers; `asr.provider` picks one, its section below configures it. */
export const ASR_PROVIDERS = ['local', 'remote'] as const;

export const AsrConfigSchema = z
  .object({
    provider: z.enum(ASR_PROVIDERS),
    model: z.string().min(1),
    modelDir: z.string().min(1),
    modelBaseUrl: z.string().url(),
    queueSize: z.number().int().min(1).max(10_000),
    timeoutMs: z.number().int().min(100).max(600_000),
    beamSize: z.number().int().min(1).max(16),
    audioContext: z.union([z.literal('auto'), z.number().int().min(0).max(1500)]),
    /** provider `local`: whisper-server processes the gateway builds, starts and supervises. */
    local: z
      .object({
        poolSize: z.number().int().min(1).max(64),
        threads: z.number().int().min(1).max(256),
        cuda: z.boolean(),
        buildDir: z.string().min(1),
      })
      .strict(),
    /** provider `remote`: whisper-server instances elsewhere (GPU hosts), by URL. */
    remote: z.object({ servers: z.array(z.string().url()) }).strict(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.provider === 'remote' && a.remote.servers.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['remote', 'servers'], message: 'provider remote needs at least one whisper-server URL' });
    }
  });

export const TranscriptsConfigSchema = z
  .object({
    language: z.string().regex(/^(auto|[a-z]{2,3})$/, 'expected "auto" or an ISO 639-1 code'),
    partials: z.boolean(),
    partialIntervalMs: z.number().int().min(200).max(30_000),
    translate: z.boolean(),
    noSpeechThreshold: z.number().min(0).max(1),
    silencePhrases: z.array(z.string()),
    lowEnergyDbfs: z.number().max(0),
    maxRepeats: z.number().int().min(1).max(100),
  })
  .strict();

/** drachtio-server's sample secret: anyone who reads its documentation knows it. */
export const DRACHTIO_DEFAULT_SECRET = 'cymru';

/** Loopback addresses: what only this machine can reach. */
export function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\./.test(address);
}

export const SipConfigSchema = z
  .object({
    /** `off`: no SIP at all (an ingest-only gateway). */
    mode: z.enum(['inbound', 'outbound', 'off']),
    drachtioHost: host,
    drachtioPort: port,
    drachtioSecret: z.string().min(1),
    listenHost: host,
    listenPort: port,
    dialplans: z.string().min(1),
    noMatchStatus: z.number().int().min(400).max(699),
    maxCalls: z.number().int().min(1).max(100_000),
    drainGraceMs: z.number().int().min(0).max(3_600_000),
  })
  .strict()
  .superRefine((sip, ctx) => {
    // In outbound mode whoever reaches the listener and knows the secret drives calls.
    if (sip.mode === 'outbound' && !isLoopback(sip.listenHost) && sip.drachtioSecret === DRACHTIO_DEFAULT_SECRET) {
      ctx.addIssue({
        code: 'custom',
        path: ['drachtioSecret'],
        message: `the well-known default secret "${DRACHTIO_DEFAULT_SECRET}" is refused when sip.listenHost (${sip.listenHost}) is not loopback: set sip.drachtioSecret to the secret of your drachtio-server's outbound connections`,
      });
    }
  });

export const HttpConfigSchema = z
  .object({
    host,
    port: z.number().int().min(0).max(65_535),
    /**
     * `GET /metrics` needs `Authorization: Bearer <this>` when set; null = open (keep http.host
     * private then). Null rather than absent so the key has a default and an environment name.
     */
    metricsToken: z
      .string()
      .min(16, 'tokens are at least 16 characters')
      .nullable()
      .transform((t) => t ?? undefined),
  })
  .strict();

export const StoreConfigSchema = z
  .object({
    path: z.string().min(1),
    retentionDays: z.number().int().min(0).max(36_500),
    /** This gateway's name in the store: a restart closes the calls it left open, and only those. */
    instance: z.string().min(1),
  })
  .strict();

const label = z.string().min(1);

export const SupervisorTokenSchema = z
  .object({
    /** Who holds the token: logged on connect, never the token itself. */
    name: z.string().min(1),
    token: z.string().min(16, 'tokens are at least 16 characters'),
    /** Calls this token sees: those whose dialplan rule carries any of these labels; empty or absent = every call (as documented). */
    labels: z.array(label).default([]),
  })
  .strict();

export const SupervisorConfigSchema = z
  .object({
    tokens: z.array(SupervisorTokenSchema),
    allowedOrigins: z.array(z.string().regex(/^https?:\/\/[^/]+$/, 'expected an origin such as https://wallboard.example.com')),
    heartbeatMs: z.number().int().min(1000).max(300_000),
    /** Bytes waiting in one client's socket above which its partials are skipped. */
    partialDropBytes: z.number().int().min(1024),
    /** Bytes waiting in one client's socket above which it is disconnected. */
    maxBufferedBytes: z.number().int().min(4096),
    /** Most stored events one resume replays; a client further behind is told to reload history. */
    replayLimit: z.number().int().min(1).max(10_000_000),
  })
  .strict()
  .refine((s) => s.partialDropBytes < s.maxBufferedBytes, { message: 'partialDropBytes must be below maxBufferedBytes', path: ['partialDropBytes'] });

export const AlertRuleSchema = z
  .object({
    name: z.string().min(1),
    /** Only this party's finals (caller, callee, a SIPREC participant or party label); any party when absent. */
    party: z.string().min(1).optional(),
    /** Whole words or phrases, matched case-insensitively. */
    words: z.array(z.string().min(1)).optional(),
    /** A JavaScript regular expression, matched case-insensitively. */
    pattern: z
      .string()
      .min(1)
      .refine((p) => {
        try {
          new RegExp(p, 'iu');
          return true;
        } catch {
          return false;
        }
      }, 'not a valid regular expression')
      .optional(),
    severity: z.enum(['info', 'warning', 'critical']),
  })
  .strict()
  .refine((r) => (r.words?.length ?? 0) > 0 || r.pattern !== undefined, { message: 'an alert rule needs words or a pattern' });

export const AlertsConfigSchema = z.object({ rules: z.array(AlertRuleSchema) }).strict();

export const FeedsConfigSchema = z
  .object({
    fork: z
      .object({
        /** WebSocket subprotocol offered to fork consumers. */
        subprotocol: z.string().min(1),
        /** Audio held while the consumer's socket is not writable, before the oldest is dropped. */
        bufferMs: z.number().int().min(1000).max(5000),
        reconnectMinMs: z.number().int().min(50),
        reconnectMaxMs: z.number().int().min(100),
      })
      .strict()
      .refine((f) => f.reconnectMinMs <= f.reconnectMaxMs, { message: 'reconnectMinMs must not exceed reconnectMaxMs', path: ['reconnectMinMs'] }),
    ingest: z
      .object({
        /** Keys accepted as `Authorization: Bearer` (or Basic password) on the ingest endpoints; empty = no key needed. */
        apiKeys: z.array(z.string().min(16, 'API keys are at least 16 characters')),
        /** Concurrent ingest connections; more are refused with 503 before the upgrade. */
        maxConnections: z.number().int().min(1).max(10_000),
        /** Concurrent connections of one client (its API key, or its address without keys), so one cannot take every slot. */
        maxConnectionsPerClient: z.number().int().min(1).max(10_000),
        /**
         * Web origins allowed to open ingest sockets. The platforms (jambonz, FreeSWITCH, Twilio)
         * send no Origin; a browser always does, so a page elsewhere cannot stream into the gateway.
         */
        allowedOrigins: z.array(z.string().regex(/^https?:\/\/[^/]+$/, 'expected an origin such as https://app.example.com')),
        /** Labels given to ingested calls, so supervisor scopes can select them. */
        labels: z.array(label),
      })
      .strict(),
  })
  .strict();

const providerName = z.string().regex(/^[a-z0-9.-]+$/, 'provider names are lower-case letters, digits, dots and dashes');
const httpUrl = z.string().regex(/^https?:\/\/[^\s]+$/, 'expected an http:// or https:// URL');
const languageList = z.array(z.string().regex(/^[a-z]{2,3}(-[A-Za-z0-9]+)?$/, 'expected ISO 639-1 codes (or tags such as en-GB)'));

/** One speech synthesizer; `tts.providers` lists them in fallback order. */
export const TtsProviderSchema = z.discriminatedUnion('type', [
  z
    .object({
      name: providerName,
      type: z.literal('espeak-ng'),
      /** The voice when a request names neither voice nor language. */
      voice: z.string().min(1).optional(),
      wordsPerMinute: z.number().int().min(80).max(450).optional(),
      binary: z.string().min(1).optional(),
    })
    .strict(),
  z
    .object({
      name: providerName,
      /** OpenAI-compatible POST /v1/audio/speech: OpenAI, Kokoro-FastAPI, speaches, openedai-speech. */
      type: z.literal('openai'),
      baseUrl: httpUrl,
      apiKey: z.string().min(1).optional(),
      model: z.string().min(1),
      voice: z.string().min(1),
      voiceByLanguage: z.record(z.string(), z.string().min(1)).optional(),
      responseFormat: z.enum(['pcm', 'wav']).optional(),
      sampleRate: z.number().int().min(8000).max(48_000).optional(),
      speed: z.number().min(0.25).max(4).optional(),
      languages: languageList.optional(),
    })
    .strict(),
  z
    .object({
      name: providerName,
      /** A jambonz custom TTS server (POST {language, voice, type, text}). */
      type: z.literal('jambonz'),
      url: httpUrl,
      apiKey: z.string().min(1).optional(),
      voice: z.string().min(1).optional(),
      voiceByLanguage: z.record(z.string(), z.string().min(1)).optional(),
      language: z.string().min(2).optional(),
      languages: languageList.optional(),
      ssml: z.boolean().optional(),
      l16ByteOrder: z.enum(['little', 'big']).optional(),
    })
    .strict(),
]);

export const TtsConfigSchema = z
  .object({
    providers: z.array(TtsProviderSchema).min(1, 'at least one synthesizer (espeak-ng needs no set-up)'),
    /** Each provider's time to first audio before the next one is tried (ms). */
    timeoutMs: z.number().int().min(100).max(120_000),
    cache: z
      .object({
        memoryBytes: z.number().int().min(0),
        /** null: memory only. */
        directory: z.string().min(1).nullable(),
        diskBytes: z.number().int().min(0),
      })
      .strict(),
    /** The synthesizers offered to jambonz as a custom TTS provider (POST /v1/tts). */
    serve: z
      .object({
        /** Bearer keys jambonz sends (its "API key" for the custom vendor); empty = the endpoint is off. */
        apiKeys: z.array(z.string().min(16, 'API keys are at least 16 characters')),
        /** The rate of the l16 replies (what jambonz plays). */
        sampleRate: z.union([z.literal(8000), z.literal(16000), z.literal(24000)]),
      })
      .strict(),
  })
  .strict()
  .superRefine((tts, ctx) => uniqueNames(tts.providers, ['providers'], ctx));

/** One translator; `translation.providers` lists them in fallback order. */
export const TranslationProviderSchema = z.discriminatedUnion('type', [
  z.object({ name: providerName, /** whisper's translate task (into English only, from the audio). */ type: z.literal('whisper') }).strict(),
  z
    .object({
      name: providerName,
      /** OpenAI-compatible chat completions: Ollama, vLLM, llama.cpp server, OpenAI. */
      type: z.literal('chat'),
      baseUrl: httpUrl,
      model: z.string().min(1),
      apiKey: z.string().min(1).optional(),
      languages: languageList.optional(),
      contextTurns: z.number().int().min(0).max(20).optional(),
    })
    .strict(),
  z
    .object({
      name: providerName,
      type: z.literal('libretranslate'),
      baseUrl: httpUrl,
      apiKey: z.string().min(1).optional(),
    })
    .strict(),
  z
    .object({
      name: providerName,
      type: z.literal('deepl'),
      authKey: z.string().min(1),
      /** Default: the free or pro API, chosen by the key (`:fx` = free). */
      baseUrl: httpUrl.optional(),
      formality: z.enum(['default', 'more', 'less', 'prefer_more', 'prefer_less']).optional(),
      languages: languageList.optional(),
    })
    .strict(),
]);

export const TranslationConfigSchema = z
  .object({
    providers: z.array(TranslationProviderSchema).min(1, 'at least one translator (whisper needs no set-up)'),
    /** One request's limit (ms) before the next provider is tried. */
    timeoutMs: z.number().int().min(100).max(120_000),
    /** Translations kept (provider, languages, text); 0 = no cache. */
    cacheEntries: z.number().int().min(0).max(1_000_000),
    /** Requests per second to the text providers; 0 = unlimited. */
    requestsPerSecond: z.number().min(0).max(10_000),
    /** Requests waiting for the rate limit; beyond it a final goes untranslated (counted). */
    maxQueue: z.number().int().min(0).max(10_000),
  })
  .strict()
  .superRefine((t, ctx) => uniqueNames(t.providers, ['providers'], ctx));

function uniqueNames(providers: readonly { name: string }[], path: (string | number)[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  providers.forEach((p, i) => {
    if (seen.has(p.name)) ctx.addIssue({ code: 'custom', path: [...path, i, 'name'], message: `duplicate provider name "${p.name}"` });
    seen.add(p.name);
  });
}

export const ConfigSchema = z
  .object({
    log: LogConfigSchema,
    http: HttpConfigSchema,
    sip: SipConfigSchema,
    rtpengine: RtpengineConfigSchema,
    media: MediaConfigSchema,
    vad: VadConfigSchema,
    asr: AsrConfigSchema,
    transcripts: TranscriptsConfigSchema,
    store: StoreConfigSchema,
    supervisor: SupervisorConfigSchema,
    alerts: AlertsConfigSchema,
    feeds: FeedsConfigSchema,
    tts: TtsConfigSchema,
    translation: TranslationConfigSchema,
  })
  .strict()
  .superRefine((config, ctx) => {
    // Beyond loopback, anyone who reaches the port could stream audio in and create calls.
    if (!isLoopback(config.http.host) && config.feeds.ingest.apiKeys.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['feeds', 'ingest', 'apiKeys'],
        message: `API keys are required when http.host (${config.http.host}) is not loopback: anyone who can reach it could open ingest calls. Set feeds.ingest.apiKeys (16 characters or more each), or bind http.host to 127.0.0.1 behind a proxy`,
      });
    }
  });

export type Config = z.infer<typeof ConfigSchema>;
export type LogConfig = z.infer<typeof LogConfigSchema>;
export type RtpengineConfig = z.infer<typeof RtpengineConfigSchema>;
export type MediaConfig = z.infer<typeof MediaConfigSchema>;
export type SipConfig = z.infer<typeof SipConfigSchema>;
export type VadConfig = z.infer<typeof VadConfigSchema>;
export type AsrConfig = z.infer<typeof AsrConfigSchema>;
export type TranscriptsConfig = z.infer<typeof TranscriptsConfigSchema>;
export type StoreConfig = z.infer<typeof StoreConfigSchema>;
export type SupervisorConfig = z.infer<typeof SupervisorConfigSchema>;
export type SupervisorToken = z.infer<typeof SupervisorTokenSchema>;
export type AlertRule = z.infer<typeof AlertRuleSchema>;
export type AlertsConfig = z.infer<typeof AlertsConfigSchema>;
export type FeedsConfig = z.infer<typeof FeedsConfigSchema>;
export type TtsConfig = z.infer<typeof TtsConfigSchema>;
export type TtsProviderConfig = z.infer<typeof TtsProviderSchema>;
export type TranslationConfig = z.infer<typeof TranslationConfigSchema>;
export type TranslationProviderConfig = z.infer<typeof TranslationProviderSchema>;
