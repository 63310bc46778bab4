import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  type Member,
  accepted,
  attempt,
  callIdentification,
  callOfThree,
  connected,
  expectNothingElse,
  invalidData,
  join,
  pong,
  refused,
  users,
} from "./calls";
import { type Account, OMIKRON_ID, adminFetch, connect, fromOmikron, keyHash, uuid } from "./support";

const RESERVED_TYPES = ["identification_response", "pong", "client_connected", "client_disconnected", "iota_connected", "iota_disconnected"];

/** The other members still relay to each other and answer pings. */
async function expectStillServing(sender: Member, receiver: Member, bystander: Member): Promise<void> {
  const signal = { id: uuid(), type: "webrtc_ice", data: { candidate: "candidate:1 1 udp 1 10.0.0.1 9 typ host" }, receiver_id: receiver.user.id };
  sender.peer.send(signal);
  expect(await receiver.peer.next()).toEqual({ ...signal, sender_id: sender.user.id });
  await expectNothingElse(bystander.peer);
  await expectNothingElse(sender.peer);
}

describe("joining a call (SPEC §7)", () => {
  it("answers the first member with itself alone, in the default states active and online", async () => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    const { reply, id } = await attempt(callId, alice);
    expect(reply).toEqual(accepted(id, { [alice.id]: "active" }, { [alice.id]: "online" }));
  });

  it("answers a joiner with every member's call and user state, its own included", async () => {
    const callId = uuid();
    const [alice, bob, carol] = (await users(3)) as [Account, Account, Account];
    await join(callId, alice, { call_state: "muted", user_state: "dnd" });
    await join(callId, bob, { call_state: "streaming" });
    const { reply, id } = await attempt(callId, carol, { call_state: "deafed", user_state: "idle" });
    expect(reply).toEqual(
      accepted(
        id,
        { [alice.id]: "muted", [bob.id]: "streaming", [carol.id]: "deafed" },
        { [alice.id]: "dnd", [bob.id]: "online", [carol.id]: "idle" },
      ),
    );
  });

  it("sends client_connected with the joiner's states to every other member and nothing to the joiner", async () => {
    const callId = uuid();
    const [alice, bob, carol] = (await users(3)) as [Account, Account, Account];
    const alicePeer = await join(callId, alice);
    const bobPeer = await join(callId, bob);
    expect(await alicePeer.next()).toEqual(connected(bob));
    const carolPeer = await join(callId, carol, { call_state: "muted", user_state: "away" });
    expect(await alicePeer.next()).toEqual(connected(carol, "muted", "away"));
    expect(await bobPeer.next()).toEqual(connected(carol, "muted", "away"));
    await expectNothingElse(carolPeer);
    await expectNothingElse(alicePeer);
    await expectNothingElse(bobPeer);
  });

  it.each(["active", "streaming", "muted", "deafed"])("accepts the call state %s at identification", async (callState) => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    const { reply, id } = await attempt(callId, alice, { call_state: callState });
    expect(reply).toEqual(accepted(id, { [alice.id]: callState }, { [alice.id]: "online" }));
  });

  it("accepts a user state of exactly 64 characters", async () => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    const state = "s".repeat(64);
    const { reply, id } = await attempt(callId, alice, { user_state: state });
    expect(reply).toEqual(accepted(id, { [alice.id]: "active" }, { [alice.id]: state }));
  });

  it("compares the call and user ids case-insensitively and reports them in lower case", async () => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    const peer = await connect(`/ws/call/${callId.toUpperCase()}`);
    const id = uuid();
    const reply = await peer.request({
      id,
      type: "identification",
      data: { call_id: callId.toUpperCase(), user_id: alice.id.toUpperCase(), private_key_hash: alice.key.toUpperCase() },
    });
    expect(reply).toEqual(accepted(id, { [alice.id]: "active" }, { [alice.id]: "online" }));
  });

  it("ignores every frame before the identification, pings included", async () => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    const peer = await connect(`/ws/call/${callId}`);
    peer.send({ id: "early-ping", type: "ping", data: {} });
    peer.send({ id: "early-signal", type: "webrtc_sdp", data: {} });
    peer.send("not json");
    const id = uuid();
    expect(await peer.request(callIdentification(callId, alice, {}, id))).toEqual(
      accepted(id, { [alice.id]: "active" }, { [alice.id]: "online" }),
    );
    await expectNothingElse(peer);
  });

  it("handles frames sent right after the identification once it has succeeded", async () => {
    const callId = uuid();
    const [alice, bob] = (await users(2)) as [Account, Account];
    const alicePeer = await join(callId, alice);
    const bobPeer = await connect(`/ws/call/${callId}`);
    const id = uuid();
    const signal = { id: uuid(), type: "webrtc_sdp", data: { sdp: "v=0" }, receiver_id: alice.id };
    bobPeer.send(callIdentification(callId, bob, {}, id));
    bobPeer.send(signal);
    expect(await bobPeer.next()).toEqual(
      accepted(id, { [alice.id]: "active", [bob.id]: "active" }, { [alice.id]: "online", [bob.id]: "online" }),
    );
    expect(await alicePeer.next()).toEqual(connected(bob));
    expect(await alicePeer.next()).toEqual({ ...signal, sender_id: bob.id });
  });
});

