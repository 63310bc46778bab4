/**
 * Structured logs (SPEC §11): one JSON line per connection event, error reply and admin
 * write, each with `ts`, socket lines with their connection's `conn`, and nothing that a
 * credential or a message could be read from.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  adminFetch,
  clientIdentification,
  connect,
  connectClient,
  connectIota,
  createIota,
  createUser,
  fetchWorker,
  keyHash,
  sha256Hex,
  uuid,
} from "./support";

/** Every line the relay logged while a test ran; the Durable Objects share the test's isolate. */
let lines: string[] = [];

beforeEach(() => {
  lines = [];
  for (const method of ["log", "warn", "error"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    });
  }
});

afterEach(() => {
  vi.restoreAllMocks();
});

type Line = Record<string, unknown>;

function events(): Line[] {
  return lines.filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as Line);
}

/** Lines about a socket: the hub and the call room name the socket's role on each. */
const socketLines = () => events().filter((event) => event.role !== undefined);

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Each connection's events in order, connections in the order they were opened. */
function stories(): [string, unknown[][]][] {
  const byConn = new Map<string, unknown[][]>();
  for (const event of socketLines()) {
    const conn = String(event.conn);
    const story = byConn.get(conn) ?? [];
    story.push([event.event, event.role, event.code ?? null]);
    byConn.set(conn, story);
  }
  return [...byConn];
}

describe("structured logs (SPEC §11)", () => {
  it("writes one JSON line per connection event with ids and codes", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    client.close(1000, "done");
    await client.closed;
    await iotaPeer.next();
    const seen = socketLines().map((event) => [event.event, event.role, event.code ?? null]);
    expect(seen).toEqual([
      ["connect", "iota", null],
      ["identified", "iota", null],
      ["connect", "client", null],
      ["identified", "client", null],
      ["closed", "client", 1000],
    ]);
    expect(socketLines()[3]).toMatchObject({ iota_id: iota.id, user_id: alice.id });
  });

  it("tells a whole session: ts on every line, one conn per socket, admin writes without bodies, no secrets", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const bob = await createUser(iota);
    const firstIota = await connectIota(iota, [alice.id, bob.id]);
    const aliceClient = await connectClient(iota, alice);
    expect((await firstIota.next()).type).toBe("client_connected");
    const bobClient = await connectClient(iota, bob);
    expect((await firstIota.next()).type).toBe("client_connected");

    // Relay both ways, with contents that must never reach a log.
    aliceClient.send({ id: "up", type: "message", data: { secret_text: "the eagle lands at dawn" } });
    expect((await firstIota.next()).id).toBe("up");
    firstIota.send({ id: "down", type: "message", receiver_id: alice.id, data: { secret_text: "the owl flies at noon" } });
    expect((await aliceClient.next()).id).toBe("down");

    // A refusal with a wrong credential, and an error reply.
    const wrong = keyHash();
    const refused = await connect(`/ws/client/${iota.id}`);
    await refused.request(clientIdentification(iota, { id: alice.id, key: wrong }));
    expect((await refused.closed).code).toBe(4003);
    expect((await aliceClient.request({ id: "bad", type: "pong" })).type).toBe("error_invalid_data");

    // A replacement, a close by the peer, and a revocation by an admin write.
    const secondIota = await connectIota(iota, [alice.id, bob.id]);
    expect((await firstIota.closed).code).toBe(4001);
    aliceClient.close(1000, "done");
    await aliceClient.closed;
    expect((await secondIota.next()).type).toBe("client_connected");
    expect((await secondIota.next()).type).toBe("client_connected");
    const newKey = keyHash();
    expect((await adminFetch(`/users/${bob.id}`, "PUT", { iota_id: iota.id, private_key_hash: newKey })).status).toBe(200);
    expect((await bobClient.closed).code).toBe(4003);
    const missing = uuid();
    expect((await adminFetch(`/users/${missing}`, "DELETE")).status).toBe(404);
    const intruderKey = keyHash();
    const intruder = await fetchWorker(`/admin/iotas/${iota.id}`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${intruderKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ private_key_hash: intruderKey }),
    });
    expect(intruder.status).toBe(401);

    const all = events();
    expect(all.length).toBe(lines.length);
    for (const event of all) {
      expect(event.ts).toMatch(ISO_8601);
      expect(new Date(String(event.ts)).toISOString()).toBe(event.ts);
    }

    for (const event of socketLines()) expect(event.conn).toMatch(UUID_V4);
    // The refusal names its reason for the operator, though the peer's frame stays generic.
    expect(socketLines().filter((event) => event.event === "refused")).toEqual([
      expect.objectContaining({ role: "client", iota_id: iota.id, reason: "bad_credential" }),
    ]);
    const told = stories();
    expect(told.map(([, story]) => story)).toEqual([
      [["connect", "iota", null], ["identified", "iota", null], ["replaced", "iota", 4001]],
      [["connect", "client", null], ["identified", "client", null], ["error_reply", "client", null], ["closed", "client", 1000]],
      [["connect", "client", null], ["identified", "client", null], ["closed", "client", 4003]],
      [["connect", "client", null], ["refused", "client", null], ["closed", "client", 4003]],
      [["connect", "iota", null], ["identified", "iota", null]],
    ]);
    const conns = told.map(([conn]) => conn);
    for (const id of [iota.id, alice.id, bob.id]) expect(conns).not.toContain(id);

    const writes = all.filter((event) => event.event === "admin_write");
    expect(writes.map(({ ts: _ts, ...rest }) => rest)).toEqual([
      { event: "admin_write", method: "PUT", kind: "iota", id: iota.id, status: 201 },
      { event: "admin_write", method: "PUT", kind: "user", id: alice.id, status: 201 },
      { event: "admin_write", method: "PUT", kind: "user", id: bob.id, status: 201 },
      { event: "admin_write", method: "PUT", kind: "user", id: bob.id, status: 200 },
      { event: "admin_write", method: "DELETE", kind: "user", id: missing, status: 404 },
      { event: "admin_write", method: "PUT", kind: "iota", id: iota.id, status: 401 },
    ]);

    const text = lines.join("\n");
    const keys = [iota.key, alice.key, bob.key, wrong, newKey, intruderKey];
    for (const key of keys) {
      for (const form of [key, key.toUpperCase(), await sha256Hex(key)]) expect(text).not.toContain(form);
    }
    for (const content of ["the eagle lands", "the owl flies", "test-admin-token"]) expect(text).not.toContain(content);
  });

  it("names only UUIDs and known record kinds on an admin_write line, whatever the path holds", async () => {
    const junk = keyHash();
    expect((await adminFetch(`/${junk}/${junk}`, "PUT", {})).status).toBe(404);
    expect((await adminFetch(`/iotas/${junk}`, "DELETE")).status).toBe(400);
    const writes = events().filter((event) => event.event === "admin_write");
    expect(writes.map(({ ts: _ts, ...rest }) => rest)).toEqual([
      { event: "admin_write", method: "PUT", status: 404 },
      { event: "admin_write", method: "DELETE", kind: "iota", status: 400 },
    ]);
    expect(lines.join("\n")).not.toContain(junk);
  });
});
