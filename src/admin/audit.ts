/**
 * Logs every admin write (SPEC §8.2, §11): method, record kind, id and the status answered,
 * never the body. It runs before the token check, so refused attempts (401, 429, 503) are on
 * the record too: an operator sees who tried to change what, not only what changed.
 */
import type { MiddlewareHandler } from "hono";
import type { Env } from "../env";
import { log } from "../log";
import { normalizeId } from "../protocol";

const READS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Path collections and the record kind each holds. */
const KINDS: Record<string, string> = { iotas: "iota", users: "user", calls: "call" };

export const audit: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  await next();
  const method = c.req.method;
  if (READS.has(method)) return;
  // Only known words and UUIDs from the path are written, whatever a caller put there.
  const [collection, id] = new URL(c.req.url).pathname.split("/").slice(2);
  log("admin_write", {
    method,
    kind: collection === undefined ? undefined : KINDS[collection],
    id: normalizeId(id) ?? undefined,
    status: c.res.status,
    level: c.res.status >= 500 ? "error" : c.res.status >= 400 ? "warn" : "info",
  });
};
