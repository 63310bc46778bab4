/**
 * The relay end to end (SPEC §3–§7, §8.2): a real local server, real TCP sockets from Node.
 * Every test makes its own Iotas and users, so tests share the server but no state. Peers are
 * the peer library's (src/peer) with an inbox of every frame they receive after identifying;
 * raw sockets only where a test sends what the library never would (frames before or instead
 * of an identification).
 *
 * Absence ("no second client_connected") is shown without sleeping: the hub writes to a
 * socket in the order it handles events, so once an event has been handled, a ping sent
 * afterwards on the same socket is answered after anything that event produced. If the
 * next frame is the pong, the event produced nothing for that socket.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RefusedError, connectClient, connectIota } from "../../src/peer/index.ts";
import { type Frame, OMIKRON_ID, type Peer, type Relay, UUID_PATTERN, keyHash, startRelay, uuid } from "./harness.mjs";

let relay: Relay;

beforeAll(async () => {
  relay = await startRelay();
});

afterAll(async () => {
  // beforeAll may have failed before assigning; startRelay cleans up after itself then.
  if (relay) await relay.stop();
});

afterEach(({ task }) => {
  if (task.result?.state === "fail" && relay) {
    console.error(`last relay log lines:\n${relay.logs.slice(-40).join("\n")}`);
  }
  relay?.closePeers();
});

/** A frame the Omikron writes itself (SPEC §2): `id` is the request's, or a fresh UUID. */
function omikron(type: string, logLevel: number, data: Record<string, unknown>, id?: string): Frame {
  return {
    id: id ?? expect.stringMatching(UUID_PATTERN),
    type,
    log: { message: expect.stringMatching(/\S/), log_level: logLevel },
    data,
    sender_id: OMIKRON_ID,
  };
}

/** The relayed text (SPEC §2): the sender's object with only `sender_id` added or overwritten. */
function relayed(sent: Record<string, unknown>, senderId: string): string {
  return JSON.stringify({ ...sent, sender_id: senderId });
}

/** Items of a written id list, sorted: the protocol fixes the format, not the order. */
function idItems(list: unknown): string[] {
  expect(list).toMatch(/^([0-9a-f-]{36},)*$/);
  return String(list).split(",").filter(Boolean).sort();
}

/** Shows that nothing is queued for `peer` ahead of the answer to a fresh ping. */
async function expectNothingBefore(peer: Pick<Peer, "request" | "pending">, pong: Record<string, unknown>): Promise<void> {
  const id = uuid();
  expect(await peer.request({ id, type: "ping", data: {} })).toEqual(omikron("pong", -1, pong, id));
  expect(peer.pending()).toEqual([]);
}

describe("HTTP", () => {
  it("answers GET /health with 200 {ok:true}", async () => {
    expect(await relay.http("/health")).toEqual({ status: 200, body: { ok: true } });
  });

  it("provisions Iotas and users through the admin API", async () => {
    const iotaId = uuid();
    const userId = uuid();
    const iotaBody = { private_key_hash: keyHash().toUpperCase() };

    expect(await relay.admin("PUT", `/iotas/${iotaId}`, iotaBody, "wrong-token")).toMatchObject({
      status: 401,
      body: { error: "unauthorized" },
    });
    expect(await relay.admin("PUT", `/iotas/${iotaId}`, iotaBody)).toEqual({ status: 201, body: { iota_id: iotaId, users: [] } });
    expect(await relay.admin("PUT", `/iotas/${iotaId}`, iotaBody)).toEqual({ status: 200, body: { iota_id: iotaId, users: [] } });
    expect(await relay.admin("PUT", `/users/${userId}`, { iota_id: iotaId, private_key_hash: "xyz" })).toMatchObject({
      status: 400,
      body: { error: "invalid_body", field: "private_key_hash" },
    });
    expect(await relay.admin("PUT", `/users/${userId}`, { iota_id: uuid(), private_key_hash: keyHash() })).toMatchObject({
      status: 404,
      body: { error: "iota_not_found" },
    });
    expect(await relay.admin("PUT", `/users/${userId}`, { iota_id: iotaId, private_key_hash: keyHash() })).toEqual({
      status: 201,
      body: { user_id: userId, iota_id: iotaId },
    });
    expect(await relay.admin("GET", `/users/${userId}`)).toEqual({ status: 200, body: { user_id: userId, iota_id: iotaId } });
    expect(await relay.admin("GET", `/iotas/${iotaId}`)).toEqual({ status: 200, body: { iota_id: iotaId, users: [userId] } });
    expect(await relay.admin("GET", `/users/${uuid()}`)).toMatchObject({ status: 404, body: { error: "not_found" } });
  });
});

