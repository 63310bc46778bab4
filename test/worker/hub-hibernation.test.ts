import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type Account, connect, connectClient, connectIota, createIota, createUser, iotaIdentification } from "./support";

/** Tears the hub's instance down; its sockets hibernate and its storage stays (SPEC §10). */
function evictHub(iota: Account): Promise<void> {
  return evictDurableObject(env.HUB.get(env.HUB.idFromName(iota.id)));
}

describe("hub across hibernation (SPEC §10)", () => {
  it("routes both ways after an eviction between identification and relay", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    const client = await connectClient(iota, alice);
    expect((await iotaPeer.next()).type).toBe("client_connected");
    await evictHub(iota);
    client.send({ id: "up", type: "message", data: { n: 1 } });
    expect(await iotaPeer.next()).toEqual({ id: "up", type: "message", data: { n: 1 }, sender_id: alice.id });
    iotaPeer.send({ id: "down", type: "message", receiver_id: alice.id });
    expect(await client.next()).toEqual({ id: "down", type: "message", receiver_id: alice.id, sender_id: iota.id });
  });

  it("keeps reported pings across an eviction between pings", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const bob = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id, bob.id]);
    const phone = await connectClient(iota, alice);
    await connectClient(iota, bob);
    await iotaPeer.next();
    await iotaPeer.next();
    await phone.request({ id: "c", type: "ping", data: { last_ping: 21 } });
    await iotaPeer.request({ id: "i", type: "ping", data: { last_ping: 33 } });
    await evictHub(iota);
    expect((await iotaPeer.request({ id: "i2", type: "ping", data: {} })).data).toEqual({ user_ping: { [alice.id]: 21, [bob.id]: -1 } });
    await evictHub(iota);
    expect((await phone.request({ id: "c2", type: "ping", data: {} })).data).toEqual({ last_ping: 33 });
  });

  it("keeps presence exact with two devices across evictions", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    const phone = await connectClient(iota, alice);
    const laptop = await connectClient(iota, alice);
    expect((await iotaPeer.next()).type).toBe("client_connected");
    await evictHub(iota);
    iotaPeer.send({ id: "both", type: "message", receiver_id: alice.id });
    expect((await phone.next()).id).toBe("both");
    expect((await laptop.next()).id).toBe("both");
    phone.close();
    await phone.closed;
    await evictHub(iota);
    // Still one device online: a ping shows no client_disconnected came first.
    expect((await iotaPeer.request({ id: "p", type: "ping", data: {} })).data).toEqual({ user_ping: { [alice.id]: -1 } });
    iotaPeer.send({ id: "one", type: "message", receiver_id: alice.id });
    expect((await laptop.next()).id).toBe("one");
    laptop.close();
    expect(await iotaPeer.next()).toMatchObject({ type: "client_disconnected", data: { user_id: alice.id } });
  });

  it("tells the Iota of the last device leaving when that close is what wakes the hub", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    const client = await connectClient(iota, alice);
    expect((await iotaPeer.next()).type).toBe("client_connected");
    await evictHub(iota);
    client.close();
    await client.closed;
    expect(await iotaPeer.next()).toMatchObject({ type: "client_disconnected", data: { user_id: alice.id } });
  });

  it("tells clients the Iota left when its close is what wakes the hub", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    const client = await connectClient(iota, alice);
    await evictHub(iota);
    iotaPeer.close();
    await iotaPeer.closed;
    expect(await client.next()).toMatchObject({ type: "iota_disconnected", data: { iota_id: iota.id } });
  });

  it("remembers the Iota's accepted users and a replacement after an eviction", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const first = await connectIota(iota, [alice.id]);
    await evictHub(iota);
    const second = await connect(`/ws/iota/${iota.id}`);
    expect((await second.request(iotaIdentification(iota, [alice.id]))).data.accepted_profiles).toBe(`${alice.id},`);
    expect((await first.closed).code).toBe(4001);
    await evictHub(iota);
    const client = await connectClient(iota, alice);
    expect(await second.next()).toMatchObject({ type: "client_connected", data: { user_id: alice.id } });
    client.send({ id: "x", type: "message" });
    expect((await second.next()).id).toBe("x");
  });

  it("lets a client identify on a socket opened before an eviction", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    const early = await connect(`/ws/client/${iota.id}`);
    await evictHub(iota);
    const reply = await early.request({
      id: "late",
      type: "identification",
      data: { iota_id: iota.id, user_id: alice.id, private_key_hash: alice.key },
    });
    expect(reply.data).toEqual({ acceppted: true, accepted: true, iota_online: true });
    expect((await iotaPeer.next()).type).toBe("client_connected");
  });
});
