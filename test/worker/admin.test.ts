/**
 * The admin API (SPEC §8.2): token checks, the order of checks, every status code, record
 * bodies, body validation, and that no reply ever carries a credential (SPEC §8.1).
 */
import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import {
  ADMIN_TOKEN,
  type Account,
  OMIKRON_ID,
  adminFetch,
  clientIdentification,
  connect,
  createIota,
  createUser,
  fetchWorker,
  iotaIdentification,
  keyHash,
  sha256Hex,
  uuid,
} from "./support";

const anyMessage = expect.any(String);

/** Every form in which a credential could leak: as sent, in either case, and as stored. */
async function leakFormsOf(key: string): Promise<string[]> {
  return [key, key.toLowerCase(), key.toUpperCase(), await sha256Hex(key.toLowerCase()), await sha256Hex(key)];
}

interface Reply {
  status: number;
  text: string;
  headers: Headers;
}

/** Reads a reply and checks that its body and headers carry none of the given credentials. */
async function read(response: Response, keys: string[] = []): Promise<Reply> {
  const text = await response.text();
  const headerText = [...response.headers].map(([name, value]) => `${name}: ${value}`).join("\n");
  for (const key of keys) {
    for (const form of await leakFormsOf(key)) {
      expect(text).not.toContain(form);
      expect(headerText).not.toContain(form);
    }
  }
  return { status: response.status, text, headers: response.headers };
}

function json(reply: Reply): unknown {
  return JSON.parse(reply.text);
}

/** A request with any Authorization header (or none), for the token checks. */
function withAuthorization(path: string, authorization: string | null, method = "GET", body?: string): Promise<Response> {
  const headers = new Headers({ "Content-Type": "application/json" });
  if (authorization !== null) headers.set("Authorization", authorization);
  return fetchWorker(`/admin${path}`, { method, headers, body });
}

/** Calls the Worker module directly with ADMIN_TOKEN replaced, as a deployment without the secret. */
function fetchWithToken(token: string | undefined, path: string, init: RequestInit = {}): Promise<Response> {
  const request = new Request(`http://omikron.test/admin${path}`, init);
  return Promise.resolve(worker.fetch(request, { ...env, ADMIN_TOKEN: token }, createExecutionContext()));
}

function rawAdmin(path: string, method: string, body: string): Promise<Response> {
  return withAuthorization(path, `Bearer ${ADMIN_TOKEN}`, method, body);
}

