/**
 * The directory without a global object on the hot path (SPEC §8.1 r2), shown by making the
 * directory's objects fail: hubs identify their peers from their own records, revocations
 * reach them before the admin reply, and a push that fails is retried by the outbox.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  type Account,
  type Peer,
  adminFetch,
  clientIdentification,
  connect,
  connectClient,
  connectIota,
  createIota,
  createUser,
  errorReply,
  iotaIdentification,
  keyHash,
  uuid,
} from "../worker/support";
import { callIdentification } from "../worker/calls";
import { faults } from "./entry";

afterEach(() => {
  faults.directoryUnreachable = false;
  faults.stall = null;
  faults.failNextPush.clear();
  faults.failNextRecordPush.clear();
  faults.refuseRevokingRecordPush.clear();
});

async function identifyClient(iota: Account, user: Account, key = user.key): Promise<{ peer: Peer; accepted: unknown }> {
  const peer = await connect(`/ws/client/${iota.id}`);
  const reply = await peer.request(clientIdentification(iota, { id: user.id, key }));
  return { peer, accepted: reply.data.accepted };
}

/** Two users of one Iota in one call: `revoked` is the one a test revokes, `stays` hears of it. */
async function twoInACall(): Promise<{ iota: Account; user: Account; callId: string; stays: Peer; revoked: Peer }> {
  const iota = await createIota();
  const user = await createUser(iota);
  const other = await createUser(iota);
  const callId = uuid();
  const stays = await connect(`/ws/call/${callId}`);
  expect((await stays.request(callIdentification(callId, other))).data.accepted).toBe(true);
  const revoked = await connect(`/ws/call/${callId}`);
  expect((await revoked.request(callIdentification(callId, user))).data.accepted).toBe(true);
  expect((await stays.next()).type).toBe("client_connected");
  return { iota, user, callId, stays, revoked };
}

async function expectServed(peer: Peer): Promise<void> {
  const id = uuid();
  expect(await peer.request({ id, type: "ping", data: {} })).toMatchObject({ id, type: "pong" });
}

describe("identification needs no directory object (SPEC §8.1 r2)", () => {
  it("identifies an Iota and its client while every directory object is unreachable", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    faults.directoryUnreachable = true;
    const iotaPeer = await connectIota(iota, [user.id]);
    const client = await connectClient(iota, user);
    expect((await iotaPeer.next()).type).toBe("client_connected");
    client.send({ id: uuid(), type: "message", data: {} });
    expect((await iotaPeer.next()).sender_id).toBe(user.id);
    // The fault is real: what does need a directory object fails meanwhile.
    const callId = uuid();
    const member = await connect(`/ws/call/${callId}`);
    member.send({ id: uuid(), type: "identification", data: { call_id: callId, user_id: user.id, private_key_hash: user.key } });
    expect(await member.next()).toMatchObject({ type: "identification_response" });
    expect((await member.closed).code).toBe(1011);
  });

  it("refuses a revoked credential at the hub as soon as the admin reply is in, with the directory unreachable", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const newKey = keyHash();
    expect((await adminFetch(`/users/${user.id}`, "PUT", { iota_id: iota.id, private_key_hash: newKey })).status).toBe(200);
    faults.directoryUnreachable = true;
    const stale = await identifyClient(iota, user);
    expect(stale.accepted).toBe(false);
    expect((await stale.peer.closed).code).toBe(4003);
    expect((await identifyClient(iota, user, newKey)).accepted).toBe(true);
    const iotaPeer = await connect(`/ws/iota/${iota.id}`);
    expect((await iotaPeer.request(iotaIdentification({ id: iota.id, key: keyHash() }, []))).type).toBe("error_not_authenticated");
  });
});

