import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  type Account,
  OMIKRON_ID,
  type Peer,
  adminFetch,
  clientIdentification,
  connect,
  connectClient,
  connectIota,
  createIota,
  createUser,
  iotaIdentification,
  keyHash,
  uuid,
} from "./support";

/**
 * The admin reply is sent only after every close frame (SPEC §8.2), so once the fetch has
 * returned the close is already on its way and no frame may precede it.
 */
async function expectRevoked(peer: Peer): Promise<void> {
  expect(await peer.closed).toEqual({ code: 4003, reason: "credential revoked" });
  expect(peer.pending()).toEqual([]);
}

/** A socket that is still served: a ping's pong is its next frame. */
async function expectServed(peer: Peer): Promise<void> {
  const id = uuid();
  expect(await peer.request({ id, type: "ping", data: {} })).toMatchObject({ id, type: "pong" });
}

function push(type: string, data: Record<string, unknown>) {
  return {
    id: expect.stringMatching(/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/),
    type,
    log: { message: expect.any(String), log_level: 0 },
    data,
    sender_id: OMIKRON_ID,
  };
}

function putUser(user: Account, iota: Account, key = user.key): Promise<Response> {
  return adminFetch(`/users/${user.id}`, "PUT", { iota_id: iota.id, private_key_hash: key });
}

/** Connects a client and reads the client_connected its first device causes at the Iota. */
async function connectFirstDevice(iota: Account, user: Account, iotaPeer: Peer): Promise<Peer> {
  const client = await connectClient(iota, user);
  expect(await iotaPeer.next()).toEqual(push("client_connected", { user_id: user.id }));
  return client;
}

async function identifyClient(iota: Account, user: Account, key: string): Promise<{ peer: Peer; accepted: unknown }> {
  const peer = await connect(`/ws/client/${iota.id}`);
  const reply = await peer.request(clientIdentification(iota, { id: user.id, key }));
  return { peer, accepted: reply.data.accepted };
}

function callIdentification(callId: string, user: Account, key = user.key, id = uuid()) {
  return {
    id,
    type: "identification",
    log: { message: "Client identifying", log_level: 0 },
    data: { call_id: callId, user_id: user.id, private_key_hash: key },
  };
}

/** Joins a call; every member already in it reads the joiner's client_connected. */
async function joinCall(callId: string, user: Account, members: Peer[] = []): Promise<Peer> {
  const peer = await connect(`/ws/call/${callId}`);
  const reply = await peer.request(callIdentification(callId, user));
  if (reply.data.accepted !== true) throw new Error("call identification was refused");
  for (const member of members) {
    expect(await member.next()).toEqual(push("client_connected", { user_id: user.id, call_state: "active", user_state: "online" }));
  }
  return peer;
}

describe("revoking a user (SPEC §8.2)", () => {
  it("deleting a user closes every device of it with 4003 and tells its Iota client_disconnected", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const iotaPeer = await connectIota(iota, [user.id]);
    const first = await connectFirstDevice(iota, user, iotaPeer);
    const second = await connectClient(iota, user);
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(204);
    await expectRevoked(first);
    await expectRevoked(second);
    expect(await iotaPeer.next()).toEqual(push("client_disconnected", { user_id: user.id }));
  });

  it("deleting a user leaves the clients of the Iota's other users connected and uninformed", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const other = await createUser(iota);
    const iotaPeer = await connectIota(iota, [user.id, other.id]);
    const revoked = await connectFirstDevice(iota, user, iotaPeer);
    const bystander = await connectFirstDevice(iota, other, iotaPeer);
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(204);
    await expectRevoked(revoked);
    await expectServed(bystander);
  });

  it("re-keying a user closes its client sockets with 4003 and tells its Iota client_disconnected", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const iotaPeer = await connectIota(iota, [user.id]);
    const client = await connectFirstDevice(iota, user, iotaPeer);
    expect((await putUser(user, iota, keyHash())).status).toBe(200);
    await expectRevoked(client);
    expect(await iotaPeer.next()).toEqual(push("client_disconnected", { user_id: user.id }));
  });

  it("a PUT with the same credential and owner closes nothing", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const iotaPeer = await connectIota(iota, [user.id]);
    const client = await connectFirstDevice(iota, user, iotaPeer);
    // The same credential in upper case is the same credential (SPEC §8.2 lower-cases it).
    expect((await putUser(user, iota, user.key.toUpperCase())).status).toBe(200);
    await expectServed(client);
    await expectServed(iotaPeer);
  });

  it("moving a user to another Iota closes its client sockets on the old hub", async () => {
    const from = await createIota();
    const to = await createIota();
    const user = await createUser(from);
    const fromPeer = await connectIota(from, [user.id]);
    const client = await connectFirstDevice(from, user, fromPeer);
    expect((await putUser(user, to)).status).toBe(200);
    await expectRevoked(client);
    expect(await fromPeer.next()).toEqual(push("client_disconnected", { user_id: user.id }));
  });

  it("a user's clients are revoked after their hub was evicted", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const iotaPeer = await connectIota(iota, [user.id]);
    const client = await connectFirstDevice(iota, user, iotaPeer);
    await evictDurableObject(env.HUB.get(env.HUB.idFromName(iota.id)));
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(204);
    await expectRevoked(client);
    expect(await iotaPeer.next()).toEqual(push("client_disconnected", { user_id: user.id }));
  });

  it("a deleted user is no longer one the Iota may address", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const iotaPeer = await connectIota(iota, [user.id]);
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(204);
    const id = uuid();
    iotaPeer.send({ id, type: "message_live", data: {}, receiver_id: user.id });
    expect(await iotaPeer.next()).toEqual({
      id,
      type: "error_invalid_user_id",
      log: { message: expect.any(String), log_level: 2 },
      data: { receiver_id: user.id },
      sender_id: OMIKRON_ID,
    });
  });

  it("a moved user is reached through its new Iota, not served by the old one", async () => {
    const from = await createIota();
    const to = await createIota();
    const user = await createUser(from);
    const stays = await createUser(from);
    const fromPeer = await connectIota(from, [user.id, stays.id]);
    const toPeer = await connectIota(to, []);
    expect((await putUser(user, to)).status).toBe(200);
    const text = JSON.stringify({ id: uuid(), type: "message_send", data: {}, receiver_id: user.id, sender_id: stays.id });
    fromPeer.send(text);
    expect(await toPeer.nextText()).toBe(text);
  });
});

