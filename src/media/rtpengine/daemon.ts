/**
 * Supervisor of a userspace rtpengine: the gateway's embedded mode and the integration tests.
 *
 * Contract:
 * - `startRtpengine` resolves once the daemon answers an ng `ping`; it rejects with code
 *   'RTPENGINE_SPAWN' (message includes the last stderr lines) when the binary is missing, the
 *   daemon exits, or no pong arrives within `startTimeoutMs`; the half-started daemon is killed.
 * - ng and CLI ports left out (or 0) are picked free by binding port 0 on `ngHost`. rtpengine 10.5
 *   binds its UDP sockets with address reuse, so a second rtpengine on the same ng port starts
 *   "fine" and silently shares the datagrams; after start-up the ng port must therefore have a
 *   single socket in /proc/net/udp*, and start-up is retried with new ports when it does not.
 *   The same reuse applies to RTP ports: callers must give each daemon its own RTP range.
 * - The daemon never outlives this process: it is started under `setpriv --pdeathsig` where
 *   setpriv exists (it gets SIGTERM if this process dies, even by SIGKILL), and an 'exit' hook
 *   SIGKILLs it when this process exits normally.
 * - `stop()` sends SIGTERM, then SIGKILL after `stopGraceMs`; it resolves when the process is
 *   gone and is idempotent.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import dgram from 'node:dgram';
import net, { isIP, isIPv6 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, spawnBoundToParent } from '../../child-process.js';
import { WhisperlineError } from '../../errors.js';
import { RtpengineClient, type RtpengineLogger } from './client.js';

export interface StartRtpengineOptions {
  /** rtpengine executable; default `$RTPENGINE_BIN`, else `rtpengine` on PATH. */
  readonly binary?: string;
  /** rtpengine-ctl executable for `numSessions()`; default `$RTPENGINE_CTL_BIN`, else `rtpengine-ctl`. */
  readonly ctlBinary?: string;
  /** rtpengine's `--interface` (media address); default '127.0.0.1'. */
  readonly interface?: string;
  /** Address of the ng and CLI listeners; default: `interface` when it is a plain IP, else '127.0.0.1'. */
  readonly ngHost?: string;
  /** ng UDP port; 0 or absent: a free one. */
  readonly ngPort?: number;
  /** CLI TCP port; 0 or absent: a free one. */
  readonly cliPort?: number;
  /** RTP port range; must not overlap the range of any other rtpengine on this host. */
  readonly portMin: number;
  readonly portMax: number;
  /** syslog level 0-7; default 6 (info). */
  readonly logLevel?: number;
  /** Seconds after which rtpengine drops any call: a safety net for calls never deleted. Default 3600. */
  readonly finalTimeoutSec?: number;
  /** Directory for the pidfile (and rtpengine's cwd); default: a fresh temp dir, removed on stop. */
  readonly workDir?: string;
  readonly extraArgs?: readonly string[];
  /** Default 5000 ms. */
  readonly startTimeoutMs?: number;
  /** Time between SIGTERM and SIGKILL in `stop()`; default 3000 ms. */
  readonly stopGraceMs?: number;
  readonly logger?: RtpengineLogger;
}

export interface RtpengineDaemon {
  readonly ngHost: string;
  readonly ngPort: number;
  readonly cliPort: number;
  readonly pid: number;
  readonly portMin: number;
  readonly portMax: number;
  readonly workDir: string;
  /** True once the process has exited (stopped or crashed). */
  readonly exited: boolean;
  /** Calls rtpengine holds now (`rtpengine-ctl list numsessions`, "Current sessions total"). */
  numSessions(): Promise<number>;
  /** The last `lines` lines rtpengine wrote (stderr and stdout), for diagnostics. */
  stderrTail(lines?: number): string;
  stop(): Promise<void>;
}

const STDERR_LINES_KEPT = 200;
const START_ATTEMPTS = 3;
const noopLogger: RtpengineLogger = { debug() {}, warn() {} };