describe("identification refusals (SPEC §4, §7)", () => {
  async function expectRefused(callId: string, identification: Record<string, unknown> & { id: string }): Promise<void> {
    const peer = await connect(`/ws/call/${callId}`);
    expect(await peer.request(identification)).toEqual(refused(identification.id));
    expect((await peer.closed).code).toBe(4003);
  }

  it("refuses a wrong credential with both flags false and closes 4003", async () => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    await expectRefused(callId, callIdentification(callId, { id: alice.id, key: keyHash() }));
  });

  it("refuses a user the directory does not know", async () => {
    const callId = uuid();
    await expectRefused(callId, callIdentification(callId, { id: uuid(), key: keyHash() }));
  });

  it("refuses an identification that names another call than the path", async () => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    await expectRefused(callId, { ...callIdentification(uuid(), alice), id: uuid() });
  });

  it.each([
    ["an unknown call state", { call_state: "speaking" }],
    ["an empty call state", { call_state: "" }],
    ["a call state in the wrong case", { call_state: "MUTED" }],
    ["a call state that is not a string", { call_state: 1 }],
    ["a null call state", { call_state: null }],
    ["an empty user state", { user_state: "" }],
    ["a user state of 65 characters", { user_state: "s".repeat(65) }],
    ["a user state that is not a string", { user_state: 7 }],
  ])("refuses %s", async (_name, extra) => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    await expectRefused(callId, callIdentification(callId, alice, extra));
  });

  it.each([
    ["data that is not an object", (base: ReturnType<typeof callIdentification>) => ({ ...base, data: "call" })],
    ["a missing data object", (base: ReturnType<typeof callIdentification>) => ({ id: base.id, type: base.type })],
    ["a missing credential", (base: ReturnType<typeof callIdentification>) => ({ ...base, data: { call_id: base.data.call_id, user_id: base.data.user_id } })],
    ["a credential that is not 64 hex characters", (base: ReturnType<typeof callIdentification>) => ({ ...base, data: { ...base.data, private_key_hash: "abc" } })],
    ["a user id that is not a UUID", (base: ReturnType<typeof callIdentification>) => ({ ...base, data: { ...base.data, user_id: "alice" } })],
    ["a missing call id", (base: ReturnType<typeof callIdentification>) => ({ ...base, data: { user_id: base.data.user_id, private_key_hash: base.data.private_key_hash } })],
  ])("refuses an attempt with %s", async (_name, mangle) => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    await expectRefused(callId, mangle(callIdentification(callId, alice)));
  });

  it("tells the members nothing of a refused attempt and keeps the refused user out of the call", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    const [mallory] = (await users(1)) as [Account];
    await expectRefused(callId, callIdentification(callId, { id: mallory.id, key: keyHash() }));
    const id = uuid();
    expect(await alice.peer.request({ id, type: "webrtc_sdp", data: {}, receiver_id: mallory.id })).toEqual(
      fromOmikron("error_user_offline", { receiver_id: mallory.id }, 1, id),
    );
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });

  it("refuses a member whose state is invalid without replacing its earlier socket", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob] = members;
    await expectRefused(callId, callIdentification(callId, alice.user, { user_state: "" }));
    await expectStillServing(bob, alice, members[2]);
  });
});