describe("revoking an Iota (SPEC §8.2)", () => {
  it("deleting a connected Iota closes its socket and all its users' clients, with no frame first", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const other = await createUser(iota);
    const iotaPeer = await connectIota(iota, [user.id, other.id]);
    const clients = [
      await connectFirstDevice(iota, user, iotaPeer),
      await connectClient(iota, user),
      await connectFirstDevice(iota, other, iotaPeer),
    ];
    expect((await adminFetch(`/iotas/${iota.id}`, "DELETE")).status).toBe(204);
    await expectRevoked(iotaPeer);
    for (const client of clients) await expectRevoked(client);
  });

  it("deleting an Iota leaves other Iotas' sockets connected", async () => {
    const iota = await createIota();
    const neighbour = await createIota();
    const neighbourUser = await createUser(neighbour);
    const neighbourPeer = await connectIota(neighbour, [neighbourUser.id]);
    const neighbourClient = await connectFirstDevice(neighbour, neighbourUser, neighbourPeer);
    await connectIota(iota, []);
    expect((await adminFetch(`/iotas/${iota.id}`, "DELETE")).status).toBe(204);
    await expectServed(neighbourPeer);
    await expectServed(neighbourClient);
  });

  it("re-keying an Iota closes only its socket; its clients stay and receive iota_disconnected", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const iotaPeer = await connectIota(iota, [user.id]);
    const client = await connectFirstDevice(iota, user, iotaPeer);
    const replaced = await adminFetch(`/iotas/${iota.id}`, "PUT", { private_key_hash: keyHash() });
    expect(replaced.status).toBe(200);
    await expectRevoked(iotaPeer);
    expect(await client.next()).toEqual(push("iota_disconnected", { iota_id: iota.id }));
    await expectServed(client);
  });

  it("a PUT of an Iota with its current credential closes nothing", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const iotaPeer = await connectIota(iota, [user.id]);
    const client = await connectFirstDevice(iota, user, iotaPeer);
    const replaced = await adminFetch(`/iotas/${iota.id}`, "PUT", { private_key_hash: iota.key.toUpperCase() });
    expect(replaced.status).toBe(200);
    await expectServed(iotaPeer);
    await expectServed(client);
  });
});

describe("revoking a call member (SPEC §8.2)", () => {
  it("deleting a user closes its socket in every call it is in and tells the other members client_disconnected", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const other = await createUser(iota);
    const calls = [uuid(), uuid()];
    const others: Peer[] = [];
    const revoked: Peer[] = [];
    for (const callId of calls) {
      const member = await joinCall(callId, other);
      others.push(member);
      revoked.push(await joinCall(callId, user, [member]));
    }
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(204);
    for (const peer of revoked) await expectRevoked(peer);
    for (const member of others) expect(await member.next()).toEqual(push("client_disconnected", { user_id: user.id }));
  });

  it("re-keying a user closes its call socket and tells the other members client_disconnected", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const other = await createUser(iota);
    const callId = uuid();
    const member = await joinCall(callId, other);
    const revoked = await joinCall(callId, user, [member]);
    expect((await putUser(user, iota, keyHash())).status).toBe(200);
    await expectRevoked(revoked);
    expect(await member.next()).toEqual(push("client_disconnected", { user_id: user.id }));
  });

  it("moving a user to another Iota closes its call socket", async () => {
    const from = await createIota();
    const to = await createIota();
    const user = await createUser(from);
    const other = await createUser(to);
    const callId = uuid();
    const member = await joinCall(callId, other);
    const revoked = await joinCall(callId, user, [member]);
    expect((await putUser(user, to)).status).toBe(200);
    await expectRevoked(revoked);
    expect(await member.next()).toEqual(push("client_disconnected", { user_id: user.id }));
  });

  it("a PUT with the same credential and owner leaves the user in its call", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const other = await createUser(iota);
    const callId = uuid();
    const member = await joinCall(callId, other);
    const staying = await joinCall(callId, user, [member]);
    expect((await putUser(user, iota)).status).toBe(200);
    await expectServed(staying);
    await expectServed(member);
  });

  it("a user who left a call and rejoined it is revoked there", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const callId = uuid();
    const left = await joinCall(callId, user);
    left.close();
    await left.closed;
    const rejoined = await joinCall(callId, user);
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(204);
    await expectRevoked(rejoined);
  });

  it("a call member is revoked after the call room and the directory were evicted", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const other = await createUser(iota);
    const callId = uuid();
    const member = await joinCall(callId, other);
    const revoked = await joinCall(callId, user, [member]);
    await evictDurableObject(env.CALL_ROOM.get(env.CALL_ROOM.idFromName(callId)));
    await evictDurableObject(env.BUILTIN_DIRECTORY.get(env.BUILTIN_DIRECTORY.idFromName("directory")));
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(204);
    await expectRevoked(revoked);
    expect(await member.next()).toEqual(push("client_disconnected", { user_id: user.id }));
  });

  it("a user who left a call and joined another is revoked in the call it is in", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const left = await joinCall(uuid(), user);
    left.close();
    await left.closed;
    const current = await joinCall(uuid(), user);
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(204);
    await expectRevoked(current);
  });
});

