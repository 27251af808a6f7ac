import type { Config } from './config/schema.js';
import { WhisperlineError } from './errors.js';
import type { Logger } from './log.js';
import { MediaForker } from './media/fork.js';
import { RtpengineClient } from './media/rtpengine/client.js';
import { startRtpengine, type RtpengineDaemon } from './media/rtpengine/daemon.js';
import { RtpReceiver } from './media/rtp/receiver.js';

/** The running gateway: every long-lived resource, and the one way to release them all. */
export interface Gateway {
  readonly rtpengine: RtpengineClient;
  /** The rtpengine the gateway launched itself (embedded mode), if any. */
  readonly rtpengineDaemon: RtpengineDaemon | undefined;
  readonly receiver: RtpReceiver;
  readonly forker: MediaForker;
  /** Stops everything in reverse order of start-up. Idempotent. */
  close(): Promise<void>;
}

/**
 * The composition root: the only place that builds concrete objects from the configuration and
 * wires them together. Resources are registered for release as soon as each is acquired, so a
 * failure half-way through start-up releases what was already started.
 */
export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const releaseAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (err) {
        log.warn({ err }, 'cleanup failed during shutdown');
      }
    }
  };
  try {
    let daemon: RtpengineDaemon | undefined;
    if (config.rtpengine.launch) {
      daemon = await startRtpengine({
        binary: config.rtpengine.binary,
        interface: config.rtpengine.host,
        ngPort: config.rtpengine.port,
        portMin: config.rtpengine.portMin,
        portMax: config.rtpengine.portMax,
        logger: log.child({ component: 'rtpengine' }),
      });
      cleanups.push(() => daemon!.stop());
      log.info({ rtpenginePid: daemon.pid, ngPort: config.rtpengine.port }, 'rtpengine launched');
    }
    const rtpengine = new RtpengineClient({
      host: config.rtpengine.host,
      port: config.rtpengine.port,
      timeoutMs: config.rtpengine.timeoutMs,
      logger: log.child({ component: 'rtpengine-client' }),
    });
    cleanups.push(() => rtpengine.close());
    try {
      await rtpengine.ping();
    } catch (err) {
      throw new WhisperlineError(
        'RTPENGINE_UNREACHABLE',
        `rtpengine at ${config.rtpengine.host}:${config.rtpengine.port} did not answer ping` +
          (config.rtpengine.launch ? '' : ' (is it running? rtpengine.launch: true starts a local one)'),
        { retryable: true, cause: err },
      );
    }
    const receiver = new RtpReceiver(config.media);
    cleanups.push(() => receiver.close());
    const forker = new MediaForker(rtpengine, receiver, config.media.forkCodec);
    log.info(
      { rtpengine: `${config.rtpengine.host}:${config.rtpengine.port}`, rtpPorts: `${config.media.portMin}-${config.media.portMax}` },
      'gateway ready',
    );
    let closing: Promise<void> | undefined;
    return {
      rtpengine,
      rtpengineDaemon: daemon,
      receiver,
      forker,
      close: () => (closing ??= releaseAll().then(() => log.info('gateway stopped'))),
    };
  } catch (err) {
    await releaseAll();
    throw err;
  }
}
