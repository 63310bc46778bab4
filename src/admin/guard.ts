/**
 * The admin API's gate (SPEC §8.2): 503 when no token is configured, then 401 for a missing
 * or wrong bearer token, before any route or body is looked at.
 */
import type { MiddlewareHandler } from "hono";
import { configOf } from "../config";
import { tokenMatches } from "../credentials";
import type { Env } from "../env";
import { jsonError } from "../http-error";

/** RFC 9110 §11.6.1: a 401 names the scheme to authenticate with. */
const unauthorized = () => {
  const response = jsonError(401, "unauthorized", "missing or wrong bearer token");
  response.headers.set("WWW-Authenticate", "Bearer");
  return response;
};

/** The presented bearer token, or "" when there is none. The scheme is case-insensitive (RFC 9110 §11.1). */
function bearerToken(header: string | undefined): string {
  return /^Bearer +(.+)$/i.exec(header ?? "")?.[1] ?? "";
}

export const guard: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  const token = configOf(c.env).ADMIN_TOKEN;
  if (!token) return jsonError(503, "admin_disabled", "the admin API is disabled: no ADMIN_TOKEN is configured");
  const presented = bearerToken(c.req.header("Authorization"));
  if (!presented || !(await tokenMatches(presented, token))) return unauthorized();
  await next();
};
