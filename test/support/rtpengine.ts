/**
 * Test helpers around a real userspace rtpengine.
 *
 * Port ranges: rtpengine 10.5 binds RTP ports with address reuse, so two daemons given
 * overlapping ranges both "succeed" and the kernel splits the media between them. Every test
 * file (vitest worker, and any other vitest run on the same host) therefore leases its own
 * slot of ports through a lock file in the temp dir; a slot whose holder process is gone is
 * taken over. Slots lie below the kernel's ephemeral range (32768+), so sockets bound to port 0
 * by tests never land in them.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { RtpengineClient } from '../../src/media/rtpengine/client.js';
import { startRtpengine, type RtpengineDaemon, type StartRtpengineOptions } from '../../src/media/rtpengine/daemon.js';

export type TestRtpengine = RtpengineDaemon;

export interface PortRange {
  readonly min: number;
  readonly max: number;
}

/** One leased slot: RTP ports for rtpengine and for the gateway's own RTP receiver. */
export interface TestPortRanges {
  /** 300 ports: rtpengine holds 4 per anchored call and 2 per subscription. */
  readonly rtpengine: PortRange;
  /** 100 ports for sockets the test binds itself (gateway receiver, fake endpoints). */
  readonly gateway: PortRange;
  /** Gives the slot back early; otherwise it is released when the process exits. */
  release(): void;
}

const SLOT_BASE = 20_000;
const SLOT_SIZE = 400;
const SLOT_COUNT = Math.floor((32_768 - SLOT_BASE) / SLOT_SIZE); // 31: all below the ephemeral range
const LOCK_DIR = join(tmpdir(), 'whisperline-test-port-slots');

const heldLocks = new Set<string>();
let exitHookInstalled = false;

/**
 * Leases a port slot nobody else on this host holds. Each call leases a new slot, starting the
 * search at this vitest worker's own (VITEST_POOL_ID) so parallel workers rarely contend.
 */
export function rtpPortRange(): TestPortRanges {
  mkdirSync(LOCK_DIR, { recursive: true });
  const poolId = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1);
  const first = Number.isInteger(poolId) && poolId > 0 ? (poolId - 1) % SLOT_COUNT : 0;
  for (let i = 0; i < SLOT_COUNT; i++) {
    const slot = (first + i) % SLOT_COUNT;
    const lock = join(LOCK_DIR, `slot-${slot}.lock`);
    if (!tryLock(lock)) continue;
    const base = SLOT_BASE + slot * SLOT_SIZE;
    return {
      rtpengine: { min: base, max: base + 299 },
      gateway: { min: base + 300, max: base + SLOT_SIZE - 1 },
      release: () => unlock(lock),
    };
  }
  throw new Error(`all ${SLOT_COUNT} test port slots in ${LOCK_DIR} are held by live processes`);
}

function tryLock(lock: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldLocks.add(lock);
      installExitHook();
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readHolder(lock);
    if (holder === undefined || isAlive(holder)) return false;
    // Stale: its holder died without releasing. Remove it only if it still names that holder.
    if (readHolder(lock) === holder) removeQuietly(lock);
  }
  return false;
}

function readHolder(lock: string): number | undefined {
  try {
    const pid = Number(readFileSync(lock, 'utf8').trim());
    // An empty file is a lock being written right now: treat as held.
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function unlock(lock: string): void {
  if (heldLocks.delete(lock)) removeQuietly(lock);
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lock of heldLocks) removeQuietly(lock);
  });
}

/** Starts rtpengine on loopback with the given RTP range (from `rtpPortRange()`); ng/CLI ports are picked free. */
export function startTestRtpengine(
  portMin: number,
  portMax: number,
  options: Partial<StartRtpengineOptions> = {},
): Promise<TestRtpengine> {
  return startRtpengine({ interface: '127.0.0.1', logLevel: 6, ...options, portMin, portMax });
}

export interface RtpengineFixture {
  /** The running daemon (valid inside tests, after beforeAll). */
  readonly daemon: TestRtpengine;
  /** A client connected to it. */
  readonly client: RtpengineClient;
  readonly ports: TestPortRanges;
}

/**
 * Registers beforeAll/afterAll hooks that lease a port slot, start rtpengine and a client, and
 * tear all three down. Call at the top of a test file or describe block.
 */
export function withRtpengine(options: Partial<StartRtpengineOptions> = {}): RtpengineFixture {
  let daemon: TestRtpengine | undefined;
  let client: RtpengineClient | undefined;
  let ports: TestPortRanges | undefined;
  beforeAll(async () => {
    ports = rtpPortRange();
    daemon = await startTestRtpengine(ports.rtpengine.min, ports.rtpengine.max, options);
    client = new RtpengineClient({ host: daemon.ngHost, port: daemon.ngPort, timeoutMs: 2000 });
  });
  afterAll(async () => {
    await client?.close();
    await daemon?.stop();
    ports?.release();
  });
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`withRtpengine: ${what} used before beforeAll ran`);
    return value;
  };
  return {
    get daemon() {
      return ready(daemon, 'daemon');
    },
    get client() {
      return ready(client, 'client');
    },
    get ports() {
      return ready(ports, 'ports');
    },
  };
}