describe("state changes (SPEC §7)", () => {
  it("broadcasts a call_state change to the others only, with the user id", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    alice.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "muted" } });
    const change = fromOmikron("client_changed", { user_id: alice.user.id, call_state: "muted" }, 0);
    expect(await bob.peer.next()).toEqual(change);
    expect(await carol.peer.next()).toEqual(change);
    await expectNothingElse(alice.peer);
  });

  it("broadcasts a user_state change to the others only, with the user id", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    bob.peer.send({ id: uuid(), type: "client_changed", data: { user_state: "idle" } });
    const change = fromOmikron("client_changed", { user_id: bob.user.id, user_state: "idle" }, 0);
    expect(await alice.peer.next()).toEqual(change);
    expect(await carol.peer.next()).toEqual(change);
    await expectNothingElse(bob.peer);
  });

  it("broadcasts both fields when both change", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    carol.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "streaming", user_state: "dnd" } });
    const change = fromOmikron("client_changed", { user_id: carol.user.id, call_state: "streaming", user_state: "dnd" }, 0);
    expect(await alice.peer.next()).toEqual(change);
    expect(await bob.peer.next()).toEqual(change);
    await expectNothingElse(carol.peer);
  });

  it("broadcasts only the field that changed when the other is sent unchanged", async () => {
    const { members } = await callOfThree([{ call_state: "muted" }, {}, {}]);
    const [alice, bob, carol] = members;
    alice.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "muted", user_state: "idle" } });
    const change = fromOmikron("client_changed", { user_id: alice.user.id, user_state: "idle" }, 0);
    expect(await bob.peer.next()).toEqual(change);
    expect(await carol.peer.next()).toEqual(change);
  });

  it("broadcasts nothing for a change that changes nothing", async () => {
    const { members } = await callOfThree([{ call_state: "deafed", user_state: "away" }, {}, {}]);
    const [alice, bob, carol] = members;
    alice.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "deafed", user_state: "away" } });
    alice.peer.send({ id: uuid(), type: "client_changed", data: {} });
    alice.peer.send({ id: uuid(), type: "client_changed" });
    await expectNothingElse(alice.peer);
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });

  it.each([
    ["an unknown call state", { call_state: "speaking" }],
    ["an empty user state", { user_state: "" }],
    ["a user state of 65 characters", { user_state: "u".repeat(65) }],
    ["a user state that is not a string", { user_state: 3 }],
    ["a null call state", { call_state: null }],
  ])("answers %s with error_invalid_data and tells nobody", async (_name, data) => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const id = uuid();
    expect(await alice.peer.request({ id, type: "client_changed", data })).toEqual(invalidData(id));
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });

  it("changes nothing when one of two fields is invalid", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob] = members;
    const id = uuid();
    expect(await alice.peer.request({ id, type: "client_changed", data: { call_state: "muted", user_state: "" } })).toEqual(invalidData(id));
    // The valid half was not applied either: sending it now is a real change.
    alice.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "muted" } });
    expect(await bob.peer.next()).toEqual(fromOmikron("client_changed", { user_id: alice.user.id, call_state: "muted" }, 0));
    const [dave] = (await users(1)) as [Account];
    const { reply } = await attempt(callId, dave);
    expect(reply.data.user_ids).toEqual({ [alice.user.id]: "muted", [bob.user.id]: "active", [members[2].user.id]: "active", [dave.id]: "active" });
  });

  it("shows a changed state to a later joiner", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    alice.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "deafed", user_state: "brb" } });
    expect((await bob.peer.next()).type).toBe("client_changed");
    const [dave] = (await users(1)) as [Account];
    const { reply, id } = await attempt(callId, dave);
    expect(reply).toEqual(
      accepted(
        id,
        { [alice.user.id]: "deafed", [bob.user.id]: "active", [carol.user.id]: "active", [dave.id]: "active" },
        { [alice.user.id]: "brb", [bob.user.id]: "online", [carol.user.id]: "online", [dave.id]: "online" },
      ),
    );
  });

  it("compares a change with the latest state, so changing back is broadcast again", async () => {
    const { members } = await callOfThree();
    const [alice, bob] = members;
    alice.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "muted" } });
    alice.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "muted" } });
    alice.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "active" } });
    expect(await bob.peer.next()).toEqual(fromOmikron("client_changed", { user_id: alice.user.id, call_state: "muted" }, 0));
    expect(await bob.peer.next()).toEqual(fromOmikron("client_changed", { user_id: alice.user.id, call_state: "active" }, 0));
    await expectNothingElse(bob.peer);
  });
});

