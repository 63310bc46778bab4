/**
 * Live presence through the admin API (SPEC §8.2 r2): who is connected to an Iota's hub and
 * who is in a call, read from the objects that hold the sockets, and never stored (SPEC §4).
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { join, users } from "./calls";
import { ADMIN_TOKEN, type Account, OMIKRON_ID, adminFetch, connectClient, connectIota, createIota, createUser, fetchWorker, uuid } from "./support";

async function presenceOf(iotaId: string): Promise<unknown> {
  const response = await adminFetch(`/iotas/${iotaId}/presence`);
  expect(response.status).toBe(200);
  return response.json();
}

async function callOf(callId: string): Promise<{ status: number; body: unknown }> {
  const response = await adminFetch(`/calls/${callId}`);
  return { status: response.status, body: await response.json() };
}

const offline = (iota: Account) => ({ iota_id: iota.id, iota_online: false, users_online: [], client_sockets: 0 });

/** What an object keeps in storage: rows of its tables, key-value entries, its alarm. */
async function storedBy(stub: DurableObjectStub): Promise<{ tables: string[]; rows: number; keys: number; alarm: number | null }> {
  return runInDurableObject(stub, async (_instance, state) => {
    const tables = state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
      .toArray()
      .map((row) => row.name);
    let rows = 0;
    for (const table of tables) rows += state.storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM "${table}"`).one().n;
    return { tables, rows, keys: (await state.storage.list()).size, alarm: await state.storage.getAlarm() };
  });
}

describe("hub presence (SPEC §8.2)", () => {
  it("shows an Iota with nobody connected as offline", async () => {
    const iota = await createIota();
    expect(await presenceOf(iota.id)).toEqual(offline(iota));
  });

  it("follows the Iota and its users' devices as they come and go", async () => {
    const iota = await createIota();
    const [alice, bob] = [await createUser(iota), await createUser(iota)];
    const iotaPeer = await connectIota(iota, [alice.id, bob.id]);
    expect(await presenceOf(iota.id)).toEqual({ iota_id: iota.id, iota_online: true, users_online: [], client_sockets: 0 });

    const phone = await connectClient(iota, alice);
    await connectClient(iota, alice);
    await connectClient(iota, bob);
    const online = [alice.id, bob.id].sort();
    expect(await presenceOf(iota.id)).toEqual({ iota_id: iota.id, iota_online: true, users_online: online, client_sockets: 3 });

    phone.close();
    await phone.closed;
    expect(await presenceOf(iota.id)).toEqual({ iota_id: iota.id, iota_online: true, users_online: online, client_sockets: 2 });

    iotaPeer.close();
    await iotaPeer.closed;
    expect(await presenceOf(iota.id)).toEqual({ iota_id: iota.id, iota_online: false, users_online: online, client_sockets: 2 });
  });

  it("keeps the Iota online through a replacement, and offline once the replacement leaves", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const first = await connectIota(iota, [alice.id]);
    await connectClient(iota, alice);
    expect((await first.next()).type).toBe("client_connected");
    const second = await connectIota(iota, [alice.id]);
    expect((await first.closed).code).toBe(4001);
    const expected = { iota_id: iota.id, iota_online: true, users_online: [alice.id], client_sockets: 1 };
    expect(await presenceOf(iota.id)).toEqual(expected);
    second.close();
    await second.closed;
    expect(await presenceOf(iota.id)).toEqual({ ...expected, iota_online: false });
  });

  it("answers the same after the hub was evicted, from the sockets' attachments", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    await connectIota(iota, [alice.id]);
    await connectClient(iota, alice);
    const before = await presenceOf(iota.id);
    await evictDurableObject(env.HUB.get(env.HUB.idFromName(iota.id)));
    expect(await presenceOf(iota.id)).toEqual(before);
    expect(before).toEqual({ iota_id: iota.id, iota_online: true, users_online: [alice.id], client_sockets: 1 });
  });

  it("stores nothing in a hub it asks", async () => {
    const iotaId = uuid();
    expect(await presenceOf(iotaId)).toEqual({ iota_id: iotaId, iota_online: false, users_online: [], client_sockets: 0 });
    expect(await storedBy(env.HUB.get(env.HUB.idFromName(iotaId)))).toEqual({ tables: [], rows: 0, keys: 0, alarm: null });
  });
});

describe("call presence (SPEC §8.2)", () => {
  it("answers 404 for a call nobody is in, and stores nothing in its room", async () => {
    const callId = uuid();
    expect(await callOf(callId)).toEqual({ status: 404, body: { error: "not_found", message: expect.any(String) } });
    expect(await storedBy(env.CALL_ROOM.get(env.CALL_ROOM.idFromName(callId)))).toEqual({ tables: [], rows: 0, keys: 0, alarm: null });
  });

  it("lists the members with their current states, a rejoin's new states, and 404 once all left", async () => {
    const callId = uuid();
    const [alice, bob] = (await users(2)) as [Account, Account];
    const alicePeer = await join(callId, alice, { call_state: "muted", user_state: "dnd" });
    const bobPeer = await join(callId, bob);
    expect((await alicePeer.next()).type).toBe("client_connected");
    expect(await callOf(callId)).toEqual({
      status: 200,
      body: {
        call_id: callId,
        members: { [alice.id]: { call_state: "muted", user_state: "dnd" }, [bob.id]: { call_state: "active", user_state: "online" } },
      },
    });

    bobPeer.send({ id: "c", type: "client_changed", data: { call_state: "streaming" } });
    expect((await alicePeer.next()).type).toBe("client_changed");
    const rejoined = await join(callId, alice, { user_state: "idle" });
    expect((await alicePeer.closed).code).toBe(4001);
    expect((await bobPeer.next()).type).toBe("client_connected");
    expect((await callOf(callId)).body).toEqual({
      call_id: callId,
      members: { [alice.id]: { call_state: "active", user_state: "idle" }, [bob.id]: { call_state: "streaming", user_state: "online" } },
    });

    rejoined.close();
    await rejoined.closed;
    expect(Object.keys(((await callOf(callId)).body as { members: object }).members)).toEqual([bob.id]);
    bobPeer.close();
    await bobPeer.closed;
    expect((await callOf(callId)).status).toBe(404);
  });

  it("answers the same after the room was evicted", async () => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    await join(callId, alice, { call_state: "deafed" });
    await evictDurableObject(env.CALL_ROOM.get(env.CALL_ROOM.idFromName(callId)));
    expect((await callOf(callId)).body).toEqual({ call_id: callId, members: { [alice.id]: { call_state: "deafed", user_state: "online" } } });
  });
});

describe("presence routes: token, ids and methods (SPEC §8.2)", () => {
  const paths = () => [`/admin/iotas/${uuid()}/presence`, `/admin/calls/${uuid()}`];

  it("answers 401 without the bearer token", async () => {
    for (const path of paths()) {
      const response = await fetchWorker(path);
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error: "unauthorized", message: expect.any(String) });
    }
  });

  it("answers 400 for a path id that is not a UUID, and for the Omikron's id as an Iota", async () => {
    for (const path of ["/iotas/not-a-uuid/presence", "/calls/not-a-uuid", `/iotas/${OMIKRON_ID}/presence`]) {
      const response = await adminFetch(path);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: "invalid_id", message: expect.any(String) });
    }
  });

  it("answers 405 naming GET for a write, before anything is asked", async () => {
    for (const path of paths()) {
      for (const method of ["PUT", "DELETE", "POST"]) {
        const response = await fetchWorker(path, { method, headers: { Authorization: `Bearer ${ADMIN_TOKEN}` }, body: "{" });
        expect(response.status).toBe(405);
        expect(response.headers.get("Allow")).toBe("GET, HEAD");
      }
    }
  });

  it("reads an upper-case path id as the same Iota and call, answering in lower case", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    await connectIota(iota, [alice.id]);
    expect(await presenceOf(iota.id.toUpperCase())).toEqual({ iota_id: iota.id, iota_online: true, users_online: [], client_sockets: 0 });
    const callId = uuid();
    await join(callId, alice);
    expect((await callOf(callId.toUpperCase())).body).toEqual({ call_id: callId, members: { [alice.id]: { call_state: "active", user_state: "online" } } });
  });
});
