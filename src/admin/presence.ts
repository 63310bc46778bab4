/**
 * Live presence through the admin API (SPEC §8.2): who is connected to an Iota's hub, and
 * who is in a call. Each answer comes from the one object that holds those sockets, so it is
 * as current as the relay itself; nothing is stored to answer it (SPEC §4).
 */
import { Hono } from "hono";
import type { Env } from "../env";
import { jsonError } from "../http-error";
import { normalizeId } from "../protocol";
import { recordId } from "./records";

/** RFC 9110 §15.5.6: a 405 names the methods the resource supports. */
const methodNotAllowed = () => {
  const response = jsonError(405, "method_not_allowed", "use GET");
  response.headers.set("Allow", "GET, HEAD");
  return response;
};

const isRead = (method: string) => method === "GET" || method === "HEAD";

export const presence = new Hono<{ Bindings: Env }>();

/**
 * An Iota that is not registered is simply not online: the hub holds sockets, not records,
 * so this answers for any valid id (GET /admin/iotas/:iota_id tells whether it exists).
 */
presence.all("/iotas/:id/presence", async (c) => {
  const id = recordId(c.req.param("id"));
  if (id instanceof Response) return id;
  if (!isRead(c.req.method)) return methodNotAllowed();
  const hub = c.env.HUB.get(c.env.HUB.idFromName(id));
  return c.json({ iota_id: id, ...(await hub.presence()) });
});

/** Any UUID names a call, as on `/ws/call/:call_id`; an empty room is `404` (SPEC §8.2). */
presence.all("/calls/:id", async (c) => {
  const id = normalizeId(c.req.param("id"));
  if (!id) return jsonError(400, "invalid_id", "the path id must be a UUID");
  if (!isRead(c.req.method)) return methodNotAllowed();
  const room = c.env.CALL_ROOM.get(c.env.CALL_ROOM.idFromName(id));
  const members = await room.roster();
  if (Object.keys(members).length === 0) return jsonError(404, "not_found", "nobody is in this call");
  return c.json({ call_id: id, members });
});