describe("hub", () => {
  it("relays between an Iota and every device of its users, both ways", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const bob = await relay.createUser(iota);
    const stranger = await relay.createUser(await relay.createIota());

    const iotaPeer = await relay.iota(iota, [alice.id, bob.id, stranger.id]);
    expect(iotaPeer.response).toEqual(
      omikron("identification_response", 0, {
        accepted_profiles: expect.any(String),
        denid_profiles: `${stranger.id},`,
        denied_profiles: `${stranger.id},`,
      }),
    );
    expect(idItems(iotaPeer.response?.data.accepted_profiles)).toEqual([alice.id, bob.id].sort());

    const alicePhone = await relay.client(alice);
    expect(alicePhone.response).toEqual(omikron("identification_response", 0, { acceppted: true, accepted: true, iota_online: true }));
    expect(await iotaPeer.next()).toEqual(omikron("client_connected", 0, { user_id: alice.id }));

    const aliceLaptop = await relay.client(alice);
    // A second device of the same user is no news to the Iota.
    await expectNothingBefore(iotaPeer, { user_ping: { [alice.id]: -1 } });

    const bobPhone = await relay.client(bob);
    expect(await iotaPeer.next()).toEqual(omikron("client_connected", 0, { user_id: bob.id }));

    // Client → Iota: sender_id is stamped (a spoofed one overwritten in place); the rest,
    // unknown fields included, arrives untouched.
    const fromAlice = {
      id: uuid(),
      type: "get_chats",
      sender_id: bob.id,
      data: { limit: 20, nested: { list: [1, "two", null], flag: true } },
      extra_field: "kept",
    };
    aliceLaptop.send(fromAlice);
    expect(await iotaPeer.nextText()).toBe(relayed(fromAlice, alice.id));

    // Iota → client: every device of the receiver gets it with sender_id = iota_id.
    const toAlice = { id: uuid(), type: "message_send", data: { message: "hi", n: 1.5 }, receiver_id: alice.id, extra_field: [1] };
    iotaPeer.send(toAlice);
    expect(await alicePhone.nextText()).toBe(relayed(toAlice, iota.id));
    expect(await aliceLaptop.nextText()).toBe(relayed(toAlice, iota.id));
    await expectNothingBefore(bobPhone, { last_ping: -1 });

    const toBob = { id: uuid(), type: "message_send", data: { message: "yo" }, receiver_id: bob.id.toUpperCase() };
    iotaPeer.send(toBob);
    expect(await bobPhone.nextText()).toBe(relayed(toBob, iota.id));
    await expectNothingBefore(alicePhone, { last_ping: -1 });
    await expectNothingBefore(aliceLaptop, { last_ping: -1 });

    const fromBob = { id: uuid(), type: "get_profile", data: {} };
    bobPhone.send(fromBob);
    expect(await iotaPeer.nextText()).toBe(relayed(fromBob, bob.id));
  });

  it("refuses an Iota frame without receiver_id, and reports a receiver with no device", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const iotaPeer = await relay.iota(iota, [alice.id]);

    const noReceiver = { id: uuid(), type: "message_send", data: {} };
    expect(await iotaPeer.request(noReceiver)).toEqual(omikron("error_invalid_data", 2, {}, noReceiver.id));

    const toOffline = { id: uuid(), type: "message_send", data: {}, receiver_id: alice.id };
    expect(await iotaPeer.request(toOffline)).toEqual(omikron("error_user_offline", 1, { receiver_id: alice.id }, toOffline.id));
  });

  it("answers pings with the other side's last reported round trip", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const iotaPeer = await relay.iota(iota, [alice.id]);
    const phone = await relay.client(alice);
    expect(await iotaPeer.next()).toEqual(omikron("client_connected", 0, { user_id: alice.id }));

    const clientPing = { id: uuid(), type: "ping", log: { message: "Ping", log_level: -1 }, data: { last_ping: 12 } };
    expect(await phone.request(clientPing)).toEqual(omikron("pong", -1, { last_ping: -1 }, clientPing.id));

    const iotaPing = { id: uuid(), type: "ping", data: { last_ping: [34] } };
    expect(await iotaPeer.request(iotaPing)).toEqual(omikron("pong", -1, { user_ping: { [alice.id]: 12 } }, iotaPing.id));

    const bare = { id: uuid(), type: "ping" };
    expect(await phone.request(bare)).toEqual(omikron("pong", -1, { last_ping: 34 }, bare.id));

    const invalid = { id: uuid(), type: "ping", data: { last_ping: "fast" } };
    expect(await phone.request(invalid)).toEqual(omikron("error_invalid_data", 2, {}, invalid.id));
  });

  it("answers the literal text ping with pong before identification, and ignores JSON until then", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);

    for (const path of [`/ws/client/${iota.id}`, `/ws/iota/${iota.id}`, `/ws/call/${uuid()}`]) {
      const peer = await relay.open(path);
      peer.send("ping");
      expect(await peer.nextText()).toBe("pong");
    }

    const phone = await relay.open(`/ws/client/${iota.id}`);
    phone.send({ id: uuid(), type: "ping", data: {} });
    phone.send({ id: uuid(), type: "get_chats", data: {} });
    const identification = {
      id: uuid(),
      type: "identification",
      data: { iota_id: iota.id, user_id: alice.id, private_key_hash: alice.keyHash },
    };
    // Frames are handled in order, so a reply to the earlier JSON would come first.
    expect(await phone.request(identification)).toEqual(
      omikron("identification_response", 0, { acceppted: true, accepted: true, iota_online: false }, identification.id),
    );
    phone.send("ping");
    expect(await phone.nextText()).toBe("pong");
  });

  it("refuses a client with a wrong credential: refusal frame, then close 4003", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const refusal = await connectClient({ url: relay.wsUrl, iotaId: iota.id, userId: alice.id, privateKeyHash: keyHash() }).catch(
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(RefusedError);
    expect(refusal).toMatchObject({
      code: 4003,
      frame: omikron("identification_response", 2, { acceppted: false, accepted: false }),
    });
  });

  it("refuses a client whose identification names another Iota than the path", async () => {
    const iota = await relay.createIota();
    const other = await relay.createIota();
    const alice = await relay.createUser(iota);
    const phone = await relay.open(`/ws/client/${other.id}`);
    const attempt = {
      id: uuid(),
      type: "identification",
      data: { iota_id: iota.id, user_id: alice.id, private_key_hash: alice.keyHash },
    };
    expect(await phone.request(attempt)).toEqual(
      omikron("identification_response", 2, { acceppted: false, accepted: false }, attempt.id),
    );
    expect((await phone.closed).code).toBe(4003);
  });

  it("refuses an Iota with a wrong credential: error_not_authenticated, then close 4003", async () => {
    const iota = await relay.createIota();
    const refusal = await connectIota({ url: relay.wsUrl, iotaId: iota.id, userIds: [], privateKeyHash: keyHash() }).catch(
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(RefusedError);
    expect(refusal).toMatchObject({ code: 4003, frame: omikron("error_not_authenticated", 2, {}) });
  });

  it("tells the Iota client_disconnected only when the user's last device closes", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const iotaPeer = await relay.iota(iota, [alice.id]);
    const phone = await relay.client(alice);
    const laptop = await relay.client(alice);
    expect(await iotaPeer.next()).toEqual(omikron("client_connected", 0, { user_id: alice.id }));

    phone.close(1000, "bye");
    // The echoed code shows the hub has handled the close, so its effects are already queued.
    expect(await phone.closed).toEqual({ code: 1000, reason: "bye" });
    await expectNothingBefore(iotaPeer, { user_ping: { [alice.id]: -1 } });

    laptop.close(1000, "bye");
    expect(await laptop.closed).toEqual({ code: 1000, reason: "bye" });
    expect(await iotaPeer.next()).toEqual(omikron("client_disconnected", 0, { user_id: alice.id }));
    await expectNothingBefore(iotaPeer, { user_ping: {} });
  });

  it("tells clients when the Iota leaves, and answers error_no_iota while it is away", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const iotaPeer = await relay.iota(iota, [alice.id]);
    const phone = await relay.client(alice);

    iotaPeer.close(1000, "bye");
    expect(await iotaPeer.closed).toEqual({ code: 1000, reason: "bye" });
    expect(await phone.next()).toEqual(omikron("iota_disconnected", 0, { iota_id: iota.id }));

    const request = { id: uuid(), type: "get_chats", data: {} };
    expect(await phone.request(request)).toEqual(omikron("error_no_iota", 1, {}, request.id));

    await relay.iota(iota, [alice.id]);
    expect(await phone.next()).toEqual(omikron("iota_connected", 0, { iota_id: iota.id }));
  });

  it("relays a frame sent right behind the identification, after identifying", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const iotaPeer = await relay.iota(iota, [alice.id]);
    const phone = await relay.open(`/ws/client/${iota.id}`);
    const identification = {
      id: uuid(),
      type: "identification",
      data: { iota_id: iota.id, user_id: alice.id, private_key_hash: alice.keyHash },
    };
    const message = { id: uuid(), type: "get_chats", data: {} };
    phone.send(identification);
    phone.send(message);

    expect(await phone.next()).toEqual(
      omikron("identification_response", 0, { acceppted: true, accepted: true, iota_online: true }, identification.id),
    );
    expect(await iotaPeer.next()).toEqual(omikron("client_connected", 0, { user_id: alice.id }));
    expect(await iotaPeer.nextText()).toBe(relayed(message, alice.id));
  });

  it("replaces an Iota's socket with a second one (4001) and keeps serving its clients", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const first = await relay.iota(iota, [alice.id]);
    const phone = await relay.client(alice);
    expect(await first.next()).toEqual(omikron("client_connected", 0, { user_id: alice.id }));

    const second = await relay.iota(iota, [alice.id]);
    expect(second.response).toEqual(
      omikron("identification_response", 0, { accepted_profiles: `${alice.id},`, denid_profiles: "", denied_profiles: "" }),
    );
    expect(await first.closed).toEqual({ code: 4001, reason: "replaced" });
    expect(await phone.next()).toEqual(omikron("iota_connected", 0, { iota_id: iota.id }));
    expect(await second.next()).toEqual(omikron("client_connected", 0, { user_id: alice.id }));

    const request = { id: uuid(), type: "get_chats", data: {} };
    phone.send(request);
    expect(await second.nextText()).toBe(relayed(request, alice.id));
  });

  it("closes a deleted user's sockets with 4003 and no frame before it", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const iotaPeer = await relay.iota(iota, [alice.id]);
    const phone = await relay.client(alice);
    expect(await iotaPeer.next()).toEqual(omikron("client_connected", 0, { user_id: alice.id }));

    expect(await relay.admin("DELETE", `/users/${alice.id}`)).toEqual({ status: 204, body: null });
    expect(await phone.closed).toEqual({ code: 4003, reason: "credential revoked" });
    expect(phone.pending()).toEqual([]);
    expect(await iotaPeer.next()).toEqual(omikron("client_disconnected", 0, { user_id: alice.id }));
  });
});

