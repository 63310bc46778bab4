import { describe, expect, it } from "vitest";
import {
  FRESH_ID,
  OMIKRON_ID,
  clientIdentification,
  connect,
  connectClient,
  connectIota,
  createIota,
  createUser,
  iotaIdentification,
  uuid,
} from "./support";

async function setUp() {
  const iota = await createIota();
  const alice = await createUser(iota);
  const bob = await createUser(iota);
  const iotaPeer = await connectIota(iota, [alice.id, bob.id]);
  return { iota, alice, bob, iotaPeer };
}

describe("client to Iota (SPEC §5.1)", () => {
  it("overwrites a spoofed sender_id and keeps every other field in order", async () => {
    const { iota, alice, iotaPeer } = await setUp();
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    client.send(`{"zeta":1,"sender_id":"${uuid()}","id":"m1","type":"send_message","data":{"text":"hi","extra":[1,{"a":null}]},"receiver_id":"${uuid()}"}`);
    const relayed = await iotaPeer.nextText();
    const parsed = JSON.parse(relayed) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(["zeta", "sender_id", "id", "type", "data", "receiver_id"]);
    expect(parsed.sender_id).toBe(alice.id);
    expect(parsed.data).toEqual({ text: "hi", extra: [1, { a: null }] });
  });

  it("relays a frame that carries sender_id with its key order kept", async () => {
    const { iota, alice, iotaPeer } = await setUp();
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    client.send('{"id":"k1","type":"get_chats","sender_id":"spoofed","data":{"b":1,"10":2,"2":3}}');
    expect(await iotaPeer.nextText()).toBe(`{"id":"k1","type":"get_chats","sender_id":"${alice.id}","data":{"b":1,"10":2,"2":3}}`);
  });

  it("adds sender_id without touching the sender's text", async () => {
    const { iota, alice, iotaPeer } = await setUp();
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    client.send('{"type":"big","data":{"n":123456789012345678901234567890}}');
    expect(await iotaPeer.nextText()).toBe(`{"type":"big","data":{"n":123456789012345678901234567890},"sender_id":"${alice.id}"}`);
  });

  it("answers error_no_iota when the Iota is not connected, and queues nothing", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const client = await connectClient(iota, alice);
    const reply = await client.request({ id: "m1", type: "get_chats", data: {} });
    expect(reply).toEqual({
      id: "m1",
      type: "error_no_iota",
      log: { message: expect.any(String), log_level: 1 },
      data: {},
      sender_id: OMIKRON_ID,
    });
    const iotaPeer = await connectIota(iota, [alice.id]);
    expect((await iotaPeer.next()).type).toBe("client_connected");
    expect((await iotaPeer.request({ id: "p", type: "ping", data: {} })).type).toBe("pong");
  });

  it("refuses types only the Omikron writes and does not relay them", async () => {
    const { iota, alice, iotaPeer } = await setUp();
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    for (const type of ["identification_response", "pong", "client_connected", "client_disconnected", "iota_connected", "iota_disconnected"]) {
      expect(await client.request({ id: type, type, data: {} })).toMatchObject({ id: type, type: "error_invalid_data" });
    }
    client.send({ id: "after", type: "get_chats" });
    expect((await iotaPeer.next()).id).toBe("after");
  });

  it("relays error types a client sends, since only the listed types are reserved", async () => {
    const { iota, alice, iotaPeer } = await setUp();
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    client.send({ id: "e", type: "error_custom", data: {} });
    expect(await iotaPeer.next()).toEqual({ id: "e", type: "error_custom", data: {}, sender_id: alice.id });
  });

  it("answers a non-ping frame addressed to the Omikron with error_invalid_data", async () => {
    const { iota, alice, iotaPeer } = await setUp();
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    const reply = await client.request({ id: "x", type: "get_chats", receiver_id: OMIKRON_ID.toUpperCase() });
    expect(reply).toMatchObject({ id: "x", type: "error_invalid_data" });
    client.send({ id: "after", type: "get_chats" });
    expect((await iotaPeer.next()).id).toBe("after");
  });
});

