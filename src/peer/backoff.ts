/**
 * When to reconnect (SPEC §9 r2): after 1001 (idle), 1006 (abnormal, also any HTTP refusal of
 * the upgrade), 1011 (directory unavailable) and 4008 (identification timeout), with jittered
 * exponential backoff; never after 4001 (replaced: another socket of the same identity took
 * over) or 4003 (refused, or credential revoked), nor after codes the spec does not list
 * (1000 normal, 1008 rate, 1009 too large), which a retry would only repeat.
 */
const RETRYABLE: ReadonlySet<number> = new Set([1001, 1006, 1011, 4008]);

export function shouldReconnect(code: number): boolean {
  return RETRYABLE.has(code);
}

export interface BackoffOptions {
  /** First delay (ms); doubles per failed attempt. Default 500. */
  initialDelayMs: number;
  /** Largest delay (ms). Default 30 000. */
  maxDelayMs: number;
  /** Consecutive failed attempts before giving up (the first connect included). Default Infinity. */
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialDelayMs: 500, maxDelayMs: 30_000, maxAttempts: Infinity };

/**
 * The delay before attempt `attempt` (0 = the first retry): a uniformly drawn value between
 * half and all of the capped exponential delay, so a deploy that drops every socket at once is
 * not followed by every peer reconnecting in the same instant.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
