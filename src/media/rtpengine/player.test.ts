import { describe, expect, it } from 'vitest';
import { parseWav } from '../../audio/wav.js';
import { MAX_BLOB_BYTES, RtpenginePlayer, type PlayerControl } from './player.js';

/** A recording fake of the rtpengine commands the player sends. */
class FakeRtpengine implements PlayerControl {
  readonly sent: { command: string; request: Record<string, unknown> }[] = [];
  failStop = false;

  private record(command: string, request: object): void {
    this.sent.push({ command, request: request as Record<string, unknown> });
  }
  playMedia: PlayerControl['playMedia'] = async (request) => {
    this.record('play media', request);
    return { result: 'ok', duration: 480 };
  };
  stopMedia: PlayerControl['stopMedia'] = async (request) => {
    this.record('stop media', request);
    if (this.failStop) throw new Error('Unknown call-id');
    return { result: 'ok', 'last-frame-pos': 220 };
  };
  unsubscribe: PlayerControl['unsubscribe'] = async (request) => {
    this.record('unsubscribe', request);
    return { result: 'ok' };
  };
  subscribeRequest: PlayerControl['subscribeRequest'] = async (request) => {
    this.record('subscribe request', request);
    return { result: 'ok', sdp: 'v=0\r\n' } as Awaited<ReturnType<PlayerControl['subscribeRequest']>>;
  };
}

describe('RtpenginePlayer', () => {
  it('plays each chunk as a WAV blob to the listener, with whole packets per chunk inside the blob limit', async () => {
    const rtpengine = new FakeRtpengine();
    const player = new RtpenginePlayer({ rtpengine, callId: 'c1', listenerTag: 'caller-tag' });
    expect(player.sampleRate).toBe(8000);
    expect(player.maxChunkSamples % 160).toBe(0);
    expect(player.maxChunkSamples * 2 + 44).toBeLessThanOrEqual(MAX_BLOB_BYTES);
    const pcm = new Int16Array(3840).fill(1234);
    expect(await player.play(pcm)).toEqual({ durationMs: 480 });
    const [{ command, request }] = rtpengine.sent as [{ command: string; request: Record<string, unknown> }];
    expect(command).toBe('play media');
    expect(request['call-id']).toBe('c1');
    expect(request['from-tag']).toBe('caller-tag');
    const wav = parseWav(request.blob as Uint8Array);
    expect(wav.sampleRate).toBe(8000);
    expect(wav.channels[0]).toEqual(pcm);
    await expect(player.play(new Int16Array(player.maxChunkSamples + 160))).rejects.toThrow(RangeError);
  });

  it('mutes the other party towards the listener only (unsubscribe) before the first chunk and restores it on stop, even when stop media fails', async () => {
    const rtpengine = new FakeRtpengine();
    const player = new RtpenginePlayer({ rtpengine, callId: 'c1', listenerTag: 'A', otherTag: 'B' });
    await player.play(new Int16Array(160));
    await player.play(new Int16Array(160));
    rtpengine.failStop = true;
    await expect(player.stop()).rejects.toThrow('Unknown call-id');
    expect(rtpengine.sent.map((s) => s.command)).toEqual(['unsubscribe', 'play media', 'play media', 'stop media', 'subscribe request']);
    // Only B's flow to A: B's forks (its transcription) go on.
    expect(rtpengine.sent[0]!.request).toEqual({ 'call-id': 'c1', 'from-tag': 'B', 'to-tag': 'A' });
    expect(rtpengine.sent[4]!.request).toEqual({ 'call-id': 'c1', 'from-tag': 'B', 'to-tag': 'A' });
    // Stopping again does not restore twice; rtpengine's last frame position is passed on.
    rtpengine.failStop = false;
    expect(await player.stop()).toEqual({ positionMs: 220 });
    expect(rtpengine.sent.at(-1)!.command).toBe('stop media');
  });

  it('leaves the other party audible with passOther (interpretation that passes the original)', async () => {
    const rtpengine = new FakeRtpengine();
    const player = new RtpenginePlayer({ rtpengine, callId: 'c1', listenerTag: 'A', otherTag: 'B', passOther: true });
    await player.play(new Int16Array(160));
    await player.stop();
    expect(rtpengine.sent.map((s) => s.command)).toEqual(['play media', 'stop media']);
  });
});