describe("Iota to client (SPEC §5.2)", () => {
  it("delivers to every device of the receiver with sender_id set to the iota_id", async () => {
    const { iota, alice, bob, iotaPeer } = await setUp();
    const phone = await connectClient(iota, alice);
    const laptop = await connectClient(iota, alice);
    const other = await connectClient(iota, bob);
    await iotaPeer.next();
    await iotaPeer.next();
    iotaPeer.send({ id: "r1", type: "message", data: { text: "hey" }, receiver_id: alice.id.toUpperCase(), extra: true });
    const expected = { id: "r1", type: "message", data: { text: "hey" }, receiver_id: alice.id.toUpperCase(), extra: true, sender_id: iota.id };
    expect(await phone.next()).toEqual(expected);
    expect(await laptop.next()).toEqual(expected);
    expect((await other.request({ id: "p", type: "ping", data: {} })).type).toBe("pong");
  });

  it("answers error_user_offline naming the receiver when no device is connected", async () => {
    const { alice, iotaPeer } = await setUp();
    expect(await iotaPeer.request({ id: "r2", type: "message", receiver_id: alice.id })).toEqual({
      id: "r2",
      type: "error_user_offline",
      log: { message: expect.any(String), log_level: 1 },
      data: { receiver_id: alice.id },
      sender_id: OMIKRON_ID,
    });
  });

  it("answers error_invalid_user_id for a receiver the directory does not know", async () => {
    const { iotaPeer } = await setUp();
    const stranger = uuid();
    const reply = await iotaPeer.request({ id: "r3", type: "message", receiver_id: stranger });
    expect(reply).toMatchObject({ id: "r3", type: "error_invalid_user_id", log: { log_level: 2 } });
  });

  it("serves a user the directory gained after the Iota identified", async () => {
    const { iota, iotaPeer } = await setUp();
    const carol = await createUser(iota);
    const client = await connectClient(iota, carol);
    expect(await iotaPeer.next()).toMatchObject({ type: "client_connected", data: { user_id: carol.id } });
    iotaPeer.send({ id: "r4", type: "message", receiver_id: carol.id });
    expect(await client.next()).toMatchObject({ id: "r4", sender_id: iota.id });
  });

  for (const [what, receiver] of [
    ["missing", undefined],
    ["not a UUID", "bob"],
    ["not a string", 12],
  ] as const) {
    it(`answers error_invalid_data when receiver_id is ${what}`, async () => {
      const { iotaPeer } = await setUp();
      const reply = await iotaPeer.request({ id: "bad", type: "message", receiver_id: receiver });
      expect(reply).toMatchObject({ id: "bad", type: "error_invalid_data", log: { log_level: 2 }, sender_id: OMIKRON_ID });
    });
  }

  it("lets the Iota send error replies of its own to clients", async () => {
    const { iota, alice, iotaPeer } = await setUp();
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    iotaPeer.send({ id: "e1", type: "error_not_found", data: {}, receiver_id: alice.id });
    expect(await client.next()).toMatchObject({ id: "e1", type: "error_not_found", sender_id: iota.id });
  });
});

describe("presence (SPEC §4.1, §4.2)", () => {
  it("tells the Iota of a user's first device only and of the last device leaving only", async () => {
    const { iota, alice, iotaPeer } = await setUp();
    const phone = await connectClient(iota, alice);
    expect(await iotaPeer.next()).toMatchObject({ type: "client_connected", data: { user_id: alice.id }, sender_id: OMIKRON_ID });
    const laptop = await connectClient(iota, alice);
    phone.close();
    await phone.closed;
    // A ping round trip proves no client_connected or client_disconnected came in between.
    expect((await iotaPeer.request({ id: "p1", type: "ping", data: {} })).type).toBe("pong");
    iotaPeer.send({ id: "still", type: "message", receiver_id: alice.id });
    expect((await laptop.next()).id).toBe("still");
    laptop.close();
    expect(await iotaPeer.next()).toMatchObject({ type: "client_disconnected", data: { user_id: alice.id }, log: { log_level: 0 } });
  });

  it("tells a newly identified Iota who is online, after its identification_response", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const bob = await createUser(iota);
    await connectClient(iota, alice);
    await connectClient(iota, alice);
    await connectClient(iota, bob);
    const peer = await connect(`/ws/iota/${iota.id}`);
    expect((await peer.request(iotaIdentification(iota, [alice.id, bob.id]))).type).toBe("identification_response");
    const online = [await peer.next(), await peer.next()];
    expect(online.map((frame) => frame.type)).toEqual(["client_connected", "client_connected"]);
    expect(online.map((frame) => frame.data.user_id).sort()).toEqual([alice.id, bob.id].sort());
    expect((await peer.request({ id: "p", type: "ping", data: {} })).type).toBe("pong");
  });

  it("pushes iota_connected and iota_disconnected to identified clients only", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const client = await connectClient(iota, alice);
    const stranger = await connect(`/ws/client/${iota.id}`);
    const iotaPeer = await connectIota(iota, [alice.id]);
    expect(await client.next()).toMatchObject({ type: "iota_connected", data: { iota_id: iota.id }, sender_id: OMIKRON_ID });
    iotaPeer.close();
    expect(await client.next()).toMatchObject({ type: "iota_disconnected", data: { iota_id: iota.id } });
    expect(stranger.pending()).toEqual([]);
    expect((await client.request({ id: "m", type: "x" })).type).toBe("error_no_iota");
  });

  it("replaces the Iota: the old socket closes 4001 and clients keep working with the new one", async () => {
    const { iota, alice, iotaPeer: first } = await setUp();
    const client = await connectClient(iota, alice);
    await first.next();
    const second = await connect(`/ws/iota/${iota.id}`);
    expect((await second.request(iotaIdentification(iota, [alice.id]))).type).toBe("identification_response");
    expect(await first.closed).toEqual({ code: 4001, reason: "replaced" });
    expect(await second.next()).toMatchObject({ type: "client_connected", data: { user_id: alice.id } });
    expect(await client.next()).toMatchObject({ type: "iota_connected", data: { iota_id: iota.id } });
    client.send({ id: "to-new", type: "message" });
    expect(await second.next()).toMatchObject({ id: "to-new", sender_id: alice.id });
    second.send({ id: "from-new", type: "message", receiver_id: alice.id });
    // No iota_disconnected came from the old socket's close: the next frame is the relay.
    expect((await client.next()).id).toBe("from-new");
  });

  it("keeps the Iota's socket when a replacement attempt is refused", async () => {
    const { iota, alice, iotaPeer } = await setUp();
    const impostor = await connect(`/ws/iota/${iota.id}`);
    await impostor.request({ ...iotaIdentification(iota, ""), data: { iota_id: iota.id, user_ids: "", private_key_hash: "0".repeat(64) } });
    expect((await impostor.closed).code).toBe(4003);
    const client = await connectClient(iota, alice);
    expect((await iotaPeer.next()).type).toBe("client_connected");
    expect((await client.request({ id: "p", type: "ping", data: {} })).type).toBe("pong");
  });
});