describe("no credential outlives its revocation (SPEC §8.1)", () => {
  it("after re-keying a user, its old credential is refused and its new one accepted", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const client = await connectClient(iota, user);
    const newKey = keyHash();
    expect((await putUser(user, iota, newKey)).status).toBe(200);
    await expectRevoked(client);
    const stale = await identifyClient(iota, user, user.key);
    expect(stale.accepted).toBe(false);
    expect((await stale.peer.closed).code).toBe(4003);
    const fresh = await identifyClient(iota, user, newKey);
    expect(fresh.accepted).toBe(true);
  });

  it("after deleting a user, its credential is refused", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    await connectClient(iota, user);
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(204);
    const stale = await identifyClient(iota, user, user.key);
    expect(stale.accepted).toBe(false);
    expect((await stale.peer.closed).code).toBe(4003);
  });

  it("after moving a user, it identifies at its new Iota and is refused at the old one", async () => {
    const from = await createIota();
    const to = await createIota();
    const user = await createUser(from);
    await connectClient(from, user);
    expect((await putUser(user, to)).status).toBe(200);
    const atOld = await identifyClient(from, user, user.key);
    expect(atOld.accepted).toBe(false);
    expect((await atOld.peer.closed).code).toBe(4003);
    expect((await identifyClient(to, user, user.key)).accepted).toBe(true);
  });

  it("after re-keying an Iota, its old credential is refused and its new one accepted", async () => {
    const iota = await createIota();
    const iotaPeer = await connectIota(iota, []);
    const newKey = keyHash();
    expect((await adminFetch(`/iotas/${iota.id}`, "PUT", { private_key_hash: newKey })).status).toBe(200);
    await expectRevoked(iotaPeer);
    const stale = await connect(`/ws/iota/${iota.id}`);
    expect((await stale.request(iotaIdentification(iota, []))).type).toBe("error_not_authenticated");
    expect((await stale.closed).code).toBe(4003);
    const fresh = await connect(`/ws/iota/${iota.id}`);
    expect((await fresh.request(iotaIdentification({ id: iota.id, key: newKey }, []))).type).toBe("identification_response");
  });

  it("after re-keying a user, a call refuses its old credential and admits its new one", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const callId = uuid();
    const member = await joinCall(callId, user);
    const newKey = keyHash();
    expect((await putUser(user, iota, newKey)).status).toBe(200);
    await expectRevoked(member);
    const stale = await connect(`/ws/call/${callId}`);
    expect((await stale.request(callIdentification(callId, user))).data.accepted).toBe(false);
    expect((await stale.closed).code).toBe(4003);
    const fresh = await connect(`/ws/call/${callId}`);
    expect((await fresh.request(callIdentification(callId, user, newKey))).data.accepted).toBe(true);
  });
});

describe("revocation races (SPEC §8.1, §8.2)", () => {
  it("closes a member's new socket when its old one left while the rejoin was being checked", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const callId = uuid();
    const identification = () => ({ id: uuid(), type: "identification", data: { call_id: callId, user_id: user.id, private_key_hash: user.key } });
    const first = await connect(`/ws/call/${callId}`);
    expect((await first.request(identification())).data.accepted).toBe(true);
    const second = await connect(`/ws/call/${callId}`);
    second.send(identification());
    // The old socket's leave may reach the directory after the rejoin was recorded.
    first.close(1000, "bye");
    expect((await second.next()).data.accepted).toBe(true);
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(204);
    expect(await second.closed).toEqual({ code: 4003, reason: "credential revoked" });
  });

  it("has sent the close frame by the time the admin reply arrives", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const client = await connectClient(iota, user);
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(204);
    expect(client.ws.readyState).not.toBe(WebSocket.OPEN);
    expect((await client.closed).code).toBe(4003);
  });
});
