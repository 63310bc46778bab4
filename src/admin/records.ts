/**
 * Directory records through the admin API (SPEC §8.2): Iotas and users, read, created,
 * replaced and removed. The token check runs before these routes (`guard.ts`).
 */
import { Hono } from "hono";
import { z } from "zod";
import { directoryOf } from "../directory";
import type { Env } from "../env";
import { jsonError } from "../http-error";
import { OMIKRON_ID, keyHashSchema, uuidSchema } from "../protocol";

/** A directory id: a UUID other than the Omikron's own. */
const directoryId = uuidSchema.refine((id) => id !== OMIKRON_ID, "is reserved for the Omikron");

const IotaBody = z.object({ private_key_hash: keyHashSchema });
const UserBody = z.object({ iota_id: directoryId, private_key_hash: keyHashSchema });

type Body<T> = { ok: true; value: T } | { ok: false; response: Response };

async function readBody<T>(request: Request, schema: z.ZodType<T>): Promise<Body<T>> {
  let json: unknown;
  try {
    json = await request.json();
  } catch {
    return { ok: false, response: jsonError(400, "invalid_json", "the body is not valid JSON") };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  const field = typeof issue?.path[0] === "string" ? issue.path[0] : "body";
  return { ok: false, response: jsonError(400, "invalid_body", `${field}: ${issue?.message ?? "invalid"}`, { field }) };
}

/** RFC 9110 §15.5.6: a 405 names the methods the resource supports. */
const methodNotAllowed = () => {
  const response = jsonError(405, "method_not_allowed", "use GET, PUT or DELETE");
  response.headers.set("Allow", "GET, PUT, DELETE");
  return response;
};

/** The record id from the path, or its 400, which comes before route and method (SPEC §8.2). */
export function recordId(raw: string): string | Response {
  const id = directoryId.safeParse(raw);
  return id.success ? id.data : jsonError(400, "invalid_id", "the path id must be a UUID other than the Omikron's");
}

const notFound = () => jsonError(404, "not_found", "no such record");

export const records = new Hono<{ Bindings: Env }>();

records.all("/iotas/:id", async (c) => {
  const id = recordId(c.req.param("id"));
  if (id instanceof Response) return id;
  const directory = directoryOf(c.env);
  switch (c.req.method) {
    case "GET":
    case "HEAD": {
      const record = await directory.getIota(id);
      return record ? c.json(record) : notFound();
    }
    case "PUT": {
      const body = await readBody(c.req.raw, IotaBody);
      if (!body.ok) return body.response;
      const { created, record } = await directory.putIota(id, body.value.private_key_hash);
      return c.json(record, created ? 201 : 200);
    }
    case "DELETE":
      return (await directory.deleteIota(id)) ? c.body(null, 204) : notFound();
    default:
      return methodNotAllowed();
  }
});

records.all("/users/:id", async (c) => {
  const id = recordId(c.req.param("id"));
  if (id instanceof Response) return id;
  const directory = directoryOf(c.env);
  switch (c.req.method) {
    case "GET":
    case "HEAD": {
      const record = await directory.getUser(id);
      return record ? c.json(record) : notFound();
    }
    case "PUT": {
      const body = await readBody(c.req.raw, UserBody);
      if (!body.ok) return body.response;
      const result = await directory.putUser(id, body.value.iota_id, body.value.private_key_hash);
      if (!result) return jsonError(404, "iota_not_found", "no Iota with that iota_id");
      return c.json(result.record, result.created ? 201 : 200);
    }
    case "DELETE":
      return (await directory.deleteUser(id)) ? c.body(null, 204) : notFound();
    default:
      return methodNotAllowed();
  }
});
