/**
 * The peer library against the real local Omikron (SPEC §4–§7, §9): identification and its
 * refusals, typed pushes, request/reply correlation, calls, and the close codes it does not
 * reconnect after. Every test makes its own Iotas and users.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type CallPeer,
  type ClientPeer,
  ConnectionClosedError,
  type IotaPeer,
  NotConnectedError,
  OMIKRON_ID,
  RefusedError,
  RequestTimeoutError,
  connectClient,
  connectIota,
  joinCall,
  privateKeyHash,
} from "../../src/peer/index.ts";
import { type Relay, keyHash, startRelay, uuid } from "../e2e/harness.mjs";

let relay: Relay;
const open = new Set<IotaPeer | ClientPeer | CallPeer>();

beforeAll(async () => {
  relay = await startRelay();
});

afterAll(async () => {
  if (relay) await relay.stop();
});

afterEach(async () => {
  await Promise.all([...open].map((peer) => peer.close()));
  open.clear();
});

/** Peers of a test, closed after it; no reconnects and no keep-alives unless a test asks. */
function track<P extends IotaPeer | ClientPeer | CallPeer>(peer: P): P {
  open.add(peer);
  return peer;
}

const quiet = { reconnect: false, keepAliveMs: 0 } as const;

async function iotaOf(iota: { id: string; keyHash: string }, userIds: string[]) {
  return track(await connectIota({ url: relay.wsUrl, iotaId: iota.id, userIds, privateKeyHash: iota.keyHash, ...quiet }));
}

async function clientOf(user: { id: string; keyHash: string; iotaId: string }) {
  return track(await connectClient({ url: relay.httpUrl, iotaId: user.iotaId, userId: user.id, privateKeyHash: user.keyHash, ...quiet }));
}

describe("hub peers", () => {
  it("identifies an Iota and its client, and types the pushes each one gets", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const stranger = uuid();
    const iotaPeer = await iotaOf(iota, [alice.id, stranger]);
    expect(iotaPeer.acceptedUserIds).toEqual([alice.id]);
    expect(iotaPeer.deniedUserIds).toEqual([stranger]);

    const connected = iotaPeer.once("client_connected");
    const phone = await clientOf(alice);
    expect(phone.identification?.data).toEqual({ acceppted: true, accepted: true, iota_online: true });
    expect(await connected).toMatchObject({ type: "client_connected", sender_id: OMIKRON_ID, data: { user_id: alice.id } });

    const disconnected = iotaPeer.once("client_disconnected");
    await phone.close();
    expect((await disconnected).data).toEqual({ user_id: alice.id });

    const laptop = await clientOf(alice);
    const iotaGone = laptop.once("iota_disconnected");
    await iotaPeer.close();
    expect((await iotaGone).data).toEqual({ iota_id: iota.id });
    const iotaBack = laptop.once("iota_connected");
    await iotaOf(iota, [alice.id]);
    expect((await iotaBack).data).toEqual({ iota_id: iota.id });
  });

  it("correlates a client's request with the Iota's answer by id, both ways", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const iotaPeer = await iotaOf(iota, [alice.id]);
    const phone = await clientOf(alice);
    iotaPeer.on("message", (frame) => {
      if (frame.type === "get_chats") iotaPeer.send({ id: frame.id, type: "chats", receiver_id: frame.sender_id, data: { chats: [frame.data?.n] } });
    });
    // An unrelated message in between is an event, not the reply.
    const pushed = phone.once("message");
    iotaPeer.send({ type: "notice", receiver_id: alice.id, data: {} });
    expect(await pushed).toMatchObject({ type: "notice", sender_id: iota.id });

    const reply = await phone.request({ type: "get_chats", data: { n: 7 } });
    expect(reply).toMatchObject({ type: "chats", sender_id: iota.id, data: { chats: [7] } });

    const offline = await iotaPeer.request({ type: "message_send", receiver_id: uuid(), data: {} });
    expect(offline).toMatchObject({ type: "error_invalid_user_id", sender_id: OMIKRON_ID });

    const pong = await phone.ping();
    expect(pong).toMatchObject({ type: "pong", data: { last_ping: -1 } });
    expect(phone.lastPing).toEqual(expect.any(Number));
  });

  it("rejects a request nobody answers with RequestTimeoutError, and one cut short with the close", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const iotaPeer = await iotaOf(iota, [alice.id]);
    const phone = await clientOf(alice);
    await expect(phone.request({ type: "get_chats", data: {} }, 50)).rejects.toBeInstanceOf(RequestTimeoutError);

    const waiting = phone.request({ type: "get_chats", data: {} });
    // Handled from the start: the revocation closes the socket before the admin reply, so the
    // request may be rejected before the DELETE's await resumes (an unhandled rejection then).
    const cutShort = expect(waiting).rejects.toMatchObject({ name: "ConnectionClosedError", code: 4003 });
    await iotaPeer.once("message");
    expect(await relay.admin("DELETE", `/users/${alice.id}`)).toMatchObject({ status: 204 });
    await cutShort;
  });

  it("rejects refused identifications with RefusedError carrying the refusal frame and 4003", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const wrongClient = connectClient({ url: relay.wsUrl, iotaId: iota.id, userId: alice.id, privateKeyHash: keyHash() });
    const clientError = await wrongClient.catch((error: unknown) => error);
    expect(clientError).toBeInstanceOf(RefusedError);
    expect(clientError).toMatchObject({ code: 4003, frame: { type: "identification_response", data: { accepted: false } } });

    const wrongIota = connectIota({ url: relay.wsUrl, iotaId: iota.id, userIds: [], privateKeyHash: keyHash() });
    await expect(wrongIota).rejects.toMatchObject({ name: "RefusedError", code: 4003, frame: { type: "error_not_authenticated" } });
  });

  it("reports an HTTP refusal of the upgrade as close 1006, as a browser would see it", async () => {
    const error = await connectClient({ url: relay.wsUrl, iotaId: "not-a-uuid", userId: uuid(), privateKeyHash: keyHash(), reconnect: false }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({ code: 1006 });
  });

  it("does not reconnect an Iota replaced by another socket (4001)", async () => {
    const iota = await relay.createIota();
    const first = track(await connectIota({ url: relay.wsUrl, iotaId: iota.id, userIds: [], privateKeyHash: iota.keyHash, keepAliveMs: 0 }));
    const disconnected = first.once("disconnected");
    await iotaOf(iota, []);
    expect(await disconnected).toEqual({ code: 4001, reason: "replaced", reconnectInMs: null });
    expect(await first.closed).toEqual({ code: 4001, reason: "replaced" });
    expect(first.state).toBe("closed");
    expect(() => first.send({ type: "anything", receiver_id: uuid() })).toThrow(NotConnectedError);
  });

  it("does not reconnect a client whose credential was revoked (4003)", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const phone = track(await connectClient({ url: relay.wsUrl, iotaId: iota.id, userId: alice.id, privateKeyHash: alice.keyHash, keepAliveMs: 0 }));
    const disconnected = phone.once("disconnected");
    expect(await relay.admin("DELETE", `/users/${alice.id}`)).toMatchObject({ status: 204 });
    expect(await disconnected).toEqual({ code: 4003, reason: "credential revoked", reconnectInMs: null });
    expect(phone.state).toBe("closed");
  });

  it("identifies with a credential derived as SPEC §8.1 describes", async () => {
    const privateKey = "MC4CAQAwBQYDK2VwBCIEIG9tZWdhLXRlc3Qta2V5LWZvci1vbWlrcm9uLXBlZXI=";
    const hash = await privateKeyHash(privateKey);
    // sha256 of the UTF-8 bytes of the base64 text, lower-case hex.
    expect(hash).toBe(await sha256Hex(privateKey));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    const iota = await relay.createIota();
    const userId = uuid();
    expect(await relay.admin("PUT", `/users/${userId}`, { iota_id: iota.id, private_key_hash: hash })).toMatchObject({ status: 201 });
    const phone = await clientOf({ id: userId, keyHash: hash, iotaId: iota.id });
    expect(phone.state).toBe("identified");
  });
});