export async function startRtpengine(options: StartRtpengineOptions): Promise<RtpengineDaemon> {
  validatePortRange(options.portMin, options.portMax);
  const binaryName = options.binary ?? process.env.RTPENGINE_BIN ?? 'rtpengine';
  const binary = findExecutable(binaryName);
  if (!binary) {
    throw new WhisperlineError(
      'RTPENGINE_SPAWN',
      `rtpengine binary "${binaryName}" not found (install rtpengine-daemon, or set RTPENGINE_BIN)`,
    );
  }
  const logger = options.logger ?? noopLogger;
  for (let attempt = 1; ; attempt++) {
    const outcome = await startOnce(binary, options);
    if (!('failed' in outcome)) return outcome;
    // Only a port race is worth another try; a broken binary or config fails the same way again.
    if (!outcome.portClash || attempt >= START_ATTEMPTS) throw outcome.failed;
    logger.warn({ attempt, err: outcome.failed }, 'rtpengine ports clashed; retrying with new ones');
  }
}

/** A failed start; `portClash`: fresh ports (picked by this attempt) may fix it. */
interface StartFailure {
  readonly failed: WhisperlineError;
  readonly portClash: boolean;
}

async function startOnce(binary: string, options: StartRtpengineOptions): Promise<RtpengineDaemon | StartFailure> {
  const logger = options.logger ?? noopLogger;
  const iface = options.interface ?? '127.0.0.1';
  const ngHost = options.ngHost ?? (isIP(iface) ? iface : '127.0.0.1');
  const ngPort = options.ngPort || (await freeUdpPort(ngHost));
  const cliPort = options.cliPort || (await freeTcpPort(ngHost));
  const ownsWorkDir = options.workDir === undefined;
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'whisperline-rtpengine-')));
  const hostPort = (port: number): string => (isIPv6(ngHost) ? `[${ngHost}]:${port}` : `${ngHost}:${port}`);

  const args = [
    '--config-file=none',
    '--table=-1',
    `--interface=${iface}`,
    `--listen-ng=${hostPort(ngPort)}`,
    `--listen-cli=${hostPort(cliPort)}`,
    `--port-min=${options.portMin}`,
    `--port-max=${options.portMax}`,
    '--foreground',
    '--log-stderr',
    `--log-level=${options.logLevel ?? 6}`,
    '--delete-delay=0',
    `--final-timeout=${options.finalTimeoutSec ?? 3600}`,
    `--pidfile=${join(workDir, 'rtpengine.pid')}`,
    ...(options.extraArgs ?? []),
  ];
  const child = spawnBoundToParent(binary, args, { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = new SupervisedProcess(child, logger, ownsWorkDir ? workDir : undefined);
  const cleanupFailedStart = async (): Promise<void> => {
    await proc.stop(options.stopGraceMs ?? 3000);
    if (ownsWorkDir) await rm(workDir, { recursive: true, force: true });
  };

  try {
    await proc.spawned;
    await waitForPong(ngHost, ngPort, options.startTimeoutMs ?? 5000, proc, child.pid);
    const ownership = ngSocketOwnership(ngPort, child.pid);
    if (ownership && ownership.sockets > 1) {
      throw new SharedNgPortError(
        'RTPENGINE_SPAWN',
        `rtpengine ng port ${ngPort} is shared with another process (${ownership.sockets} sockets)`,
      );
    }
  } catch (error) {
    await cleanupFailedStart();
    const tail = proc.tail(20);
    const reason = error instanceof Error ? error.message : String(error);
    const output = tail ? `\n--- rtpengine output ---\n${tail}` : ' (rtpengine wrote nothing)';
    const failed = new WhisperlineError(
      'RTPENGINE_SPAWN',
      `rtpengine did not start (${binary}, ng ${hostPort(ngPort)}): ${reason}${output}`,
      { cause: error },
    );
    // Fresh ports help only where this attempt picked them: an ng port found shared, or an exit
    // because a picked port was taken meanwhile.
    const portClash =
      (error instanceof SharedNgPortError && !options.ngPort) ||
      (error instanceof ExitedError && (!options.ngPort || !options.cliPort) && /Address already in use/.test(tail));
    return { failed, portClash };
  }

  logger.debug({ pid: child.pid, ngPort, cliPort, portMin: options.portMin, portMax: options.portMax }, 'rtpengine started');
  const ctlBinary = options.ctlBinary ?? process.env.RTPENGINE_CTL_BIN ?? 'rtpengine-ctl';
  let stopping: Promise<void> | undefined;
  return {
    ngHost,
    ngPort,
    cliPort,
    pid: child.pid ?? -1,
    portMin: options.portMin,
    portMax: options.portMax,
    workDir,
    get exited() {
      return proc.exitStatus !== undefined;
    },
    numSessions: () => numSessions(ctlBinary, ngHost, cliPort),
    stderrTail: (lines = 20) => proc.tail(lines),
    stop: () =>
      (stopping ??= (async () => {
        await proc.stop(options.stopGraceMs ?? 3000);
        if (ownsWorkDir) await rm(workDir, { recursive: true, force: true });
        logger.debug({ pid: child.pid }, 'rtpengine stopped');
      })()),
  };
}

class ExitedError extends WhisperlineError {}
class SharedNgPortError extends WhisperlineError {}

interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Owns one child process: output ring buffer, exit tracking, kill-on-exit registration. */
class SupervisedProcess {
  exitStatus: ExitStatus | undefined;
  /** Resolves once spawned; rejects if the spawn itself failed. */
  readonly spawned: Promise<void>;
  readonly exit: Promise<ExitStatus>;
  private readonly lines: string[] = [];
  private stopping = false;

  constructor(
    private readonly child: ChildProcess,
    private readonly logger: RtpengineLogger,
    tempDir: string | undefined,
  ) {
    this.spawned = new Promise((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
    this.spawned.catch(() => undefined); // observed by startOnce; never an unhandled rejection
    this.exit = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.exitStatus = { code, signal };
        liveChildren.delete(child);
        if (!this.stopping) {
          logger.warn({ pid: child.pid, code, signal, output: this.tail(10) }, 'rtpengine exited unexpectedly');
        }
        resolve(this.exitStatus);
      });
      // 'close' never follows a failed spawn.
      child.once('error', () => {
        this.exitStatus ??= { code: null, signal: null };
        liveChildren.delete(child);
        resolve(this.exitStatus);
      });
    });
    registerForExitKill(child, tempDir);
    this.collect(child.stdout);
    this.collect(child.stderr);
  }

  tail(lines: number): string {
    return this.lines.slice(-lines).join('\n');
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.exitStatus) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      await this.exit;
    } finally {
      clearTimeout(timer);
    }
  }

  private collect(stream: NodeJS.ReadableStream | null): void {
    if (!stream) return;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) this.addLine(line);
    });
    stream.on('end', () => {
      if (partial) this.addLine(partial);
      partial = '';
    });
  }

  private addLine(line: string): void {
    this.lines.push(line);
    if (this.lines.length > STDERR_LINES_KEPT) this.lines.splice(0, this.lines.length - STDERR_LINES_KEPT);
    if (/\b(ERR|CRIT|ALERT|EMERG)\b/.test(line)) this.logger.warn({ pid: this.child.pid, line }, 'rtpengine error output');
    else this.logger.debug({ pid: this.child.pid, line }, 'rtpengine output');
  }
}

