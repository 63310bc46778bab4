/**
 * CORS, opt-in (SPEC §3 r2): only origins listed in `CORS_ORIGINS` get CORS headers, on
 * `GET /`, `GET /health` and `/admin/...`; their `OPTIONS` preflight is answered 204 before
 * any token check. Every other origin (and every request without an `Origin`) is served
 * exactly as if CORS did not exist. Upgrade routes never get it: headers on a 101 break it.
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { configOf } from "./config";
import type { Env } from "./env";

const forListedOrigin = cors({
  // Called only for a listed origin (below), so the origin is echoed, never `*`.
  origin: (origin) => origin,
  allowMethods: ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"],
  allowHeaders: ["Authorization", "Content-Type"],
  // What a browser page needs to read: when to retry, and why a token was refused.
  exposeHeaders: ["Retry-After", "WWW-Authenticate"],
  maxAge: 600,
});

export const corsForListedOrigins: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  const origin = c.req.header("Origin");
  if (origin === undefined || !configOf(c.env).CORS_ORIGINS.has(origin)) return next();
  return forListedOrigin(c, next);
};
