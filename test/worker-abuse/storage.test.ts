/**
 * Attack: storage for nothing (issue 10). Every random id touched used to leave a database
 * behind. Now an object writes nothing before a socket identifies there, and an object that
 * never had an identified socket keeps nothing once its last socket goes, alarm included
 * (SPEC §4 r2). Asserted by reading each object's own storage.
 */
import { env } from "cloudflare:workers";
import { evictDurableObject, listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { callIdentification, users } from "../worker/calls";
import { type Account, type Peer, clientIdentification, createIota, createUser, iotaIdentification, keyHash, uuid } from "../worker/support";
import { connectFrom } from "./attack";

interface Stored {
  tables: string[];
  keys: number;
  alarm: number | null;
}

/** What an object keeps: its SQL tables (the runtime's own excepted), KV keys and alarm. */
async function storedBy<T extends Rpc.DurableObjectBranded>(namespace: DurableObjectNamespace<T>, name: string): Promise<Stored> {
  const id = namespace.idFromName(name);
  return runInDurableObject(namespace.get(id), async (_instance, state) => ({
    tables: state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'sqlite_%'")
      .toArray()
      .map((row) => row.name),
    keys: (await state.storage.list()).size,
    alarm: await state.storage.getAlarm(),
  }));
}

const NOTHING: Stored = { tables: [], keys: 0, alarm: null };

async function closeAll(peers: Peer[]): Promise<void> {
  for (const peer of peers) peer.close(1000, "gone");
  await Promise.all(peers.map((peer) => peer.closed));
}

describe("storage before identification (SPEC §4 r2)", () => {
  it("leaves nothing in a hub whose sockets were opened and abandoned", async () => {
    const iotaId = uuid();
    const peers = [await connectFrom(`/ws/iota/${iotaId}`), await connectFrom(`/ws/client/${iotaId}`), await connectFrom(`/ws/client/${iotaId}`)];
    peers[1]!.send({ id: "noise", type: "message", data: {} });
    // While they wait, the identification alarm is the only thing stored.
    const waiting = await storedBy(env.HUB, iotaId);
    expect(waiting.tables).toEqual([]);
    expect(waiting.keys).toBe(0);
    expect(waiting.alarm).not.toBeNull();
    await closeAll(peers);
    expect((await listDurableObjectIds(env.HUB)).map(String)).toContain(String(env.HUB.idFromName(iotaId)));
    expect(await storedBy(env.HUB, iotaId)).toEqual(NOTHING);
  });

  it("leaves nothing when the last socket's close is what wakes the hibernated object", async () => {
    const iotaId = uuid();
    const peer = await connectFrom(`/ws/client/${iotaId}`);
    await evictDurableObject(env.HUB.get(env.HUB.idFromName(iotaId)));
    await closeAll([peer]);
    expect(await storedBy(env.HUB, iotaId)).toEqual(NOTHING);
  });

  it("leaves nothing in a hub after refused identifications", async () => {
    const iotaId = uuid();
    const iota = await connectFrom(`/ws/iota/${iotaId}`);
    const reply = await iota.request(iotaIdentification({ id: iotaId, key: keyHash() }, []));
    expect(reply.type).toBe("error_not_authenticated");
    expect((await iota.closed).code).toBe(4003);
    const client = await connectFrom(`/ws/client/${iotaId}`);
    const refused = await client.request(clientIdentification({ id: iotaId, key: keyHash() }, { id: uuid(), key: keyHash() }));
    expect(refused.data.accepted).toBe(false);
    expect((await client.closed).code).toBe(4003);
    expect(await storedBy(env.HUB, iotaId)).toEqual(NOTHING);
  });

  it("leaves nothing in a call room whose sockets were abandoned or refused", async () => {
    const callId = uuid();
    const [stranger] = (await users(1)) as [Account];
    const idle = await connectFrom(`/ws/call/${callId}`);
    const refusedPeer = await connectFrom(`/ws/call/${callId}`);
    const reply = await refusedPeer.request(callIdentification(callId, { ...stranger, key: keyHash() }));
    expect(reply.data.accepted).toBe(false);
    expect((await refusedPeer.closed).code).toBe(4003);
    await closeAll([idle]);
    expect(await storedBy(env.CALL_ROOM, callId)).toEqual(NOTHING);
  });

  it("drops the alarm of a hub that keeps records once its last socket goes", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const stray = await connectFrom(`/ws/client/${iota.id}`);
    await closeAll([stray]);
    const stored = await storedBy(env.HUB, iota.id);
    expect(stored.alarm).toBeNull();
    // Records pushed by the admin API stay: they are not the sockets' to remove.
    const peer = await connectFrom(`/ws/client/${iota.id}`);
    expect((await peer.request(clientIdentification(iota, alice))).data.accepted).toBe(true);
    await closeAll([peer]);
  });
});