describe("signalling (SPEC §7)", () => {
  it("delivers a frame with receiver_id to that member only, with sender_id added at the end", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const signal = { id: uuid(), type: "webrtc_sdp", log: { message: "offer", log_level: 0 }, data: { sdp: "v=0", kind: "offer" }, receiver_id: bob.user.id };
    alice.peer.send(signal);
    expect(await bob.peer.nextText()).toBe(JSON.stringify({ ...signal, sender_id: alice.user.id }));
    await expectNothingElse(carol.peer);
    await expectNothingElse(alice.peer);
  });

  it("delivers a frame without receiver_id to every other member and not back to the sender", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const signal = { id: uuid(), type: "start_stream", data: { track: "screen" } };
    bob.peer.send(signal);
    const relayed = JSON.stringify({ ...signal, sender_id: bob.user.id });
    expect(await alice.peer.nextText()).toBe(relayed);
    expect(await carol.peer.nextText()).toBe(relayed);
    await expectNothingElse(bob.peer);
  });

  it("answers error_user_offline naming a receiver who is not in the call, and relays nothing", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const [outsider] = (await users(1)) as [Account];
    const id = uuid();
    expect(await alice.peer.request({ id, type: "webrtc_ice", data: {}, receiver_id: outsider.id })).toEqual(
      fromOmikron("error_user_offline", { receiver_id: outsider.id }, 1, id),
    );
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });

  it("routes a receiver_id written in upper case and relays it as written", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const signal = { id: uuid(), type: "webrtc_ice", data: {}, receiver_id: carol.user.id.toUpperCase() };
    alice.peer.send(signal);
    expect(await carol.peer.nextText()).toBe(JSON.stringify({ ...signal, sender_id: alice.user.id }));
    await expectNothingElse(bob.peer);
  });

  it("overwrites a spoofed sender_id in place with the member's user id", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const signal = { id: uuid(), sender_id: bob.user.id, type: "webrtc_sdp", data: { sdp: "v=0" }, receiver_id: carol.user.id };
    alice.peer.send(signal);
    const relayed = await carol.peer.nextText();
    expect(relayed).toBe(JSON.stringify({ ...signal, sender_id: alice.user.id }));
    await expectNothingElse(bob.peer);
  });

  it("overwrites a spoofed sender_id on a broadcast too", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    alice.peer.send({ type: "end_stream", sender_id: OMIKRON_ID, data: {} });
    const relayed = JSON.stringify({ type: "end_stream", sender_id: alice.user.id, data: {} });
    expect(await bob.peer.nextText()).toBe(relayed);
    expect(await carol.peer.nextText()).toBe(relayed);
  });

  it("keeps unknown fields, key order and big numbers, and adds no id, log or data", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const text = '{"zeta":{"nested":[1,2,{"x":null}]},"type":"webrtc_custom","big":123456789012345678901234567890,"receiver_id":"RECEIVER"}'.replace(
      "RECEIVER",
      bob.user.id,
    );
    alice.peer.send(text);
    expect(await bob.peer.nextText()).toBe(`${text.slice(0, -1)},"sender_id":"${alice.user.id}"}`);
    await expectNothingElse(carol.peer);
  });

  it("relays types it does not know", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const signal = { id: uuid(), type: "a_type_from_the_future", data: { anything: [true, 1.5, "x"] } };
    carol.peer.send(signal);
    expect(await alice.peer.next()).toEqual({ ...signal, sender_id: carol.user.id });
    expect(await bob.peer.next()).toEqual({ ...signal, sender_id: carol.user.id });
  });

  it("relays error types a member sends, since only the listed types are reserved", async () => {
    const { members } = await callOfThree();
    const [alice, bob] = members;
    const signal = { id: uuid(), type: "error_custom", data: {}, receiver_id: bob.user.id };
    alice.peer.send(signal);
    expect(await bob.peer.next()).toEqual({ ...signal, sender_id: alice.user.id });
  });

  it("answers a receiver_id that is not a UUID with error_invalid_data and relays nothing", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const id = uuid();
    expect(await alice.peer.request({ id, type: "webrtc_ice", data: {}, receiver_id: "bob" })).toEqual(invalidData(id));
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });

  it("answers a non-ping frame addressed to the Omikron with error_invalid_data and relays nothing", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const id = uuid();
    expect(await alice.peer.request({ id, type: "webrtc_sdp", data: {}, receiver_id: OMIKRON_ID })).toEqual(invalidData(id));
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });

  it("keeps one sender's frames in order at each receiver", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const ids = Array.from({ length: 20 }, (_, index) => `frame-${index}`);
    for (const [index, id] of ids.entries()) {
      alice.peer.send(index % 2 === 0 ? { id, type: "webrtc_ice", data: {} } : { id, type: "webrtc_ice", data: {}, receiver_id: bob.user.id });
    }
    const atBob: string[] = [];
    for (let i = 0; i < ids.length; i++) atBob.push((await bob.peer.next()).id);
    const atCarol: string[] = [];
    for (let i = 0; i < ids.length / 2; i++) atCarol.push((await carol.peer.next()).id);
    expect(atBob).toEqual(ids);
    expect(atCarol).toEqual(ids.filter((_, index) => index % 2 === 0));
  });
});