describe("call peers", () => {
  it("joins a call, keeps its member list current and relays by receiver_id", async () => {
    const callId = uuid();
    const alice = await relay.createUser(await relay.createIota());
    const bob = await relay.createUser(await relay.createIota());
    const aliceCall = track(await joinCall({ url: relay.wsUrl, callId, userId: alice.id, privateKeyHash: alice.keyHash, callState: "muted", ...quiet }));
    expect([...aliceCall.members]).toEqual([[alice.id, { call_state: "muted", user_state: "online" }]]);

    const joined = aliceCall.once("client_connected");
    const bobCall = track(await joinCall({ url: relay.wsUrl, callId, userId: bob.id, privateKeyHash: bob.keyHash, userState: "idle", ...quiet }));
    expect((await joined).data).toEqual({ user_id: bob.id, call_state: "active", user_state: "idle" });
    expect(Object.fromEntries(aliceCall.members)).toEqual({
      [alice.id]: { call_state: "muted", user_state: "online" },
      [bob.id]: { call_state: "active", user_state: "idle" },
    });
    expect(Object.fromEntries(bobCall.members)).toEqual(Object.fromEntries(aliceCall.members));

    const changed = bobCall.once("client_changed");
    aliceCall.change({ call_state: "streaming" });
    expect((await changed).data).toEqual({ user_id: alice.id, call_state: "streaming" });
    expect(bobCall.members.get(alice.id)).toEqual({ call_state: "streaming", user_state: "online" });

    const offer = bobCall.once("message");
    aliceCall.send({ type: "webrtc_sdp", receiver_id: bob.id, data: { kind: "offer", sdp: "v=0" } });
    expect(await offer).toMatchObject({ type: "webrtc_sdp", sender_id: alice.id, data: { kind: "offer" } });

    const left = aliceCall.once("client_disconnected");
    await bobCall.close();
    expect((await left).data).toEqual({ user_id: bob.id });
    expect([...aliceCall.members.keys()]).toEqual([alice.id]);
  });
});

async function sha256Hex(text: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  return createHash("sha256").update(text, "utf8").digest("hex");
}

describe("reconnecting to the real server", () => {
  it("reconnects and identifies again when the server restarts under it", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const phone = track(
      await connectClient({
        url: relay.wsUrl,
        iotaId: iota.id,
        userId: alice.id,
        privateKeyHash: alice.keyHash,
        keepAliveMs: 0,
        reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
      }),
    );
    const first = phone.identification;
    const disconnected = phone.once("disconnected");
    const identified = phone.once("identified");
    await relay.restart();
    const drop = await disconnected;
    // The runtime going away drops the socket without a close frame from the Omikron.
    expect(drop).toMatchObject({ code: 1006, reconnectInMs: expect.any(Number) });
    const again = await identified;
    expect(again.id).not.toBe(first?.id);
    expect(again.data).toEqual({ acceppted: true, accepted: true, iota_online: false });
    expect(phone.state).toBe("identified");

    // The new socket serves: an Iota that connects now reaches the reconnected client.
    const back = phone.once("iota_connected");
    await iotaOf(iota, [alice.id]);
    expect((await back).data).toEqual({ iota_id: iota.id });
  });
});