describe("durable propagation (SPEC §8.1 r2, §8.2)", () => {
  it("answers 503 propagation_pending when a push fails, and closes the revoked socket once the retry lands", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const client = await connectClient(iota, user);
    faults.failNextPush.add(iota.id);
    const reply = await adminFetch(`/users/${user.id}`, "DELETE");
    expect(reply.status).toBe(503);
    expect(await reply.json()).toEqual({ error: "propagation_pending", message: expect.any(String) });
    expect(Number(reply.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    // The change stands: the record is gone, and a repeated DELETE answers 404 as before.
    expect((await adminFetch(`/users/${user.id}`)).status).toBe(404);
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(404);
    // The outbox's alarm retries without anyone asking; the revoked socket is then closed.
    expect(await client.closed).toEqual({ code: 4003, reason: "credential revoked" });
    expect(client.pending()).toEqual([]);
    expect((await identifyClient(iota, user)).accepted).toBe(false);
  });

  it("closes a revoked call member once the retry lands, when the first push stored the record but could not close", async () => {
    const { user, callId, stays, revoked } = await twoInACall();
    faults.failNextRecordPush.add(user.id);
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(503);
    expect(await revoked.closed).toEqual({ code: 4003, reason: "credential revoked" });
    expect(await stays.next()).toMatchObject({ type: "client_disconnected", data: { user_id: user.id } });
    const again = await connect(`/ws/call/${callId}`);
    expect((await again.request(callIdentification(callId, user))).data.accepted).toBe(false);
  });

  it("closes a call member revoked by a failed push even when a later change reached the record first", async () => {
    const { iota, user, callId, stays, revoked } = await twoInACall();
    // The re-key's push to the user's record fails before it stores anything ...
    faults.refuseRevokingRecordPush.add(user.id);
    const newKey = keyHash();
    expect((await adminFetch(`/users/${user.id}`, "PUT", { iota_id: iota.id, private_key_hash: newKey })).status).toBe(503);
    // ... and a newer change (the Iota's removal, which revokes no call socket) lands there first.
    expect([204, 503]).toContain((await adminFetch(`/iotas/${iota.id}`, "DELETE")).status);
    await expectServed(revoked);
    // When the re-key's retry lands, the socket that joined with the old key is closed.
    faults.refuseRevokingRecordPush.clear();
    expect(await revoked.closed).toEqual({ code: 4003, reason: "credential revoked" });
    const again = await connect(`/ws/call/${callId}`);
    expect((await again.request(callIdentification(callId, user))).data.accepted).toBe(false);
    expect((await (await connect(`/ws/call/${callId}`)).request(callIdentification(callId, { id: user.id, key: newKey }))).data.accepted).toBe(true);
  });

  it("a repeated PUT after a failed push pushes what the first left pending", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const client = await connectClient(iota, user);
    const newKey = keyHash();
    const body = { iota_id: iota.id, private_key_hash: newKey };
    faults.failNextPush.add(iota.id);
    expect((await adminFetch(`/users/${user.id}`, "PUT", body)).status).toBe(503);
    await expectServed(client);
    // Nothing changes this time, but the reply waits for the pending push of the first.
    expect((await adminFetch(`/users/${user.id}`, "PUT", body)).status).toBe(200);
    expect(client.ws.readyState).not.toBe(WebSocket.OPEN);
    expect(await client.closed).toEqual({ code: 4003, reason: "credential revoked" });
  });
});

describe("negative cache and lookup budget (SPEC §5.2 r2)", () => {
  it("answers an unknown receiver from memory for a while, and forgets it at once when the user is created", async () => {
    const iota = await createIota();
    const sender = await createUser(iota);
    const other = await createIota();
    const iotaPeer = await connectIota(iota, [sender.id]);
    const otherPeer = await connectIota(other, []);
    const receiver = uuid();
    const frame = () => ({ id: uuid(), type: "message_send", data: {}, receiver_id: receiver, sender_id: sender.id });
    const first = frame();
    expect(await iotaPeer.request(first)).toEqual(errorReply("error_invalid_user_id", first.id, 2, { receiver_id: receiver }));
    // With the user records unreachable, the answer still comes: it is remembered.
    faults.directoryUnreachable = true;
    const second = frame();
    expect(await iotaPeer.request(second)).toEqual(errorReply("error_invalid_user_id", second.id, 2, { receiver_id: receiver }));
    faults.directoryUnreachable = false;
    const created = await adminFetch(`/users/${receiver}`, "PUT", { iota_id: other.id, private_key_hash: keyHash() });
    expect(created.status).toBe(201);
    const text = JSON.stringify(frame());
    iotaPeer.send(text);
    expect(await otherPeer.nextText()).toBe(text);
  });

  it("answers error_rate_limited to a frame beyond MAX_PENDING_LOOKUPS lookups in flight, and relays the rest", async () => {
    const iota = await createIota();
    const sender = await createUser(iota);
    const other = await createIota();
    const receivers = [];
    for (let i = 0; i < 65; i++) receivers.push(await createUser(other));
    const iotaPeer = await connectIota(iota, [sender.id]);
    const otherPeer = await connectIota(other, []);
    let release = () => {};
    faults.stall = new Promise<void>((resolve) => {
      release = resolve;
    });
    const frames = receivers.map((receiver) => ({ id: uuid(), type: "message_send", data: {}, receiver_id: receiver.id, sender_id: sender.id }));
    for (const frame of frames.slice(0, 64)) iotaPeer.send(frame);
    const over = frames[64];
    expect(await iotaPeer.request(over)).toEqual(errorReply("error_rate_limited", over?.id ?? "", 1, {}));
    release();
    const relayed = new Set<string>();
    for (let i = 0; i < 64; i++) relayed.add(JSON.parse(await otherPeer.nextText()).id);
    expect(relayed).toEqual(new Set(frames.slice(0, 64).map((frame) => frame.id)));
    // With the lookups done, the budget is free again.
    const again = { ...over, id: uuid() };
    iotaPeer.send(again);
    expect(JSON.parse(await otherPeer.nextText()).id).toBe(again.id);
  });
});
