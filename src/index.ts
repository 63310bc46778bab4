/**
 * The Worker (SPEC §3): routes HTTP requests, validates path ids, and hands each WebSocket
 * upgrade to the Durable Object that owns it. Nothing here touches a Durable Object for
 * `GET /` or `GET /health`.
 */
import { Hono } from "hono";
import { version } from "../package.json";
import { admin } from "./admin";
import { clientAddress } from "./client-address";
import { ConfigError, configOf } from "./config";
import { corsForListedOrigins } from "./cors";
import type { Env } from "./env";
import { jsonError } from "./http-error";
import { log } from "./log";
import { OMIKRON_ID, normalizeId } from "./protocol";

export { CallRoom } from "./call-room";
export { Directory, UserRecord } from "./directory";
export { Hub } from "./hub";

const ENDPOINTS = ["/health", "/ws/iota/:iota_id", "/ws/client/:iota_id", "/ws/call/:call_id", "/admin/iotas/:iota_id", "/admin/users/:user_id", "/admin/iotas/:iota_id/presence", "/admin/calls/:call_id"];

const notFound = () => jsonError(404, "not_found", "no such endpoint");

const app = new Hono<{ Bindings: Env }>();

// Every request, /health included, first needs a valid configuration (SPEC §9 r2), so a health
// check sees a broken deployment instead of a green light over a relay that refuses sockets.
app.use("*", async (c, next) => {
  configOf(c.env);
  await next();
});

for (const path of ["/", "/health", "/admin", "/admin/*"]) app.use(path, corsForListedOrigins);

app.get("/", (c) => c.json({ name: "omikron", version, omikron_id: OMIKRON_ID, endpoints: ENDPOINTS }));

app.get("/health", (c) => c.json({ ok: true }));

app.get("/ws/:kind{iota|client|call}/:id", async (c) => {
  // Hono serves HEAD through GET routes; a WebSocket handshake is a GET only (RFC 6455 §4.1),
  // so a HEAD must not open a socket on the Durable Object.
  if (c.req.method !== "GET") return notFound();
  const id = normalizeId(c.req.param("id"));
  if (!id) return jsonError(400, "invalid_id", "the path id must be a UUID");
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    return jsonError(426, "upgrade_required", "this endpoint only accepts WebSocket upgrades");
  }
  // Admission per client address (SPEC §3 r2), before any Durable Object is touched, so a
  // flood of upgrades from one address costs no object anything.
  const { success } = await c.env.UPGRADE_LIMITER.limit({ key: clientAddress(c.req.raw) });
  if (!success) return jsonError(429, "too_many_upgrades", "too many WebSocket upgrades from this address; retry later");
  const kind = c.req.param("kind");
  const namespace = kind === "call" ? c.env.CALL_ROOM : c.env.HUB;
  // The object reads its role and id from the path, so hand it the lower-cased form.
  const url = new URL(c.req.url);
  url.pathname = `/ws/${kind}/${id}`;
  return namespace.get(namespace.idFromName(id)).fetch(new Request(url, c.req.raw));
});

app.route("/admin", admin);

app.notFound(notFound);

app.onError((err) => {
  if (err instanceof ConfigError) {
    log("config_invalid", { error: err.message, level: "error" });
    return jsonError(500, "config_invalid", err.message, { var: err.variable });
  }
  log("internal_error", { error: err.name, level: "error" });
  return jsonError(500, "internal_error", "the Omikron failed to handle this request");
});

export default app satisfies ExportedHandler<Env>;