describe("admin API: the configured token (SPEC §8.2)", () => {
  it.each([
    ["no ADMIN_TOKEN at all", undefined],
    ["an empty ADMIN_TOKEN", ""],
    ["an ADMIN_TOKEN of only whitespace", " \n"],
  ])("answers every /admin request 503 admin_disabled when there is %s", async (_name, token) => {
    const iotaId = uuid();
    const requests: [string, RequestInit][] = [
      [`/iotas/${iotaId}`, {}],
      [`/iotas/${iotaId}`, { method: "PUT", body: JSON.stringify({ private_key_hash: keyHash() }) }],
      [`/users/${uuid()}`, { method: "DELETE", headers: { Authorization: "Bearer " } }],
      [`/iotas/${iotaId}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } }],
      ["/iotas/not-a-uuid", { method: "POST", body: "{" }],
      ["/nothing/here", {}],
    ];
    for (const [path, init] of requests) {
      const reply = await read(await fetchWithToken(token, path, init));
      expect(reply.status).toBe(503);
      expect(json(reply)).toEqual({ error: "admin_disabled", message: anyMessage });
    }
  });

  it("creates nothing while disabled", async () => {
    const iotaId = uuid();
    const key = keyHash();
    const disabled = await fetchWithToken(undefined, `/iotas/${iotaId}`, {
      method: "PUT",
      headers: { Authorization: "Bearer " },
      body: JSON.stringify({ private_key_hash: key }),
    });
    expect(disabled.status).toBe(503);
    const reply = await read(await adminFetch(`/iotas/${iotaId}`));
    expect(reply.status).toBe(404);
    expect(json(reply)).toEqual({ error: "not_found", message: anyMessage });
  });

  it("accepts a configured token whose secret ends in a newline", async () => {
    const iotaId = uuid();
    const reply = await read(
      await fetchWithToken(`${ADMIN_TOKEN}\n`, `/iotas/${iotaId}`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify({ private_key_hash: keyHash() }),
      }),
    );
    expect(reply.status).toBe(201);
    expect(json(reply)).toEqual({ iota_id: iotaId, users: [] });
  });

  it("serves the admin API through the same module when the token is configured", async () => {
    const iotaId = uuid();
    const reply = await read(
      await fetchWithToken(ADMIN_TOKEN, `/iotas/${iotaId}`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify({ private_key_hash: keyHash() }),
      }),
    );
    expect(reply.status).toBe(201);
    expect(json(reply)).toEqual({ iota_id: iotaId, users: [] });
  });
});

describe("admin API: bearer token (SPEC §8.2)", () => {
  it.each([
    ["no Authorization header", null],
    ["an empty Authorization header", ""],
    ["a wrong token", "Bearer wrong-token"],
    ["the token with a suffix", `Bearer ${ADMIN_TOKEN}x`],
    ["a prefix of the token", `Bearer ${ADMIN_TOKEN.slice(0, -1)}`],
    ["the token in another case", `Bearer ${ADMIN_TOKEN.toUpperCase()}`],
    ["the Basic scheme", `Basic ${ADMIN_TOKEN}`],
    ["the token with no scheme", ADMIN_TOKEN],
    ["the scheme with no token", "Bearer"],
    ["the scheme and a space with no token", "Bearer "],
  ])("answers 401 unauthorized for %s", async (_name, authorization) => {
    const reply = await read(await withAuthorization(`/iotas/${uuid()}`, authorization));
    expect(reply.status).toBe(401);
    expect(json(reply)).toEqual({ error: "unauthorized", message: anyMessage });
    expect(reply.headers.get("WWW-Authenticate")).toBe("Bearer");
    expect(reply.text).not.toContain(ADMIN_TOKEN);
  });

  it("accepts the Bearer scheme in any case, as HTTP authentication schemes are case-insensitive", async () => {
    const iotaId = uuid();
    const put = await withAuthorization(`/iotas/${iotaId}`, `bearer ${ADMIN_TOKEN}`, "PUT", JSON.stringify({ private_key_hash: keyHash() }));
    expect(put.status).toBe(201);
    const get = await read(await withAuthorization(`/iotas/${iotaId}`, `BEARER ${ADMIN_TOKEN}`));
    expect(get.status).toBe(200);
    expect(json(get)).toEqual({ iota_id: iotaId, users: [] });
  });

  it("changes nothing when the token is wrong", async () => {
    const iotaId = uuid();
    const put = await withAuthorization(`/iotas/${iotaId}`, "Bearer wrong-token", "PUT", JSON.stringify({ private_key_hash: keyHash() }));
    expect(put.status).toBe(401);
    expect((await adminFetch(`/iotas/${iotaId}`)).status).toBe(404);
  });
});

describe("admin API: order of checks (SPEC §8.2)", () => {
  it("checks the token before the path id, the route, the method and the body", async () => {
    for (const [path, method, body] of [
      ["/iotas/not-a-uuid", "GET", undefined],
      [`/iotas/${OMIKRON_ID}`, "PUT", "{"],
      [`/users/${uuid()}`, "POST", "{"],
      ["/unknown", "GET", undefined],
      [`/iotas/${uuid()}`, "PUT", "not json"],
    ] as const) {
      const reply = await read(await withAuthorization(path, null, method, body));
      expect(reply.status).toBe(401);
      expect(json(reply)).toEqual({ error: "unauthorized", message: anyMessage });
    }
  });

  it("checks the path id before the method and the body", async () => {
    for (const [path, method, body] of [
      ["/iotas/not-a-uuid", "POST", "{"],
      ["/users/not-a-uuid", "PATCH", "{"],
      ["/iotas/not-a-uuid", "PUT", "{"],
      ["/users/not-a-uuid", "PUT", JSON.stringify({ iota_id: "bad" })],
    ] as const) {
      const reply = await read(await rawAdmin(path, method, body));
      expect(reply.status).toBe(400);
      expect(json(reply)).toEqual({ error: "invalid_id", message: anyMessage });
    }
  });

  it("checks the method before the body", async () => {
    for (const [path, method] of [
      [`/iotas/${uuid()}`, "POST"],
      [`/users/${uuid()}`, "POST"],
      [`/iotas/${uuid()}`, "PATCH"],
      [`/users/${uuid()}`, "PATCH"],
    ] as const) {
      const reply = await read(await rawAdmin(path, method, "{"));
      expect(reply.status).toBe(405);
      expect(json(reply)).toEqual({ error: "method_not_allowed", message: anyMessage });
      expect(reply.headers.get("Allow")).toBe("GET, PUT, DELETE");
    }
  });

  it.each([
    ["the admin root", ""],
    ["the admin root with a slash", "/"],
    ["the Iota collection with a slash", "/iotas/"],
    ["the user collection", "/users/"],
    ["an unknown collection", `/calls/${uuid()}`],
    ["a path below a record", `/iotas/${uuid()}/users`],
  ])("answers 404 not_found for %s", async (_name, path) => {
    const reply = await read(await adminFetch(path));
    expect(reply.status).toBe(404);
    expect(json(reply)).toEqual({ error: "not_found", message: anyMessage });
  });
});

describe("admin API: path ids (SPEC §8.2)", () => {
  it.each([
    ["a non-UUID", "not-a-uuid"],
    ["a UUID missing a digit", "0b6f3a5e-1c2d-4e5f-8a9b-0c1d2e3f4a5"],
    ["a UUID without dashes", "0b6f3a5e1c2d4e5f8a9b0c1d2e3f4a5b"],
    ["OMIKRON_ID", OMIKRON_ID],
  ])("answers 400 invalid_id for %s as an Iota or user id, whatever the method", async (_name, id) => {
    for (const collection of ["iotas", "users"]) {
      for (const method of ["GET", "DELETE"]) {
        const reply = await read(await adminFetch(`/${collection}/${id}`, method));
        expect(reply.status).toBe(400);
        expect(json(reply)).toEqual({ error: "invalid_id", message: anyMessage });
      }
    }
    const iota = await read(await adminFetch(`/iotas/${id}`, "PUT", { private_key_hash: keyHash() }));
    expect(iota.status).toBe(400);
    expect(json(iota)).toEqual({ error: "invalid_id", message: anyMessage });
    const owner = await createIota();
    const user = await read(await adminFetch(`/users/${id}`, "PUT", { iota_id: owner.id, private_key_hash: keyHash() }));
    expect(user.status).toBe(400);
    expect(json(user)).toEqual({ error: "invalid_id", message: anyMessage });
  });

  it("treats an upper-case path id as the same record, answering it in lower case", async () => {
    const iotaId = uuid();
    const created = await read(await adminFetch(`/iotas/${iotaId.toUpperCase()}`, "PUT", { private_key_hash: keyHash() }));
    expect(created.status).toBe(201);
    expect(json(created)).toEqual({ iota_id: iotaId, users: [] });
    const userId = uuid();
    const user = await read(await adminFetch(`/users/${userId.toUpperCase()}`, "PUT", { iota_id: iotaId.toUpperCase(), private_key_hash: keyHash() }));
    expect(user.status).toBe(201);
    expect(json(user)).toEqual({ user_id: userId, iota_id: iotaId });
    const iota = await read(await adminFetch(`/iotas/${iotaId}`));
    expect(json(iota)).toEqual({ iota_id: iotaId, users: [userId] });
    const byUpper = await read(await adminFetch(`/users/${userId.toUpperCase()}`));
    expect(json(byUpper)).toEqual({ user_id: userId, iota_id: iotaId });
  });
});

describe("admin API: Iotas (SPEC §8.2)", () => {
  it("creates an Iota with 201 and replaces it with 200, answering what GET answers", async () => {
    const iotaId = uuid();
    const first = keyHash();
    const second = keyHash();
    const created = await read(await adminFetch(`/iotas/${iotaId}`, "PUT", { private_key_hash: first }), [first]);
    expect(created.status).toBe(201);
    expect(json(created)).toEqual({ iota_id: iotaId, users: [] });
    expect(created.headers.get("Content-Type")).toMatch(/^application\/json/);
    const got = await read(await adminFetch(`/iotas/${iotaId}`), [first]);
    expect(got.status).toBe(200);
    expect(json(got)).toEqual(json(created));
    const replaced = await read(await adminFetch(`/iotas/${iotaId}`, "PUT", { private_key_hash: second }), [first, second]);
    expect(replaced.status).toBe(200);
    expect(json(replaced)).toEqual({ iota_id: iotaId, users: [] });
    const unchanged = await read(await adminFetch(`/iotas/${iotaId}`, "PUT", { private_key_hash: second }), [second]);
    expect(unchanged.status).toBe(200);
    expect(json(unchanged)).toEqual({ iota_id: iotaId, users: [] });
  });

  it("lists an Iota's users and answers the same list when the Iota is replaced", async () => {
    const iota = await createIota();
    const a = await createUser(iota);
    const b = await createUser(iota);
    const other = await createIota();
    await createUser(other);
    const got = await read(await adminFetch(`/iotas/${iota.id}`), [iota.key, a.key, b.key]);
    expect(got.status).toBe(200);
    const record = json(got) as { iota_id: string; users: string[] };
    expect(Object.keys(record).sort()).toEqual(["iota_id", "users"]);
    expect(record.iota_id).toBe(iota.id);
    expect([...record.users].sort()).toEqual([a.id, b.id].sort());
    const replaced = await read(await adminFetch(`/iotas/${iota.id}`, "PUT", { private_key_hash: keyHash() }), [iota.key]);
    expect(replaced.status).toBe(200);
    expect(json(replaced)).toEqual(record);
  });

  it("answers HEAD of an Iota like GET, without a body", async () => {
    const iota = await createIota();
    const known = await adminFetch(`/iotas/${iota.id}`, "HEAD");
    expect(known.status).toBe(200);
    expect(await known.text()).toBe("");
    const unknown = await adminFetch(`/iotas/${uuid()}`, "HEAD");
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toBe("");
  });

  it("answers 404 not_found to GET and DELETE of an unknown Iota", async () => {
    for (const method of ["GET", "DELETE"]) {
      const reply = await read(await adminFetch(`/iotas/${uuid()}`, method));
      expect(reply.status).toBe(404);
      expect(json(reply)).toEqual({ error: "not_found", message: anyMessage });
    }
  });

  it("deletes an Iota with 204 and an empty body, after which it is unknown", async () => {
    const iota = await createIota();
    const deleted = await adminFetch(`/iotas/${iota.id}`, "DELETE");
    expect(deleted.status).toBe(204);
    expect(await deleted.text()).toBe("");
    const got = await read(await adminFetch(`/iotas/${iota.id}`));
    expect(got.status).toBe(404);
    expect(json(got)).toEqual({ error: "not_found", message: anyMessage });
    const again = await read(await adminFetch(`/iotas/${iota.id}`, "DELETE"));
    expect(again.status).toBe(404);
    expect(json(again)).toEqual({ error: "not_found", message: anyMessage });
  });

  it("keeps a deleted Iota's users, owned by nobody, and a re-created Iota does not reclaim them", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    expect((await adminFetch(`/iotas/${iota.id}`, "DELETE")).status).toBe(204);
    const orphan = await read(await adminFetch(`/users/${user.id}`), [user.key]);
    expect(orphan.status).toBe(200);
    expect(orphan.text).toBe(JSON.stringify({ user_id: user.id, iota_id: null }));
    const recreated = await read(await adminFetch(`/iotas/${iota.id}`, "PUT", { private_key_hash: iota.key }), [iota.key]);
    expect(recreated.status).toBe(201);
    expect(json(recreated)).toEqual({ iota_id: iota.id, users: [] });
    expect(json(await read(await adminFetch(`/users/${user.id}`)))).toEqual({ user_id: user.id, iota_id: null });
  });
});

describe("admin API: users (SPEC §8.2)", () => {
  it("creates a user with 201 and replaces it with 200, answering what GET answers", async () => {
    const iota = await createIota();
    const userId = uuid();
    const first = keyHash();
    const second = keyHash();
    const created = await read(await adminFetch(`/users/${userId}`, "PUT", { iota_id: iota.id, private_key_hash: first }), [first]);
    expect(created.status).toBe(201);
    expect(json(created)).toEqual({ user_id: userId, iota_id: iota.id });
    const got = await read(await adminFetch(`/users/${userId}`), [first]);
    expect(got.status).toBe(200);
    expect(json(got)).toEqual(json(created));
    const replaced = await read(await adminFetch(`/users/${userId}`, "PUT", { iota_id: iota.id, private_key_hash: second }), [first, second]);
    expect(replaced.status).toBe(200);
    expect(json(replaced)).toEqual({ user_id: userId, iota_id: iota.id });
  });

  it("moves a user to another Iota, which then lists it while the first does not", async () => {
    const from = await createIota();
    const to = await createIota();
    const user = await createUser(from);
    const moved = await read(await adminFetch(`/users/${user.id}`, "PUT", { iota_id: to.id, private_key_hash: user.key }), [user.key]);
    expect(moved.status).toBe(200);
    expect(json(moved)).toEqual({ user_id: user.id, iota_id: to.id });
    expect(json(await read(await adminFetch(`/iotas/${from.id}`)))).toEqual({ iota_id: from.id, users: [] });
    expect(json(await read(await adminFetch(`/iotas/${to.id}`)))).toEqual({ iota_id: to.id, users: [user.id] });
  });

  it("refuses a user under an Iota that does not exist with 404 iota_not_found and creates nothing", async () => {
    const userId = uuid();
    const key = keyHash();
    const reply = await read(await adminFetch(`/users/${userId}`, "PUT", { iota_id: uuid(), private_key_hash: key }), [key]);
    expect(reply.status).toBe(404);
    expect(json(reply)).toEqual({ error: "iota_not_found", message: anyMessage });
    expect((await adminFetch(`/users/${userId}`)).status).toBe(404);
  });

  it("refuses to move a user under a deleted Iota and leaves the user where it was", async () => {
    const home = await createIota();
    const gone = await createIota();
    const user = await createUser(home);
    expect((await adminFetch(`/iotas/${gone.id}`, "DELETE")).status).toBe(204);
    const reply = await read(await adminFetch(`/users/${user.id}`, "PUT", { iota_id: gone.id, private_key_hash: user.key }));
    expect(reply.status).toBe(404);
    expect(json(reply)).toEqual({ error: "iota_not_found", message: anyMessage });
    expect(json(await read(await adminFetch(`/users/${user.id}`)))).toEqual({ user_id: user.id, iota_id: home.id });
  });

  it("gives an orphaned user a new Iota with 200", async () => {
    const old = await createIota();
    const user = await createUser(old);
    expect((await adminFetch(`/iotas/${old.id}`, "DELETE")).status).toBe(204);
    const next = await createIota();
    const reply = await read(await adminFetch(`/users/${user.id}`, "PUT", { iota_id: next.id, private_key_hash: user.key }));
    expect(reply.status).toBe(200);
    expect(json(reply)).toEqual({ user_id: user.id, iota_id: next.id });
  });

  it("answers HEAD of a user like GET, without a body", async () => {
    const user = await createUser(await createIota());
    const known = await adminFetch(`/users/${user.id}`, "HEAD");
    expect(known.status).toBe(200);
    expect(await known.text()).toBe("");
    const unknown = await adminFetch(`/users/${uuid()}`, "HEAD");
    expect(unknown.status).toBe(404);
  });

  it("answers 404 not_found to GET and DELETE of an unknown user", async () => {
    for (const method of ["GET", "DELETE"]) {
      const reply = await read(await adminFetch(`/users/${uuid()}`, method));
      expect(reply.status).toBe(404);
      expect(json(reply)).toEqual({ error: "not_found", message: anyMessage });
    }
  });

  it("deletes a user with 204 and an empty body, and its Iota no longer lists it", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const kept = await createUser(iota);
    const deleted = await adminFetch(`/users/${user.id}`, "DELETE");
    expect(deleted.status).toBe(204);
    expect(await deleted.text()).toBe("");
    const got = await read(await adminFetch(`/users/${user.id}`));
    expect(got.status).toBe(404);
    expect(json(got)).toEqual({ error: "not_found", message: anyMessage });
    expect(json(await read(await adminFetch(`/iotas/${iota.id}`)))).toEqual({ iota_id: iota.id, users: [kept.id] });
  });

  it("does not take an Iota id for a user id or the other way round", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    expect((await adminFetch(`/users/${iota.id}`)).status).toBe(404);
    expect((await adminFetch(`/iotas/${user.id}`)).status).toBe(404);
  });
});

describe("admin API: bodies (SPEC §8.2)", () => {
  it.each([
    ["an empty body", ""],
    ["truncated JSON", '{"private_key_hash":'],
    ["plain text", "private_key_hash=abc"],
  ])("answers 400 invalid_json for %s", async (_name, body) => {
    for (const path of [`/iotas/${uuid()}`, `/users/${uuid()}`]) {
      const reply = await read(await rawAdmin(path, "PUT", body));
      expect(reply.status).toBe(400);
      expect(json(reply)).toEqual({ error: "invalid_json", message: anyMessage });
    }
  });

  const hex63 = "a".repeat(63);
  const hex65 = "a".repeat(65);
  const notHex = `${"a".repeat(63)}g`;

  it.each([
    ["a JSON array", []],
    ["a JSON string", "abc"],
    ["JSON null", null],
    ["a JSON number", 64],
  ])("answers 400 invalid_body naming the body when the Iota body is %s", async (_name, body) => {
    const reply = await read(await adminFetch(`/iotas/${uuid()}`, "PUT", body));
    expect(reply.status).toBe(400);
    expect(json(reply)).toEqual({ error: "invalid_body", field: "body", message: anyMessage });
  });

  it.each([
    ["missing", {}],
    ["63 hex characters", { private_key_hash: hex63 }],
    ["65 hex characters", { private_key_hash: hex65 }],
    ["not hex", { private_key_hash: notHex }],
    ["padded with spaces", { private_key_hash: ` ${"a".repeat(64)} ` }],
    ["a number", { private_key_hash: 1234 }],
    ["null", { private_key_hash: null }],
  ])("answers 400 invalid_body naming private_key_hash for an Iota when it is %s", async (_name, body) => {
    const iotaId = uuid();
    const reply = await read(await adminFetch(`/iotas/${iotaId}`, "PUT", body));
    expect(reply.status).toBe(400);
    expect(json(reply)).toEqual({ error: "invalid_body", field: "private_key_hash", message: anyMessage });
    const value = (body as { private_key_hash?: unknown }).private_key_hash;
    if (typeof value === "string") expect(reply.text).not.toContain(value.trim());
    expect((await adminFetch(`/iotas/${iotaId}`)).status).toBe(404);
  });

  it.each([
    ["a JSON array", [{ iota_id: OMIKRON_ID }]],
    ["a JSON string", "body"],
    ["JSON null", null],
    ["a boolean", true],
  ])("answers 400 invalid_body naming the body when the user body is %s", async (_name, body) => {
    const reply = await read(await adminFetch(`/users/${uuid()}`, "PUT", body));
    expect(reply.status).toBe(400);
    expect(json(reply)).toEqual({ error: "invalid_body", field: "body", message: anyMessage });
  });

  it.each([
    ["missing", (_iota: Account) => ({ private_key_hash: "a".repeat(64) })],
    ["not a UUID", (_iota: Account) => ({ iota_id: "not-a-uuid", private_key_hash: "a".repeat(64) })],
    ["a number", (_iota: Account) => ({ iota_id: 7, private_key_hash: "a".repeat(64) })],
    ["OMIKRON_ID", (_iota: Account) => ({ iota_id: OMIKRON_ID, private_key_hash: "a".repeat(64) })],
  ])("answers 400 invalid_body naming iota_id for a user when it is %s", async (_name, makeBody) => {
    const iota = await createIota();
    const userId = uuid();
    const reply = await read(await adminFetch(`/users/${userId}`, "PUT", makeBody(iota)));
    expect(reply.status).toBe(400);
    expect(json(reply)).toEqual({ error: "invalid_body", field: "iota_id", message: anyMessage });
    expect((await adminFetch(`/users/${userId}`)).status).toBe(404);
  });

  it.each([
    ["missing", {}],
    ["63 hex characters", { private_key_hash: hex63 }],
    ["not hex", { private_key_hash: notHex }],
    ["an array", { private_key_hash: ["a".repeat(64)] }],
  ])("answers 400 invalid_body naming private_key_hash for a user when it is %s", async (_name, fields) => {
    const iota = await createIota();
    const userId = uuid();
    const reply = await read(await adminFetch(`/users/${userId}`, "PUT", { iota_id: iota.id, ...fields }));
    expect(reply.status).toBe(400);
    expect(json(reply)).toEqual({ error: "invalid_body", field: "private_key_hash", message: anyMessage });
    expect((await adminFetch(`/users/${userId}`)).status).toBe(404);
  });

  it("validates the body before looking for the user's Iota", async () => {
    const reply = await read(await adminFetch(`/users/${uuid()}`, "PUT", { iota_id: uuid(), private_key_hash: hex63 }));
    expect(reply.status).toBe(400);
    expect(json(reply)).toEqual({ error: "invalid_body", field: "private_key_hash", message: anyMessage });
  });

  it("ignores unknown body fields and never echoes them", async () => {
    const iotaId = uuid();
    const reply = await read(await adminFetch(`/iotas/${iotaId}`, "PUT", { private_key_hash: keyHash(), users: [uuid()], note: "x" }));
    expect(reply.status).toBe(201);
    expect(json(reply)).toEqual({ iota_id: iotaId, users: [] });
  });
});

describe("admin API: credentials (SPEC §8.1)", () => {
  it("accepts an upper-case credential, and the Iota and a client then identify with the lower-case form", async () => {
    const iota: Account = { id: uuid(), key: keyHash() };
    const user: Account = { id: uuid(), key: keyHash() };
    const putIota = await read(await adminFetch(`/iotas/${iota.id}`, "PUT", { private_key_hash: iota.key.toUpperCase() }), [iota.key]);
    expect(putIota.status).toBe(201);
    const putUser = await read(
      await adminFetch(`/users/${user.id}`, "PUT", { iota_id: iota.id, private_key_hash: user.key.toUpperCase() }),
      [user.key],
    );
    expect(putUser.status).toBe(201);

    const iotaSocket = await connect(`/ws/iota/${iota.id}`);
    const iotaReply = await iotaSocket.request(iotaIdentification(iota, [user.id], "iota-ident"));
    expect(iotaReply).toEqual({
      id: "iota-ident",
      type: "identification_response",
      log: { message: expect.any(String), log_level: 0 },
      sender_id: OMIKRON_ID,
      data: { accepted_profiles: `${user.id},`, denid_profiles: "", denied_profiles: "" },
    });

    const client = await connect(`/ws/client/${iota.id}`);
    const clientReply = await client.request(clientIdentification(iota, user, "client-ident"));
    expect(clientReply).toEqual({
      id: "client-ident",
      type: "identification_response",
      log: { message: expect.any(String), log_level: 0 },
      sender_id: OMIKRON_ID,
      data: { acceppted: true, accepted: true, iota_online: true },
    });
    client.close();
    iotaSocket.close();
  });

  it("treats an upper-case replacement of the same credential as no change", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const iotaSocket = await connect(`/ws/iota/${iota.id}`);
    expect((await iotaSocket.request(iotaIdentification(iota, [user.id]))).type).toBe("identification_response");
    const replaced = await read(await adminFetch(`/iotas/${iota.id}`, "PUT", { private_key_hash: iota.key.toUpperCase() }), [iota.key]);
    expect(replaced.status).toBe(200);
    // The socket is still identified: a ping is answered, not closed as revoked.
    const pong = await iotaSocket.request({ id: "still-here", type: "ping", data: {} });
    expect(pong).toMatchObject({ id: "still-here", type: "pong" });
    iotaSocket.close();
  });

  it("never answers a credential or its SHA-256 in any admin reply", async () => {
    const iotaKey = keyHash().toUpperCase();
    const userKey = keyHash();
    const keys = [iotaKey, userKey];
    const iotaId = uuid();
    const userId = uuid();
    const replies = [
      await adminFetch(`/iotas/${iotaId}`, "PUT", { private_key_hash: iotaKey }),
      await adminFetch(`/iotas/${iotaId}`, "PUT", { private_key_hash: iotaKey }),
      await adminFetch(`/users/${userId}`, "PUT", { iota_id: iotaId, private_key_hash: userKey }),
      await adminFetch(`/users/${userId}`, "PUT", { iota_id: iotaId, private_key_hash: userKey }),
      await adminFetch(`/users/${userId}`, "PUT", { iota_id: uuid(), private_key_hash: userKey }),
      await adminFetch(`/users/${userId}`, "PUT", { iota_id: "bad", private_key_hash: userKey }),
      await adminFetch(`/iotas/${iotaId}`, "PUT", { private_key_hash: `${iotaKey}0` }),
      await adminFetch(`/iotas/${iotaId}`),
      await adminFetch(`/users/${userId}`),
      await adminFetch(`/users/${userId}`, "DELETE"),
      await adminFetch(`/iotas/${iotaId}`, "DELETE"),
    ];
    const statuses: number[] = [];
    for (const response of replies) statuses.push((await read(response, keys)).status);
    expect(statuses).toEqual([201, 200, 201, 200, 404, 400, 400, 200, 200, 204, 204]);
  });
});