describe("ping and pong (SPEC §6)", () => {
  it("answers a client with the Iota's last ping, or -1", async () => {
    const { iota, alice, iotaPeer } = await setUp();
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    expect(await client.request({ id: "c1", type: "ping", data: { last_ping: 30 } })).toEqual({
      id: "c1",
      type: "pong",
      log: { message: expect.any(String), log_level: -1 },
      data: { last_ping: -1 },
      sender_id: OMIKRON_ID,
    });
    await iotaPeer.request({ id: "i1", type: "ping", data: { last_ping: [42] } });
    expect((await client.request({ id: "c2", type: "ping", data: {} })).data).toEqual({ last_ping: 42 });
  });

  it("answers the Iota with each online user's latest ping, -1 for users who never pinged", async () => {
    const { iota, alice, bob, iotaPeer } = await setUp();
    const phone = await connectClient(iota, alice);
    const laptop = await connectClient(iota, alice);
    await connectClient(iota, bob);
    await iotaPeer.next();
    await iotaPeer.next();
    await phone.request({ id: "1", type: "ping", data: { last_ping: 80 } });
    await laptop.request({ id: "2", type: "ping", data: { last_ping: 15 } });
    expect(await iotaPeer.request({ id: "i", type: "ping", data: { last_ping: 5 } })).toEqual({
      id: "i",
      type: "pong",
      log: { message: expect.any(String), log_level: -1 },
      data: { user_ping: { [alice.id]: 15, [bob.id]: -1 } },
      sender_id: OMIKRON_ID,
    });
  });

  it("answers a ping addressed to the Omikron", async () => {
    const { iotaPeer } = await setUp();
    const reply = await iotaPeer.request({ id: "o", type: "ping", receiver_id: OMIKRON_ID, data: {} });
    expect(reply).toMatchObject({ id: "o", type: "pong" });
  });

  it("gives a pong a fresh id when the ping has none", async () => {
    const { iotaPeer } = await setUp();
    const reply = await iotaPeer.request({ type: "ping" });
    expect(reply.type).toBe("pong");
    expect(reply.id).toMatch(FRESH_ID);
  });

  for (const bad of [-2, "12", [1, 2], [], null, { ms: 3 }, true]) {
    it(`refuses last_ping ${JSON.stringify(bad)} with error_invalid_data and stores nothing`, async () => {
      const { iota, alice, iotaPeer } = await setUp();
      const client = await connectClient(iota, alice);
      await iotaPeer.next();
      await iotaPeer.request({ id: "good", type: "ping", data: { last_ping: 9 } });
      expect(await iotaPeer.request({ id: "bad", type: "ping", data: { last_ping: bad } })).toMatchObject({ id: "bad", type: "error_invalid_data" });
      expect((await client.request({ id: "c", type: "ping", data: {} })).data).toEqual({ last_ping: 9 });
    });
  }

  it("answers the literal text ping with pong before identification", async () => {
    const iota = await createIota();
    const peer = await connect(`/ws/client/${iota.id}`);
    peer.send("ping");
    expect(await peer.nextText()).toBe("pong");
    const user = await createUser(iota);
    expect((await peer.request(clientIdentification(iota, user))).type).toBe("identification_response");
  });
});
