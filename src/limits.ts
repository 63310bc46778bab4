/**
 * Per-socket limits (SPEC §9): frame size, and the frame and byte token buckets with their
 * rejection episodes.
 */
import type { Config } from "./config";

/**
 * The size SPEC §9 measures: UTF-8 length of a text frame, byte length of a binary one.
 * Counted, not encoded: every frame is measured for the byte bucket, and encoding allocated a
 * buffer per frame (in workerd through a runtime binding), a visible share of a relayed
 * message's cost. Lone surrogates count 3 bytes, as TextEncoder writes U+FFFD for them.
 */
export function frameBytes(message: string | ArrayBuffer): number {
  if (typeof message !== "string") return message.byteLength;
  let bytes = 0;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (message.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** Whether a frame is over the limit, without measuring it when its length alone decides. */
export function isOversize(message: string | ArrayBuffer, maxBytes: number): boolean {
  if (typeof message === "string") {
    // A UTF-16 code unit encodes to 1..3 UTF-8 bytes, so most frames are decided by length.
    if (message.length > maxBytes) return true;
    if (message.length * 3 <= maxBytes) return false;
  }
  return frameBytes(message) > maxBytes;
}

/**
 * What happens to one message: passed, dropped, the first rejection of an episode (answered
 * `error_rate_limited`), or the end of the socket (close 1008).
 */
export type RateVerdict = "pass" | "reject" | "drop" | "close";

export interface RateSettings {
  perSecond: number;
  burst: number;
  bytesPerSecond: number;
  bytesBurst: number;
  closeAfterMs: number;
}

/** The buckets of a client or call socket (SPEC §9). */
export function peerRateSettings(config: Config): RateSettings {
  return {
    perSecond: config.RATE_LIMIT_PER_SEC,
    burst: config.RATE_LIMIT_BURST,
    bytesPerSecond: config.RATE_LIMIT_BYTES_PER_SEC,
    bytesBurst: config.RATE_LIMIT_BYTES_BURST,
    closeAfterMs: config.RATE_LIMIT_CLOSE_AFTER_MS,
  };
}

/** The buckets of an Iota socket, which carries all its users' traffic (SPEC §9). */
export function iotaRateSettings(config: Config): RateSettings {
  return {
    perSecond: config.IOTA_RATE_LIMIT_PER_SEC,
    burst: config.IOTA_RATE_LIMIT_BURST,
    bytesPerSecond: config.IOTA_RATE_LIMIT_BYTES_PER_SEC,
    bytesBurst: config.IOTA_RATE_LIMIT_BYTES_BURST,
    closeAfterMs: config.RATE_LIMIT_CLOSE_AFTER_MS,
  };
}

/** An episode ends after this long with no rejection (SPEC §9). */
const EPISODE_QUIET_MS = 1_000;

/**
 * Two token buckets, frames and bytes, sharing one episode. The state lives in memory only:
 * an object hibernates only after its sockets have been quiet for seconds, by which time any
 * bucket has refilled and any episode has ended, so waking with full buckets changes nothing
 * a peer can observe.
 *
 * An episode closes the socket when it has lasted `closeAfterMs`, or (SPEC §9 r2) as soon as
 * it has dropped more frames than the frame burst: a flood is cut within milliseconds.
 */
export class RateLimiter {
  private frames: number;
  private bytes: number;
  private last: number;
  private episodeStart: number | null = null;
  private lastRejection = 0;
  /** Frames rejected in this episode after its first (answered) one. */
  private dropped = 0;

  constructor(private readonly settings: RateSettings, now: number) {
    this.frames = settings.burst;
    this.bytes = settings.bytesBurst;
    this.last = now;
  }

  /**
   * Judges one arriving frame. It is measured only once the frame bucket has a token, so a
   * frame rejected on count alone costs no work beyond this call.
   */
  take(now: number, message: string | ArrayBuffer): RateVerdict {
    this.refill(now);
    if (this.frames >= 1) {
      const bytes = frameBytes(message);
      if (this.bytes >= bytes) {
        this.frames -= 1;
        this.bytes -= bytes;
        return "pass";
      }
    }
    return this.rejection(now);
  }

  /**
   * Charges bytes a frame that already passed causes beyond its own arrival (a call
   * broadcast, once per further receiver, SPEC §9 r2). Short of them, the frame is over the
   * limit with the same episode rules, and nothing is charged.
   */
  spend(now: number, bytes: number): RateVerdict {
    this.refill(now);
    if (this.bytes >= bytes) {
      this.bytes -= bytes;
      return "pass";
    }
    return this.rejection(now);
  }

  private refill(now: number): void {
    const { perSecond, burst, bytesPerSecond, bytesBurst } = this.settings;
    const elapsed = Math.max(0, now - this.last);
    this.frames = Math.min(burst, this.frames + (elapsed * perSecond) / 1_000);
    this.bytes = Math.min(bytesBurst, this.bytes + (elapsed * bytesPerSecond) / 1_000);
    this.last = now;
    if (this.episodeStart !== null && now - this.lastRejection >= EPISODE_QUIET_MS) this.episodeStart = null;
  }

  private rejection(now: number): RateVerdict {
    this.lastRejection = now;
    if (this.episodeStart === null) {
      this.episodeStart = now;
      this.dropped = 0;
      return "reject";
    }
    this.dropped++;
    if (this.dropped > this.settings.burst || now - this.episodeStart >= this.settings.closeAfterMs) return "close";
    return "drop";
  }
}
