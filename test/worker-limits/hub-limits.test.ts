/**
 * Hub rules that only show at a limit. This project runs with MAX_DEVICES_PER_USER=2,
 * RATE_LIMIT 2/s burst 3 (the Iota too), RATE_LIMIT_CLOSE_AFTER_MS=600,
 * IDENTIFY_TIMEOUT_MS=1500, MAX_UNIDENTIFIED_PER_OBJECT=3, MAX_MESSAGE_BYTES=1024 and
 * IOTA_AUTH=off (see vitest.config.ts).
 */
import { describe, expect, it } from "vitest";
import {
  OMIKRON_ID,
  clientIdentification,
  connect,
  connectClient,
  connectIota,
  createIota,
  createUser,
  iotaIdentification,
  keyHash,
  upgrade,
  uuid,
} from "../worker/support";

describe("device limit (SPEC §4.2)", () => {
  it("refuses one device more than MAX_DEVICES_PER_USER and keeps the others", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    const phone = await connectClient(iota, alice);
    await connectClient(iota, alice);
    expect((await iotaPeer.next()).type).toBe("client_connected");
    const third = await connect(`/ws/client/${iota.id}`);
    expect(await third.request(clientIdentification(iota, alice, "third"))).toEqual({
      id: "third",
      type: "error_too_many_connections",
      log: { message: expect.any(String), log_level: 2 },
      data: {},
      sender_id: OMIKRON_ID,
    });
    expect((await third.closed).code).toBe(4003);
    phone.send({ id: "still", type: "message" });
    expect(await iotaPeer.next()).toMatchObject({ id: "still", sender_id: alice.id });
  });
});

describe("unidentified sockets (SPEC §4)", () => {
  it("admits an upgrade into a full set by closing the oldest waiting socket 4008 (SPEC §4 r2)", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const waiting = [await connect(`/ws/client/${iota.id}`), await connect(`/ws/client/${iota.id}`), await connect(`/ws/client/${iota.id}`)];
    const newcomer = await connect(`/ws/client/${iota.id}`);
    expect(await waiting[0]!.closed).toEqual({ code: 4008, reason: "too many unidentified sockets" });
    expect(waiting[0]!.pending()).toEqual([]);
    // The next oldest goes next, in age order; the others stay and may identify.
    await connect(`/ws/client/${iota.id}`);
    expect((await waiting[1]!.closed).code).toBe(4008);
    expect((await waiting[2]!.request(clientIdentification(iota, alice))).data.accepted).toBe(true);
    expect((await newcomer.request(clientIdentification(iota, alice))).data.accepted).toBe(true);
  });

  it("closes a socket that does not identify in time with 4008 and keeps identified ones", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const idle = await connect(`/ws/client/${iota.id}`);
    const client = await connectClient(iota, alice);
    idle.send({ id: "not-an-attempt", type: "ping" });
    expect(await idle.closed).toEqual({ code: 4008, reason: "identification timeout" });
    expect((await client.request({ id: "p", type: "ping" })).type).toBe("pong");
  });
});

