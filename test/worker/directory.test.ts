/**
 * The r2 directory (SPEC §5.2, §5.3, §7, §8): listing and paging, calls per user, one
 * message for every error_invalid_user_id, the checked sender_id on cross-hub forwards,
 * refusal reasons in the logs, and records that only ever move forward.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { attempt, callIdentification, join } from "./calls";
import {
  type Account,
  adminFetch,
  clientIdentification,
  connect,
  connectClient,
  connectIota,
  createIota,
  createUser,
  iotaIdentification,
  keyHash,
  sha256Hex,
  uuid,
} from "./support";

async function listAll(path: string, key: "users" | "iotas", limit: number): Promise<{ ids: string[]; pages: number[] }> {
  const ids: string[] = [];
  const pages: number[] = [];
  let cursor: string | null = null;
  do {
    const query: string = `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const reply = await adminFetch(`${path}${path.includes("?") ? "&" : "?"}${query}`);
    expect(reply.status).toBe(200);
    const body = (await reply.json()) as Record<string, unknown> & { next_cursor: string | null };
    const items = body[key] as { user_id?: string; iota_id?: string }[];
    pages.push(items.length);
    for (const item of items) ids.push((key === "users" ? item.user_id : item.iota_id) ?? "");
    cursor = body.next_cursor;
  } while (cursor);
  return { ids, pages };
}

describe("listing (SPEC §8.2 r2)", () => {
  it("pages through 2,500 users of an Iota in pages of 1,000 with no gap or repeat", async () => {
    const iota = await createIota();
    // Seeded straight into the control's table: 2,500 admin PUTs would take minutes on a
    // shared test machine, and what is tested here is the paging, not the PUT.
    const created = Array.from({ length: 2_500 }, () => uuid());
    const control = env.BUILTIN_DIRECTORY.get(env.BUILTIN_DIRECTORY.idFromName("directory"));
    await runInDurableObject(control, (_instance, state) => {
      for (const userId of created) {
        state.storage.sql.exec("INSERT INTO users (user_id, iota_id, key_digest, version) VALUES (?, ?, ?, 0)", userId, iota.id, "0".repeat(64));
      }
    });
    const { ids, pages } = await listAll(`/users?iota_id=${iota.id}`, "users", 1000);
    expect(pages).toEqual([1000, 1000, 500]);
    expect(ids).toEqual([...created].sort());
    const one = (await (await adminFetch(`/users?iota_id=${iota.id}&limit=1`)).json()) as { users: unknown[] };
    expect(one.users).toEqual([{ user_id: [...created].sort()[0], iota_id: iota.id }]);
    const counted = (await (await adminFetch("/iotas?limit=1000")).json()) as { iotas: { iota_id: string; users: number }[] };
    expect(counted.iotas).toContainEqual({ iota_id: iota.id, users: 2_500 });
  });

  it("lists Iotas in id order with their user counts, and every user across Iotas", async () => {
    const first = await createIota();
    const second = await createIota();
    const users = [await createUser(first), await createUser(first), await createUser(second)];
    const reply = await adminFetch("/iotas?limit=1000");
    const body = (await reply.json()) as { iotas: { iota_id: string; users: number }[]; next_cursor: string | null };
    const ids = body.iotas.map((iota) => iota.iota_id);
    expect(ids).toEqual([...ids].sort());
    expect(body.iotas).toContainEqual({ iota_id: first.id, users: 2 });
    expect(body.iotas).toContainEqual({ iota_id: second.id, users: 1 });
    const all = await listAll("/iotas", "iotas", 2);
    expect(new Set(all.ids).size).toBe(all.ids.length);
    for (const iota of [first, second]) expect(all.ids).toContain(iota.id);
    const everyUser = await listAll("/users", "users", 700);
    expect(everyUser.ids).toEqual([...everyUser.ids].sort());
    for (const user of users) expect(everyUser.ids).toContain(user.id);
  });

  it("shows a user whose Iota was deleted with iota_id null", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    expect((await adminFetch(`/iotas/${iota.id}`, "DELETE")).status).toBe(204);
    const body = (await (await adminFetch("/users?limit=1000")).json()) as { users: unknown[] };
    const { ids } = await listAll("/users", "users", 1000);
    expect(ids).toContain(user.id);
    expect(body.users.length).toBeGreaterThan(0);
    expect((await (await adminFetch(`/users/${user.id}`)).json())).toEqual({ user_id: user.id, iota_id: null });
  });

  it.each([
    ["limit 0", "/users?limit=0", "limit"],
    ["limit 1001", "/iotas?limit=1001", "limit"],
    ["a limit that is not a number", "/users?limit=ten", "limit"],
    ["a limit with a fraction", "/users?limit=1.5", "limit"],
    ["a cursor this API never gave", "/users?cursor=abc", "cursor"],
    ["an iota_id that is not a UUID", "/users?iota_id=nope", "iota_id"],
    ["an unknown parameter", "/iotas?iota_id=6f1c9a52-3f0e-4a5e-9d1b-2c7e8f9a0b1c", "iota_id"],
  ])("answers 400 naming the parameter for %s", async (_name, path, field) => {
    const reply = await adminFetch(path);
    expect(reply.status).toBe(400);
    expect(await reply.json()).toMatchObject({ field });
  });

  it("answers 405 for a write to a listing", async () => {
    const reply = await adminFetch("/users", "POST", {});
    expect(reply.status).toBe(405);
    expect(reply.headers.get("Allow")).toBe("GET");
  });
});

describe("calls per user (SPEC §7 r2)", () => {
  it("refuses a fifth call with error_too_many_connections and 4003, but not a rejoin, and frees a slot on leave", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const calls = [uuid(), uuid(), uuid(), uuid()];
    const members = [];
    for (const callId of calls) members.push(await join(callId, user));
    const fifth = uuid();
    const refused = await attempt(fifth, user);
    expect(refused.reply).toMatchObject({ id: refused.id, type: "error_too_many_connections", log: { log_level: 2 } });
    expect((await refused.peer.closed).code).toBe(4003);
    // A rejoin of a call the user is in does not count twice; it replaces the old socket.
    await join(calls[0] ?? "", user);
    expect((await members[0]?.closed)?.code).toBe(4001);
    members[1]?.close();
    await members[1]?.closed;
    await join(fifth, user);
  });

  it("does not count a call whose socket vanished without a close event", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const record = env.USER_RECORD.get(env.USER_RECORD.idFromName(user.id));
    // Four memberships a crashed room never reported leaving.
    for (let i = 0; i < 4; i++) await record.joinCall(user.id, user.key, uuid(), uuid());
    await join(uuid(), user);
  });
});

describe("error_invalid_user_id is one generic message (SPEC §5.3 r2)", () => {
  it("says the same whichever check failed", async () => {
    const iota = await createIota();
    const own = await createUser(iota);
    const other = await createIota();
    const foreign = await createUser(other);
    const orphanIota = await createIota();
    const orphan = await createUser(orphanIota);
    expect((await adminFetch(`/iotas/${orphanIota.id}`, "DELETE")).status).toBe(204);
    const iotaPeer = await connectIota(iota, [own.id]);
    await connectIota(other, []);
    const cases = [
      { receiver_id: uuid(), sender_id: own.id },
      { receiver_id: foreign.id, sender_id: foreign.id },
      { receiver_id: foreign.id },
      { receiver_id: foreign.id, sender_id: uuid() },
      { receiver_id: orphan.id, sender_id: own.id },
    ];
    const messages = new Set<string>();
    for (const fields of cases) {
      const reply = await iotaPeer.request({ id: uuid(), type: "message_send", data: {}, ...fields });
      expect(reply.type).toBe("error_invalid_user_id");
      messages.add(reply.log.message);
    }
    expect(messages.size).toBe(1);
  });

  it("forwards across hubs with the checked sender_id in lower case", async () => {
    const from = await createIota();
    const sender = await createUser(from);
    const to = await createIota();
    const receiver = await createUser(to);
    const fromPeer = await connectIota(from, [sender.id]);
    const toPeer = await connectIota(to, []);
    const id = uuid();
    fromPeer.send(JSON.stringify({ id, type: "message_send", data: {}, receiver_id: receiver.id, sender_id: sender.id.toUpperCase() }));
    expect(await toPeer.nextText()).toBe(JSON.stringify({ id, type: "message_send", data: {}, receiver_id: receiver.id, sender_id: sender.id }));
  });
});

describe("refusal reasons in the logs (SPEC §11 r2)", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("names why each identification was refused, never in the frame", async () => {
    const lines: string[] = [];
    for (const method of ["log", "warn", "error"] as const) {
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        lines.push(args.map(String).join(" "));
      });
    }
    const iota = await createIota();
    const user = await createUser(iota);
    const refuse = async (path: string, frame: unknown) => {
      const peer = await connect(path);
      await peer.request(frame);
      await peer.closed;
    };
    await refuse(`/ws/client/${iota.id}`, clientIdentification(iota, { id: user.id, key: keyHash() }));
    await refuse(`/ws/client/${iota.id}`, clientIdentification(iota, { id: uuid(), key: keyHash() }));
    await refuse(`/ws/client/${iota.id}`, clientIdentification({ id: uuid(), key: iota.key }, user));
    await refuse(`/ws/client/${iota.id}`, { id: uuid(), type: "identification", data: { iota_id: iota.id } });
    await refuse(`/ws/iota/${iota.id}`, iotaIdentification({ id: iota.id, key: keyHash() }, []));
    const callId = uuid();
    await refuse(`/ws/call/${callId}`, callIdentification(callId, { id: user.id, key: keyHash() }));
    const reasons = lines
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { event: string; reason?: string; role?: string })
      .filter((event) => event.event === "refused")
      .map((event) => [event.role, event.reason]);
    expect(reasons).toEqual([
      ["client", "bad_credential"],
      ["client", "unknown_id"],
      ["client", "id_mismatch"],
      ["client", "ill_typed"],
      ["iota", "bad_credential"],
      ["call", "bad_credential"],
    ]);
  });
});

describe("records only move forward (SPEC §8.1 r2)", () => {
  it("ignores a push older than the record the hub holds", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const hub = env.HUB.get(env.HUB.idFromName(iota.id));
    const newer = keyHash();
    const older = keyHash();
    const push = async (key: string, version: number) =>
      hub.applyRecords(iota.id, { users: [{ user_id: user.id, digest: await sha256Hex(key), version }] });
    await push(newer, 1e12 + 2);
    await push(older, 1e12 + 1);
    const identify = async (key: string) => {
      const peer = await connect(`/ws/client/${iota.id}`);
      return (await peer.request(clientIdentification(iota, { id: user.id, key }))).data.accepted;
    };
    expect(await identify(older)).toBe(false);
    expect(await identify(newer)).toBe(true);
  });
});

describe("storage before identification (SPEC §4 r2)", () => {
  it("a refused identification leaves no record tables in the hub or the user record", async () => {
    const iotaId = uuid();
    const userId = uuid();
    const stranger: Account = { id: iotaId, key: keyHash() };
    const peer = await connect(`/ws/client/${iotaId}`);
    expect((await peer.request(clientIdentification(stranger, { id: userId, key: keyHash() }))).data.accepted).toBe(false);
    const callId = uuid();
    const member = await connect(`/ws/call/${callId}`);
    expect((await member.request(callIdentification(callId, { id: userId, key: keyHash() }))).data.accepted).toBe(false);
    const tables = (state: DurableObjectState) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
        .toArray()
        .map((row) => row.name);
    expect(await runInDurableObject(env.HUB.get(env.HUB.idFromName(iotaId)), (_instance, state) => tables(state))).toEqual([]);
    expect(await runInDurableObject(env.USER_RECORD.get(env.USER_RECORD.idFromName(userId)), (_instance, state) => tables(state))).toEqual([]);
  });

  it("a client of an existing Iota identifies without the hub having to ask anyone", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    await connectClient(iota, user);
  });
});
