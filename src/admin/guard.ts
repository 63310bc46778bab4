/**
 * The admin API's gate (SPEC §8.2): 503 when no token is configured; 429 for an address over
 * its budget of wrong tokens, before the token is compared; 401 for a missing or wrong bearer
 * token; 413 for a body over 64 KiB; all before any route or body is looked at.
 */
import type { MiddlewareHandler } from "hono";
import { clientAddress } from "../client-address";
import { configOf } from "../config";
import { tokenMatches } from "../credentials";
import type { Env } from "../env";
import { jsonError } from "../http-error";

/** The largest admin request body (SPEC §8.2 r2); every valid body is far smaller. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

/**
 * How long an address that ran out of its failure budget is answered 429 without a look at
 * its token. The platform's limiter can only count (every call spends), so the verdict is
 * remembered here; 10 s is its shortest period, so this never outlasts a window, and once it
 * lapses the next wrong token asks the limiter again.
 */
const LOCKED_MS = 10_000;

/** Addresses over their failure budget in this isolate, with when that verdict lapses. */
const locked = new Map<string, number>();
/** Bounds `locked`: an attacker spreading over many addresses cannot grow it without end. */
const MAX_LOCKED = 10_000;

/** RFC 9110 §11.6.1: a 401 names the scheme to authenticate with. */
const unauthorized = () => {
  const response = jsonError(401, "unauthorized", "missing or wrong bearer token");
  response.headers.set("WWW-Authenticate", "Bearer");
  return response;
};

const tooManyFailures = () => {
  const response = jsonError(429, "too_many_failures", "too many wrong admin tokens from this address; retry later");
  response.headers.set("Retry-After", String(LOCKED_MS / 1_000));
  return response;
};

const tooLarge = () => jsonError(413, "body_too_large", `the body exceeds ${MAX_ADMIN_BODY_BYTES} bytes`);

/** The presented bearer token, or "" when there is none. The scheme is case-insensitive (RFC 9110 §11.1). */
function bearerToken(header: string | undefined): string {
  return /^Bearer +(.+)$/i.exec(header ?? "")?.[1] ?? "";
}

function isLocked(address: string, now: number): boolean {
  const until = locked.get(address);
  if (until === undefined) return false;
  if (until > now) return true;
  locked.delete(address);
  return false;
}

/** Counts one wrong token against the address; answers whether it is now over its budget. */
async function overBudget(limiter: RateLimit, address: string, now: number): Promise<boolean> {
  const { success } = await limiter.limit({ key: address });
  if (success) return false;
  if (locked.size >= MAX_LOCKED) locked.clear();
  locked.set(address, now + LOCKED_MS);
  return true;
}

/**
 * The body, if it is at most the limit: a declared length decides at once; a body sent
 * without one (chunked) is read up to one byte past the limit and no further.
 */
async function boundedBody(request: Request): Promise<Uint8Array | "too_large" | null> {
  const declared = request.headers.get("Content-Length");
  if (declared !== null && Number(declared) > MAX_ADMIN_BODY_BYTES) return "too_large";
  if (!request.body || declared !== null) return null;
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_ADMIN_BODY_BYTES) {
      await reader.cancel();
      return "too_large";
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

export const guard: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  const token = configOf(c.env).ADMIN_TOKEN;
  if (!token) return jsonError(503, "admin_disabled", "the admin API is disabled: no ADMIN_TOKEN is configured");
  const address = clientAddress(c.req.raw);
  const now = Date.now();
  if (isLocked(address, now)) return tooManyFailures();
  const presented = bearerToken(c.req.header("Authorization"));
  if (!presented || !(await tokenMatches(presented, token))) {
    return (await overBudget(c.env.ADMIN_FAILURE_LIMITER, address, now)) ? tooManyFailures() : unauthorized();
  }
  const body = await boundedBody(c.req.raw);
  if (body === "too_large") return tooLarge();
  // A body read to measure it is handed on as the request's body, so routes read it as usual.
  if (body) c.req.raw = new Request(c.req.raw, { body });
  await next();
};