describe("ping on a call socket (SPEC §6, §7)", () => {
  it.each([
    ["a last_ping", { last_ping: 42 }],
    ["no last_ping", {}],
    ["a last_ping of -1", { last_ping: -1 }],
    ["a one-element array", { last_ping: [17.5] }],
  ])("answers a ping with %s with pong {} and the same id", async (_name, data) => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const id = uuid();
    expect(await alice.peer.request({ id, type: "ping", log: { message: "Ping", log_level: -1 }, data })).toEqual(pong(id));
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });

  it("answers a ping addressed to the Omikron", async () => {
    const { members } = await callOfThree();
    const [alice] = members;
    const id = uuid();
    expect(await alice.peer.request({ id, type: "ping", data: {}, receiver_id: OMIKRON_ID })).toEqual(pong(id));
  });

  it.each([
    ["a string", "fast"],
    ["a number below -1", -2],
    ["null", null],
    ["a two-element array", [1, 2]],
    ["an empty array", []],
    ["an object", { ms: 3 }],
  ])("answers a last_ping that is %s with error_invalid_data", async (_name, lastPing) => {
    const { members } = await callOfThree();
    const [alice] = members;
    const id = uuid();
    expect(await alice.peer.request({ id, type: "ping", data: { last_ping: lastPing } })).toEqual(invalidData(id));
    await expectNothingElse(alice.peer);
  });

  it("answers a literal ping text frame with pong before and after identification", async () => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    const peer = await connect(`/ws/call/${callId}`);
    peer.send("ping");
    expect(await peer.nextText()).toBe("pong");
    const id = uuid();
    expect(await peer.request(callIdentification(callId, alice, {}, id))).toEqual(accepted(id, { [alice.id]: "active" }, { [alice.id]: "online" }));
    peer.send("ping");
    expect(await peer.nextText()).toBe("pong");
  });
});

