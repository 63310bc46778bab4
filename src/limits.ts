/**
 * Per-socket limits (SPEC §9): frame size and the token-bucket rate limit with its episodes.
 */
const encoder = new TextEncoder();

/** The size SPEC §9 measures: UTF-8 length of a text frame, byte length of a binary one. */
export function frameBytes(message: string | ArrayBuffer): number {
  if (typeof message !== "string") return message.byteLength;
  return encoder.encode(message).byteLength;
}

/** Whether a frame is over the limit, without encoding it when its length alone decides. */
export function isOversize(message: string | ArrayBuffer, maxBytes: number): boolean {
  if (typeof message === "string") {
    // A UTF-16 code unit encodes to 1..3 UTF-8 bytes, so most frames are decided by length.
    if (message.length > maxBytes) return true;
    if (message.length * 3 <= maxBytes) return false;
  }
  return frameBytes(message) > maxBytes;
}

/** What happens to one message: passed, dropped, or the first rejection of an episode. */
export type RateVerdict = "pass" | "reject" | "drop" | "close";

export interface RateSettings {
  perSecond: number;
  burst: number;
  closeAfterMs: number;
}

/** An episode ends after this long with no rejection (SPEC §9). */
const EPISODE_QUIET_MS = 1_000;

/**
 * A token bucket. Its state lives in memory only: an object hibernates only after its sockets
 * have been quiet for seconds, by which time any bucket has refilled and any episode has ended,
 * so waking with a full bucket changes nothing a peer can observe.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;
  private episodeStart: number | null = null;
  private lastRejection = 0;

  constructor(private readonly settings: RateSettings, now: number) {
    this.tokens = settings.burst;
    this.last = now;
  }

  take(now: number): RateVerdict {
    const { perSecond, burst, closeAfterMs } = this.settings;
    this.tokens = Math.min(burst, this.tokens + ((now - this.last) * perSecond) / 1_000);
    this.last = now;
    if (this.episodeStart !== null && now - this.lastRejection >= EPISODE_QUIET_MS) this.episodeStart = null;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return "pass";
    }
    this.lastRejection = now;
    if (this.episodeStart === null) {
      this.episodeStart = now;
      return "reject";
    }
    return now - this.episodeStart >= closeAfterMs ? "close" : "drop";
  }
}
