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
  forkCodec: z.enum(['PCMU', 'opus']),
});

export const ConfigSchema = z
  .object({
    log: LogConfigSchema,
    rtpengine: RtpengineConfigSchema,
    media: MediaConfigSchema,
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type LogConfig = z.infer<typeof LogConfigSchema>;
export type RtpengineConfig = z.infer<typeof RtpengineConfigSchema>;
export type MediaConfig = z.infer<typeof MediaConfigSchema>;