describe("leaving and rejoining (SPEC §7)", () => {
  it("sends client_disconnected to every other member when a member's socket closes", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    alice.peer.close();
    expect((await alice.peer.closed).code).toBe(1000);
    const gone = fromOmikron("client_disconnected", { user_id: alice.user.id }, 0);
    expect(await bob.peer.next()).toEqual(gone);
    expect(await carol.peer.next()).toEqual(gone);
    await expectNothingElse(bob.peer);
  });

  it("answers error_user_offline for a member who has left", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    alice.peer.close();
    await alice.peer.closed;
    expect((await bob.peer.next()).type).toBe("client_disconnected");
    expect((await carol.peer.next()).type).toBe("client_disconnected");
    const id = uuid();
    expect(await bob.peer.request({ id, type: "webrtc_sdp", data: {}, receiver_id: alice.user.id })).toEqual(
      fromOmikron("error_user_offline", { receiver_id: alice.user.id }, 1, id),
    );
  });

  it("leaves a member out of a later joiner's lists once it has left", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    bob.peer.close();
    await bob.peer.closed;
    const [dave] = (await users(1)) as [Account];
    const { reply, id } = await attempt(callId, dave);
    expect(reply).toEqual(
      accepted(
        id,
        { [alice.user.id]: "active", [carol.user.id]: "active", [dave.id]: "active" },
        { [alice.user.id]: "online", [carol.user.id]: "online", [dave.id]: "online" },
      ),
    );
  });

  it("replaces a rejoining member's socket: the old one closes 4001, the others hear only client_connected", async () => {
    const { callId, members } = await callOfThree([{ call_state: "muted", user_state: "dnd" }, {}, {}]);
    const [alice, bob, carol] = members;
    const { peer: rejoined, reply, id } = await attempt(callId, alice.user, { call_state: "streaming", user_state: "back" });
    expect(await alice.peer.closed).toEqual({ code: 4001, reason: "replaced" });
    expect(reply).toEqual(
      accepted(
        id,
        { [alice.user.id]: "streaming", [bob.user.id]: "active", [carol.user.id]: "active" },
        { [alice.user.id]: "back", [bob.user.id]: "online", [carol.user.id]: "online" },
      ),
    );
    expect(await bob.peer.next()).toEqual(connected(alice.user, "streaming", "back"));
    expect(await carol.peer.next()).toEqual(connected(alice.user, "streaming", "back"));
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
    await expectNothingElse(rejoined);
  });

  it("routes to the rejoined socket and hears its frames as the same member", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    const rejoined = await join(callId, alice.user);
    await alice.peer.closed;
    expect((await bob.peer.next()).type).toBe("client_connected");
    expect((await carol.peer.next()).type).toBe("client_connected");
    const signal = { id: uuid(), type: "webrtc_sdp", data: { sdp: "answer" }, receiver_id: alice.user.id };
    bob.peer.send(signal);
    expect(await rejoined.next()).toEqual({ ...signal, sender_id: bob.user.id });
    const reply = { id: uuid(), type: "webrtc_sdp", data: { sdp: "offer" }, receiver_id: bob.user.id };
    rejoined.send(reply);
    expect(await bob.peer.next()).toEqual({ ...reply, sender_id: alice.user.id });
  });

  it("sends one client_disconnected when a rejoined member's new socket leaves", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    const rejoined = await join(callId, alice.user);
    await alice.peer.closed;
    expect((await bob.peer.next()).type).toBe("client_connected");
    expect((await carol.peer.next()).type).toBe("client_connected");
    rejoined.close();
    await rejoined.closed;
    const gone = fromOmikron("client_disconnected", { user_id: alice.user.id }, 0);
    expect(await bob.peer.next()).toEqual(gone);
    expect(await carol.peer.next()).toEqual(gone);
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });

  it("deletes the room's stored state when the last member leaves, so a new join sees only itself", async () => {
    const { callId, members } = await callOfThree([{ call_state: "muted", user_state: "dnd" }, { call_state: "deafed" }, {}]);
    for (const [index, member] of members.entries()) {
      member.peer.close();
      await member.peer.closed;
      // The others each hear of the departure before the next one leaves.
      for (const other of members.slice(index + 1)) expect((await other.peer.next()).type).toBe("client_disconnected");
    }
    const stub = env.CALL_ROOM.get(env.CALL_ROOM.idFromName(callId));
    const stored = await runInDurableObject(stub, async (_instance, state) => {
      const tables = state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
        .toArray()
        .map((row) => row.name);
      let rows = 0;
      for (const table of tables) rows += state.storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM "${table}"`).one().n;
      return { rows, keys: (await state.storage.list()).size };
    });
    expect(stored).toEqual({ rows: 0, keys: 0 });
    const [first] = members;
    const { reply, id } = await attempt(callId, first.user);
    expect(reply).toEqual(accepted(id, { [first.user.id]: "active" }, { [first.user.id]: "online" }));
  });
});

describe("hostile input (SPEC §2, §9)", () => {
  it("answers invalid JSON with error_invalid_data under a fresh id and keeps serving the others", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    expect(await alice.peer.request('{"type":"webrtc_sdp",')).toEqual(invalidData());
    await expectStillServing(bob, carol, alice);
  });

  it("answers a binary frame with error_invalid_data and keeps serving the others", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    alice.peer.ws.send(new TextEncoder().encode('{"type":"webrtc_sdp"}'));
    expect(await alice.peer.next()).toEqual(invalidData());
    await expectStillServing(carol, bob, alice);
  });

  it.each([
    ["a JSON array", "[1,2]", undefined],
    ["a JSON string", '"hello"', undefined],
    ["JSON null", "null", undefined],
    ["a missing type", '{"id":"req-1","data":{}}', "req-1"],
    ["a type that is not a string", '{"id":"req-2","type":5}', "req-2"],
    ["data that is null", '{"id":"req-3","type":"webrtc_sdp","data":null}', "req-3"],
    ["data that is an array", '{"id":"req-4","type":"webrtc_sdp","data":[1]}', "req-4"],
    ["data that is a string", '{"id":"req-5","type":"webrtc_sdp","data":"x"}', "req-5"],
    ["a receiver_id that is not a string", '{"id":"req-6","type":"webrtc_sdp","receiver_id":7}', "req-6"],
    ["a sender_id that is not a string", '{"id":"req-7","type":"webrtc_sdp","sender_id":{}}', "req-7"],
    ["an id that is not a string", '{"id":7,"type":"webrtc_sdp"}', undefined],
    ["an id of 129 characters", `{"id":"${"i".repeat(129)}","type":"webrtc_sdp"}`, undefined],
  ])("answers %s with error_invalid_data, relays nothing and keeps serving", async (_name, text, echoed) => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    expect(await alice.peer.request(text)).toEqual(invalidData(echoed));
    await expectStillServing(bob, carol, alice);
  });

  it("echoes an id of exactly 128 characters that is not a UUID", async () => {
    const { members } = await callOfThree();
    const [alice] = members;
    const id = "i".repeat(128);
    expect(await alice.peer.request({ id, type: "ping", data: {} })).toEqual(pong(id));
  });

  it("answers a frame that is a 10,000-deep array with error_invalid_data and keeps serving", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    expect(await alice.peer.request(`${"[".repeat(10_000)}${"]".repeat(10_000)}`)).toEqual(invalidData());
    await expectStillServing(bob, carol, alice);
  });

  it("relays a 10,000-deep array inside data untouched", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const text = `{"id":"deep","type":"webrtc_blob","data":{"deep":${"[".repeat(10_000)}${"]".repeat(10_000)}}}`;
    alice.peer.send(text);
    const relayed = `${text.slice(0, -1)},"sender_id":"${alice.user.id}"}`;
    expect(await bob.peer.nextText()).toBe(relayed);
    expect(await carol.peer.nextText()).toBe(relayed);
    await expectStillServing(bob, carol, alice);
  });

  it("relays a 10,000-deep array inside data while overwriting a spoofed sender_id", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    alice.peer.send(`{"id":"deep","type":"webrtc_blob","sender_id":"${bob.user.id}","data":{"deep":${deep}},"receiver_id":"${carol.user.id}"}`);
    expect(await carol.peer.nextText()).toBe(
      `{"id":"deep","type":"webrtc_blob","sender_id":"${alice.user.id}","data":{"deep":${deep}},"receiver_id":"${carol.user.id}"}`,
    );
    await expectStillServing(bob, carol, alice);
  });

  it.each(RESERVED_TYPES)("answers %s from a member with error_invalid_data and relays nothing", async (type) => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const id = uuid();
    expect(await alice.peer.request({ id, type, data: { user_id: alice.user.id } })).toEqual(invalidData(id));
    expect(await alice.peer.request({ id: `${id}-to-bob`, type, data: {}, receiver_id: bob.user.id })).toEqual(invalidData(`${id}-to-bob`));
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });

  it("answers a second identification with error_invalid_data and changes neither membership nor states", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    const id = uuid();
    expect(await alice.peer.request(callIdentification(callId, alice.user, { call_state: "muted", user_state: "again" }, id))).toEqual(
      invalidData(id),
    );
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
    const [dave] = (await users(1)) as [Account];
    const { reply } = await attempt(callId, dave);
    expect(reply.data.user_ids).toEqual({ [alice.user.id]: "active", [bob.user.id]: "active", [carol.user.id]: "active", [dave.id]: "active" });
    expect(reply.data.user_states).toEqual({ [alice.user.id]: "online", [bob.user.id]: "online", [carol.user.id]: "online", [dave.id]: "online" });
  });

  it("answers a second identification naming another user with error_invalid_data, keeping the first identity", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    const id = uuid();
    expect(await alice.peer.request(callIdentification(callId, bob.user, {}, id))).toEqual(invalidData(id));
    const signal = { id: uuid(), type: "webrtc_ice", data: {}, receiver_id: carol.user.id };
    alice.peer.send(signal);
    expect(await carol.peer.next()).toEqual({ ...signal, sender_id: alice.user.id });
    await expectStillServing(bob, alice, carol);
  });

  it("relays huge and tiny numbers inside data as written", async () => {
    const { members } = await callOfThree();
    const [alice, bob] = members;
    const text = `{"type":"webrtc_stats","data":{"huge":1e400,"tiny":-1e-400,"long":0.30000000000000004440892098500626},"receiver_id":"${bob.user.id}"}`;
    alice.peer.send(text);
    expect(await bob.peer.nextText()).toBe(`${text.slice(0, -1)},"sender_id":"${alice.user.id}"}`);
  });

  it("relays a frame with a __proto__ key without altering it", async () => {
    const { members } = await callOfThree();
    const [alice, bob] = members;
    const text = `{"type":"webrtc_sdp","__proto__":{"polluted":true},"data":{"__proto__":{"x":1}},"receiver_id":"${bob.user.id}"}`;
    alice.peer.send(text);
    expect(await bob.peer.nextText()).toBe(`${text.slice(0, -1)},"sender_id":"${alice.user.id}"}`);
    await expectStillServing(alice, bob, members[2]);
  });
});

describe("revocation of a member (SPEC §8.2)", () => {
  it("closes a removed user's call socket 4003 with no frame before, and tells the others", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    expect((await adminFetch(`/users/${alice.user.id}`, "DELETE")).status).toBe(204);
    expect(await alice.peer.closed).toEqual({ code: 4003, reason: "credential revoked" });
    expect(alice.peer.pending()).toEqual([]);
    const gone = fromOmikron("client_disconnected", { user_id: alice.user.id }, 0);
    expect(await bob.peer.next()).toEqual(gone);
    expect(await carol.peer.next()).toEqual(gone);
  });

  it("closes a member's call socket when its credential is replaced, and refuses the old credential afterwards", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob] = members;
    const owner = ((await (await adminFetch(`/users/${alice.user.id}`)).json()) as { iota_id: string }).iota_id;
    expect((await adminFetch(`/users/${alice.user.id}`, "PUT", { iota_id: owner, private_key_hash: keyHash() })).status).toBe(200);
    expect(await alice.peer.closed).toEqual({ code: 4003, reason: "credential revoked" });
    expect(await bob.peer.next()).toEqual(fromOmikron("client_disconnected", { user_id: alice.user.id }, 0));
    const { peer, reply, id } = await attempt(callId, alice.user);
    expect(reply).toEqual(refused(id));
    expect((await peer.closed).code).toBe(4003);
  });

  it("closes nothing when a member's record is put again unchanged", async () => {
    const { members } = await callOfThree();
    const [alice, bob] = members;
    const owner = ((await (await adminFetch(`/users/${alice.user.id}`)).json()) as { iota_id: string }).iota_id;
    expect((await adminFetch(`/users/${alice.user.id}`, "PUT", { iota_id: owner, private_key_hash: alice.user.key })).status).toBe(200);
    await expectNothingElse(alice.peer);
    await expectNothingElse(bob.peer);
  });

  it("closes the member's socket in every call it is in", async () => {
    const first = await callOfThree();
    const [alice] = first.members;
    const secondCall = uuid();
    const elsewhere = await join(secondCall, alice.user);
    expect((await adminFetch(`/users/${alice.user.id}`, "DELETE")).status).toBe(204);
    expect((await alice.peer.closed).code).toBe(4003);
    expect((await elsewhere.closed).code).toBe(4003);
  });
});

describe("frames that name a receiver but are handled by the room (SPEC §7 r2)", () => {
  it("broadcasts a client_changed that names one member to every other member and relays no raw frame", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    alice.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "muted" }, receiver_id: bob.user.id });
    const change = fromOmikron("client_changed", { user_id: alice.user.id, call_state: "muted" }, 0);
    // The named member gets the room's broadcast, not the sender's frame with sender_id added.
    expect(await bob.peer.next()).toEqual(change);
    expect(await carol.peer.next()).toEqual(change);
    await expectNothingElse(alice.peer);
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });

  it("answers a ping that names another member with pong {} and relays nothing to that member", async () => {
    const { members } = await callOfThree();
    const [alice, bob, carol] = members;
    const id = uuid();
    expect(await alice.peer.request({ id, type: "ping", data: { last_ping: 12 }, receiver_id: bob.user.id })).toEqual(pong(id));
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });
});