/** Resolves once ng answers a ping and (where /proc tells) the answering socket is `pid`'s own. */
async function waitForPong(
  host: string,
  port: number,
  timeoutMs: number,
  proc: SupervisedProcess,
  pid: number | undefined,
): Promise<void> {
  const client = new RtpengineClient({ host, port, timeoutMs: 250, retransmits: 1 });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (proc.exitStatus) {
        const { code, signal } = proc.exitStatus;
        throw new ExitedError('RTPENGINE_SPAWN', `rtpengine exited during start-up (code ${code}, signal ${signal})`);
      }
      try {
        await Promise.race([client.ping(), proc.exit]);
        if (!proc.exitStatus && (ngSocketOwnership(port, pid)?.ours ?? true)) return;
      } catch {
        // not listening yet: retry until the deadline
      }
      if (Date.now() >= deadline) {
        throw new WhisperlineError('RTPENGINE_SPAWN', `no ng pong within ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await client.close();
  }
}

async function numSessions(ctlBinary: string, host: string, cliPort: number): Promise<number> {
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      ctlBinary,
      ['-ip', host, '-port', String(cliPort), 'list', 'numsessions'],
      { timeout: 5000 },
      (error, stdout, stderr) => {
        if (error) {
          reject(
            new WhisperlineError('RTPENGINE_UNREACHABLE', `${ctlBinary} list numsessions failed: ${stderr.trim() || error.message}`, {
              cause: error,
            }),
          );
        } else {
          resolve(stdout);
        }
      },
    );
  });
  // "Current sessions own: 0\nCurrent sessions foreign: 0\nCurrent sessions total: 0\n…"
  const match = /^Current sessions total:\s*(\d+)\s*$/m.exec(output);
  if (!match?.[1]) {
    throw new WhisperlineError('RTPENGINE_PROTOCOL', `unexpected rtpengine-ctl output: ${JSON.stringify(output.slice(0, 200))}`);
  }
  return Number(match[1]);
}

// ---------------------------------------------------------------------------------------------
// lifetime: kill what is still running when this process exits

/** Children still running, with the temp dir to remove when this process exits first. */
const liveChildren = new Map<ChildProcess, string | undefined>();
let exitHookInstalled = false;

function registerForExitKill(child: ChildProcess, tempDir: string | undefined): void {
  liveChildren.set(child, tempDir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL cannot be left half done, unlike a graceful stop.
  process.on('exit', () => {
    for (const [c, dir] of liveChildren) {
      try {
        c.kill('SIGKILL');
        if (dir) rmSync(dir, { recursive: true, force: true });
      } catch {
        // already gone
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// ports and executables

function validatePortRange(portMin: number, portMax: number): void {
  const valid = (p: number): boolean => Number.isInteger(p) && p >= 1 && p <= 65_535;
  if (!valid(portMin) || !valid(portMax) || portMin > portMax) {
    throw new RangeError(`invalid rtpengine RTP port range ${portMin}-${portMax}`);
  }
}

function freeUdpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.bind(0, host, () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

function freeTcpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Inodes of the UDP sockets bound to `port` on any address (/proc/net/udp and udp6);
 * undefined where /proc is not available (not Linux).
 */
function udpSocketInodes(port: number): string[] | undefined {
  const inodes: string[] = [];
  let readAny = false;
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    readAny = true;
    for (const line of text.split('\n').slice(1)) {
      // "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …", local "0100007F:56CE"
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const inode = fields[9];
      if (!local || !inode) continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.push(inode);
    }
  }
  return readAny ? inodes : undefined;
}

/** Socket inodes a process holds (from /proc/<pid>/fd); undefined where that cannot be read. */
function socketInodesOf(pid: number): Set<string> | undefined {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  const inodes = new Set<string>();
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match?.[1]) inodes.add(match[1]);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/**
 * Whether the ng port is bound by `pid` itself: a pong alone does not prove it, because another
 * rtpengine sharing the port (address reuse) may have answered. Undefined without /proc.
 */
function ngSocketOwnership(port: number, pid: number | undefined): { ours: boolean; sockets: number } | undefined {
  const onPort = udpSocketInodes(port);
  const held = pid === undefined ? undefined : socketInodesOf(pid);
  if (!onPort || !held) return undefined;
  return { ours: onPort.some((inode) => held.has(inode)), sockets: onPort.length };
}

/** Absolute path of an executable: `name` itself if it contains a slash, else looked up on PATH. */