describe("call room", () => {
  it("lets two members exchange signalling frames and see each other come and go", async () => {
    const callId = uuid();
    const alice = await relay.createUser(await relay.createIota());
    const bob = await relay.createUser(await relay.createIota());

    const aliceSocket = await relay.call(callId, alice, { callState: "muted", userState: "online" });
    expect(aliceSocket.response).toEqual(
      omikron("identification_response", 0, {
        acceppted: true,
        accepted: true,
        user_ids: { [alice.id]: "muted" },
        user_states: { [alice.id]: "online" },
      }),
    );

    const bobSocket = await relay.call(callId, bob);
    expect(bobSocket.response).toEqual(
      omikron("identification_response", 0, {
        acceppted: true,
        accepted: true,
        user_ids: { [alice.id]: "muted", [bob.id]: "active" },
        user_states: { [alice.id]: "online", [bob.id]: "online" },
      }),
    );
    expect(await aliceSocket.next()).toEqual(
      omikron("client_connected", 0, { user_id: bob.id, call_state: "active", user_state: "online" }),
    );

    const offer = { id: uuid(), type: "webrtc_sdp", receiver_id: bob.id, data: { sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n", kind: "offer" } };
    aliceSocket.send(offer);
    expect(await bobSocket.nextText()).toBe(relayed(offer, alice.id));

    const candidate = { id: uuid(), type: "webrtc_ice", data: { candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host" } };
    bobSocket.send(candidate);
    expect(await aliceSocket.nextText()).toBe(relayed(candidate, bob.id));

    bobSocket.close(1000, "bye");
    expect(await bobSocket.closed).toEqual({ code: 1000, reason: "bye" });
    expect(await aliceSocket.next()).toEqual(omikron("client_disconnected", 0, { user_id: bob.id }));
  });
});