describe("frame size (SPEC §9)", () => {
  it("relays a frame of exactly MAX_MESSAGE_BYTES and closes 1009 on one byte more", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    const shell = '{"id":"e","type":"x","data":{"b":""}}';
    const exact = `{"id":"e","type":"x","data":{"b":"${"ü".repeat(100)}${"a".repeat(1024 - shell.length - 200)}"}}`;
    expect(new TextEncoder().encode(exact).byteLength).toBe(1024);
    client.send(exact);
    expect((await iotaPeer.next()).id).toBe("e");
    client.send(`${exact} `);
    const reply = await client.next();
    expect(reply).toMatchObject({ type: "error_too_large", log: { log_level: 2 }, sender_id: OMIKRON_ID });
    expect(reply.id).not.toBe("e");
    expect((await client.closed).code).toBe(1009);
  });

  it("answers an identification sent right before an over-size frame, then closes 1009", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    const peer = await connect(`/ws/client/${iota.id}`);
    peer.send(clientIdentification(iota, alice, "first"));
    peer.send("x".repeat(1025));
    expect(await peer.next()).toMatchObject({ id: "first", type: "identification_response", data: { accepted: true } });
    expect((await peer.next()).type).toBe("error_too_large");
    expect((await peer.closed).code).toBe(1009);
    expect(await iotaPeer.next()).toMatchObject({ type: "client_connected", data: { user_id: alice.id } });
    expect(await iotaPeer.next()).toMatchObject({ type: "client_disconnected", data: { user_id: alice.id } });
  });

  it("closes an unidentified socket 1009 on an over-size frame", async () => {
    const iota = await createIota();
    const stranger = await connect(`/ws/iota/${iota.id}`);
    stranger.send("x".repeat(1025));
    expect((await stranger.next()).type).toBe("error_too_large");
    expect((await stranger.closed).code).toBe(1009);
  });

  it("measures a binary frame by its byte length", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const client = await connectClient(iota, alice);
    client.ws.send(new Uint8Array(1025));
    expect((await client.next()).type).toBe("error_too_large");
    expect((await client.closed).code).toBe(1009);
  });
});

describe("rate limit (SPEC §9)", () => {
  it("answers only an episode's first rejection, then closes 1008 when the episode lasts", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    // The identification took one token of three; two more pass, the next is rejected.
    for (const id of ["a", "b", "c", "d", "e"]) client.send({ id, type: "message" });
    expect(await client.next()).toEqual({
      id: "c",
      type: "error_rate_limited",
      log: { message: expect.any(String), log_level: 1 },
      data: {},
      sender_id: OMIKRON_ID,
    });
    let sent = 0;
    const flood = setInterval(() => {
      if (sent++ < 100) client.send({ id: `f${sent}`, type: "message" });
    }, 20);
    const closed = await client.closed;
    clearInterval(flood);
    expect(closed.code).toBe(1008);
    const relayed: string[] = [];
    for (;;) {
      const frame = await iotaPeer.next();
      if (frame.type === "client_disconnected") break;
      relayed.push(frame.id);
    }
    expect(relayed.slice(0, 2)).toEqual(["a", "b"]);
    // Frames passed meanwhile only as tokens refilled, never more than the rate allows.
    expect(relayed.length).toBeLessThan(2 + 10);
    expect(client.pending().filter((text) => text.includes("error_rate_limited"))).toEqual([]);
  });

  it("drops over-rate frames before identification without a reply", async () => {
    const iota = await createIota();
    const stranger = await connect(`/ws/client/${iota.id}`);
    for (let i = 0; i < 6; i++) stranger.send({ id: `x${i}`, type: "message" });
    stranger.send("ping");
    expect(await stranger.nextText()).toBe("pong");
    expect(stranger.pending()).toEqual([]);
  });

  it("limits the Iota socket with its own bucket", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    for (const id of ["1", "2", "3"]) iotaPeer.send({ id, type: "ping" });
    expect((await iotaPeer.next()).id).toBe("1");
    expect((await iotaPeer.next()).id).toBe("2");
    expect(await iotaPeer.next()).toMatchObject({ id: "3", type: "error_rate_limited" });
  });
});

describe("IOTA_AUTH=off (SPEC §4.1)", () => {
  it("accepts a registered Iota without checking its credential", async () => {
    const iota = await createIota();
    const peer = await connect(`/ws/iota/${iota.id}`);
    const request = iotaIdentification({ id: iota.id, key: keyHash() }, "");
    expect((await peer.request(request)).type).toBe("identification_response");
    const bare = await connect(`/ws/iota/${iota.id}`);
    expect((await bare.request({ id: "n", type: "identification", data: { iota_id: iota.id, user_ids: "" } })).type).toBe("identification_response");
  });

  it("still refuses an Iota the directory does not know", async () => {
    const stranger = { id: uuid(), key: keyHash() };
    const peer = await connect(`/ws/iota/${stranger.id}`);
    expect((await peer.request(iotaIdentification(stranger, ""))).type).toBe("error_not_authenticated");
    expect((await peer.closed).code).toBe(4003);
  });
});
