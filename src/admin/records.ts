/**
 * Directory records through the admin API (SPEC §8.2): Iotas and users, read, listed page by
 * page, created, replaced and removed. The token check runs before these routes (`guard.ts`).
 * A change whose pushes were not all applied in time answers 503 propagation_pending with
 * Retry-After: the change stands and the control's outbox keeps pushing (SPEC §8.1 r2).
 */
import { Hono } from "hono";
import { z } from "zod";
import { type AdminChange, controlOf } from "../directory";
import type { Env } from "../env";
import { jsonError } from "../http-error";
import { uuidSchema } from "../protocol";
import { IotaBody, UserBody, directoryIdSchema, listLimitSchema } from "./schemas";

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
const listingMethodNotAllowed = () => {
  const response = jsonError(405, "method_not_allowed", "use GET");
  response.headers.set("Allow", "GET");
  return response;
};

const methodNotAllowed = () => {
  const response = jsonError(405, "method_not_allowed", "use GET, PUT or DELETE");
  response.headers.set("Allow", "GET, PUT, DELETE");
  return response;
};

/** The record id from the path, or its 400, which comes before route and method (SPEC §8.2). */
export function recordId(raw: string): string | Response {
  const id = directoryIdSchema.safeParse(raw);
  return id.success ? id.data : jsonError(400, "invalid_id", "the path id must be a UUID other than the Omikron's");
}

const notFound = () => jsonError(404, "not_found", "no such record");

/** The change stands but has not reached every object concerned yet. */
function pending(retryAfter: number): Response {
  const response = jsonError(503, "propagation_pending", "the change is stored and is still being applied; it needs no repeating");
  response.headers.set("Retry-After", String(retryAfter));
  return response;
}

/** The reply to a change: `done` when every push was applied, else 503 (SPEC §8.1 r2). */
function answer(change: AdminChange, done: () => Response): Response {
  return change.retryAfter === null ? done() : pending(change.retryAfter);
}

/** `limit` 1–1000 (default 100) and an opaque `cursor`: the last id of the previous page. */
const PageQuery = z.object({
  limit: listLimitSchema,
  cursor: z
    .string()
    .transform((cursor, context) => {
      const id = decodeCursor(cursor);
      if (id === null) context.addIssue({ code: "custom", message: "is not a cursor this API gave out" });
      return id ?? "";
    })
    .optional(),
  iota_id: directoryIdSchema.optional(),
});

function encodeCursor(id: string): string {
  return btoa(id).replace(/=+$/, "");
}

function decodeCursor(cursor: string): string | null {
  try {
    return uuidSchema.safeParse(atob(cursor)).data ?? null;
  } catch {
    return null;
  }
}

type Page = z.infer<typeof PageQuery>;

function readPage(query: Record<string, string>, allowed: string[]): Page | Response {
  for (const name of Object.keys(query)) {
    if (!allowed.includes(name)) return jsonError(400, "invalid_query", `${name}: is not a parameter of this listing`, { field: name });
  }
  const result = PageQuery.safeParse(query);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = typeof issue?.path[0] === "string" ? issue.path[0] : "query";
  return jsonError(400, "invalid_query", `${field}: ${issue?.message ?? "invalid"}`, { field });
}

export const records = new Hono<{ Bindings: Env }>();

records.all("/iotas", async (c) => {
  if (c.req.method !== "GET" && c.req.method !== "HEAD") return listingMethodNotAllowed();
  const query = readPage(c.req.query(), ["limit", "cursor"]);
  if (query instanceof Response) return query;
  const { items, next } = await controlOf(c.env).listIotas(query.limit, query.cursor ?? null);
  return c.json({ iotas: items, next_cursor: next && encodeCursor(next) });
});

records.all("/users", async (c) => {
  if (c.req.method !== "GET" && c.req.method !== "HEAD") return listingMethodNotAllowed();
  const query = readPage(c.req.query(), ["limit", "cursor", "iota_id"]);
  if (query instanceof Response) return query;
  const { items, next } = await controlOf(c.env).listUsers(query.limit, query.cursor ?? null, query.iota_id ?? null);
  return c.json({ users: items, next_cursor: next && encodeCursor(next) });
});

records.all("/iotas/:id", async (c) => {
  const id = recordId(c.req.param("id"));
  if (id instanceof Response) return id;
  const directory = controlOf(c.env);
  switch (c.req.method) {
    case "GET":
    case "HEAD": {
      const record = await directory.getIota(id);
      return record ? c.json(record) : notFound();
    }
    case "PUT": {
      const body = await readBody(c.req.raw, IotaBody);
      if (!body.ok) return body.response;
      const result = await directory.putIota(id, body.value.private_key_hash);
      return answer(result, () => c.json(result.record, result.created ? 201 : 200));
    }
    case "DELETE": {
      const result = await directory.deleteIota(id);
      return result ? answer(result, () => c.body(null, 204)) : notFound();
    }
    default:
      return methodNotAllowed();
  }
});

records.all("/users/:id", async (c) => {
  const id = recordId(c.req.param("id"));
  if (id instanceof Response) return id;
  const directory = controlOf(c.env);
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
      return answer(result, () => c.json(result.record, result.created ? 201 : 200));
    }
    case "DELETE": {
      const result = await directory.deleteUser(id);
      return result ? answer(result, () => c.body(null, 204)) : notFound();
    }
    default:
      return methodNotAllowed();
  }
});
