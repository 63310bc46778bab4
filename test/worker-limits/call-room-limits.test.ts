/**
 * Call rooms at their limits (SPEC §4, §7, §9), in the worker-limits project: at most 3
 * members, 2 frames/s with a burst of 3, rate episodes closing after 600 ms, frames of at
 * most 1024 bytes, 1.5 s to identify, 3 unidentified sockets per room.
 */
import { describe, expect, it } from "vitest";
import { type Member, attempt, callIdentification, callOfThree, expectNothingElse, users } from "../worker/calls";
import { type Account, type Frame, type Peer, connect, fromOmikron, upgrade, uuid } from "../worker/support";

const MAX_MESSAGE_BYTES = 1024;

/** A full call: three members with every client_connected already read. */
function fullCall(): Promise<{ callId: string; members: [Member, Member, Member] }> {
  return callOfThree();
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A frame of exactly `bytes` UTF-8 bytes, addressed to every other member. */
function frameOfSize(bytes: number, fill = "x"): string {
  const shell = '{"type":"webrtc_blob","data":{"pad":""}}';
  const padding = fill.repeat(Math.floor((bytes - shell.length) / new TextEncoder().encode(fill).length));
  const text = `{"type":"webrtc_blob","data":{"pad":"${padding}"}}`;
  expect(new TextEncoder().encode(text).length).toBe(bytes);
  return text;
}

describe("call member limit (SPEC §7)", () => {
  it("refuses a fourth member with error_call_full under its id, and closes 4003", async () => {
    const { callId } = await fullCall();
    const [dave] = (await users(1)) as [Account];
    const { peer, reply, id } = await attempt(callId, dave);
    expect(reply).toEqual(fromOmikron("error_call_full", {}, 2, id));
    expect((await peer.closed).code).toBe(4003);
    expect(peer.pending()).toEqual([]);
  });

  it("tells the members nothing of a refused fourth member and keeps it out of the call", async () => {
    const { callId, members } = await fullCall();
    const [alice, bob, carol] = members;
    const [dave] = (await users(1)) as [Account];
    const { peer } = await attempt(callId, dave);
    await peer.closed;
    const id = uuid();
    expect(await alice.peer.request({ id, type: "webrtc_sdp", data: {}, receiver_id: dave.id })).toEqual(
      fromOmikron("error_user_offline", { receiver_id: dave.id }, 1, id),
    );
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });

  it("accepts a member rejoining a full call and replaces its old socket", async () => {
    const { callId, members } = await fullCall();
    const [alice, bob, carol] = members;
    const { reply, id } = await attempt(callId, bob.user, { call_state: "muted" });
    expect(reply).toEqual(
      fromOmikron(
        "identification_response",
        {
          acceppted: true,
          accepted: true,
          user_ids: { [alice.user.id]: "active", [bob.user.id]: "muted", [carol.user.id]: "active" },
          user_states: { [alice.user.id]: "online", [bob.user.id]: "online", [carol.user.id]: "online" },
        },
        0,
        id,
      ),
    );
    expect(await bob.peer.closed).toEqual({ code: 4001, reason: "replaced" });
    const hello = fromOmikron("client_connected", { user_id: bob.user.id, call_state: "muted", user_state: "online" }, 0);
    expect(await alice.peer.next()).toEqual(hello);
    expect(await carol.peer.next()).toEqual(hello);
  });

  it("admits a new member once a member of a full call has left", async () => {
    const { callId, members } = await fullCall();
    const [alice, bob, carol] = members;
    carol.peer.close();
    await carol.peer.closed;
    expect((await alice.peer.next()).type).toBe("client_disconnected");
    expect((await bob.peer.next()).type).toBe("client_disconnected");
    const [dave] = (await users(1)) as [Account];
    const { reply } = await attempt(callId, dave);
    expect(reply.data.user_ids).toEqual({ [alice.user.id]: "active", [bob.user.id]: "active", [dave.id]: "active" });
  });
});

describe("frame size limit (SPEC §9)", () => {
  it("relays a frame of exactly the limit", async () => {
    const { members } = await fullCall();
    const [alice, bob, carol] = members;
    const text = frameOfSize(MAX_MESSAGE_BYTES);
    alice.peer.send(text);
    const relayed = `${text.slice(0, -1)},"sender_id":"${alice.user.id}"}`;
    expect(await bob.peer.nextText()).toBe(relayed);
    expect(await carol.peer.nextText()).toBe(relayed);
  });

  it("answers a member's frame one byte over the limit with error_too_large and closes 1009", async () => {
    const { members } = await fullCall();
    const [alice] = members;
    alice.peer.send(frameOfSize(MAX_MESSAGE_BYTES + 1));
    expect(await alice.peer.next()).toEqual(fromOmikron("error_too_large", {}, 2));
    expect((await alice.peer.closed).code).toBe(1009);
  });

  it("measures a text frame in UTF-8 bytes, not characters", async () => {
    const { members } = await fullCall();
    const [alice] = members;
    const text = frameOfSize(MAX_MESSAGE_BYTES + 2, "é");
    expect(text.length).toBeLessThan(MAX_MESSAGE_BYTES);
    alice.peer.send(text);
    expect(await alice.peer.next()).toEqual(fromOmikron("error_too_large", {}, 2));
    expect((await alice.peer.closed).code).toBe(1009);
  });

  it("answers an oversize binary frame with error_too_large and closes 1009", async () => {
    const { members } = await fullCall();
    const [alice] = members;
    alice.peer.ws.send(new Uint8Array(MAX_MESSAGE_BYTES + 1));
    expect(await alice.peer.next()).toEqual(fromOmikron("error_too_large", {}, 2));
    expect((await alice.peer.closed).code).toBe(1009);
  });

  it("tells the other members that a member closed for an oversize frame has left", async () => {
    const { members } = await fullCall();
    const [alice, bob, carol] = members;
    alice.peer.send(frameOfSize(MAX_MESSAGE_BYTES + 1));
    await alice.peer.closed;
    const gone = fromOmikron("client_disconnected", { user_id: alice.user.id }, 0);
    expect(await bob.peer.next()).toEqual(gone);
    expect(await carol.peer.next()).toEqual(gone);
    const signal = { id: uuid(), type: "webrtc_ice", data: {}, receiver_id: carol.user.id };
    bob.peer.send(signal);
    expect(await carol.peer.next()).toEqual({ ...signal, sender_id: bob.user.id });
  });

  it("answers an oversize frame before identification with error_too_large and closes 1009", async () => {
    const peer = await connect(`/ws/call/${uuid()}`);
    peer.send(frameOfSize(MAX_MESSAGE_BYTES + 1));
    expect(await peer.next()).toEqual(fromOmikron("error_too_large", {}, 2));
    expect((await peer.closed).code).toBe(1009);
  });

  it("answers the identification sent before an oversize frame first, then closes 1009", async () => {
    const callId = uuid();
    const [alice, bob] = (await users(2)) as [Account, Account];
    const { peer: alicePeer } = await attempt(callId, alice);
    const bobPeer = await connect(`/ws/call/${callId}`);
    // Frames are handled in order (SPEC §4): the attempt accepted first is answered first.
    bobPeer.send(callIdentification(callId, bob));
    bobPeer.send(frameOfSize(MAX_MESSAGE_BYTES + 1));
    expect((await bobPeer.next()).data.accepted).toBe(true);
    expect(await bobPeer.next()).toEqual(fromOmikron("error_too_large", {}, 2));
    expect((await bobPeer.closed).code).toBe(1009);
    expect(bobPeer.pending()).toEqual([]);
    expect(await alicePeer.next()).toMatchObject({ type: "client_connected", data: { user_id: bob.id } });
    expect(await alicePeer.next()).toMatchObject({ type: "client_disconnected", data: { user_id: bob.id } });
    const id = uuid();
    expect(await alicePeer.request({ id, type: "webrtc_sdp", data: {}, receiver_id: bob.id })).toEqual(
      fromOmikron("error_user_offline", { receiver_id: bob.id }, 1, id),
    );
  });
});

describe("rate limit (SPEC §9)", () => {
  /** Reads frames up to and including the one with `lastId`. */
  async function framesUntil(peer: Peer, lastId: string): Promise<Frame[]> {
    const frames: Frame[] = [];
    for (;;) {
      const frame = await peer.next();
      frames.push(frame);
      if (frame.id === lastId) return frames;
    }
  }

  /** Sends a burst of pings and answers their ids. */
  function flood(peer: Peer, count: number, prefix: string): string[] {
    const ids = Array.from({ length: count }, (_, index) => `${prefix}-${index}`);
    for (const id of ids) peer.send({ id, type: "ping", data: {} });
    return ids;
  }

  it("answers only the first rejection of an episode with error_rate_limited and drops the rest", async () => {
    const { members } = await fullCall();
    const [alice] = members;
    // Six frames: two tokens pass, one rejection, three drops; one drop more than the burst
    // (three) would close the socket (SPEC §9 r2).
    const sent = flood(alice.peer, 6, "flood");
    // An episode ends after a quiet second; by then the bucket holds a token again.
    await sleep(1_200);
    alice.peer.send({ id: "after", type: "ping", data: {} });
    const frames = await framesUntil(alice.peer, "after");
    const limited = frames.filter((frame) => frame.type === "error_rate_limited");
    expect(limited).toEqual([fromOmikron("error_rate_limited", {}, 1, expect.any(String))]);
    const pongs = frames.filter((frame) => frame.type === "pong").map((frame) => frame.id);
    // The passed pings are the first ones, in order; the dropped ones get no reply at all.
    expect(pongs.at(-1)).toBe("after");
    expect(pongs.slice(0, -1)).toEqual(sent.slice(0, pongs.length - 1));
    expect(pongs.length - 1).toBeLessThan(sent.length);
    expect(frames).toHaveLength(pongs.length + 1);
  });

  it("answers the first rejection of each new episode", async () => {
    const { members } = await fullCall();
    const [alice] = members;
    flood(alice.peer, 6, "first");
    await sleep(1_600);
    flood(alice.peer, 6, "second");
    await sleep(1_600);
    alice.peer.send({ id: "after", type: "ping", data: {} });
    const frames = await framesUntil(alice.peer, "after");
    expect(frames.filter((frame) => frame.type === "error_rate_limited")).toHaveLength(2);
    expect(frames.filter((frame) => frame.type !== "error_rate_limited" && frame.type !== "pong")).toEqual([]);
  }, 10_000);

  it("relays nothing a member sends over the limit", async () => {
    const { members } = await fullCall();
    const [alice, bob] = members;
    const ids = Array.from({ length: 6 }, (_, index) => `signal-${index}`);
    for (const id of ids) alice.peer.send({ id, type: "webrtc_ice", data: {}, receiver_id: bob.user.id });
    await sleep(1_200);
    const marker = uuid();
    alice.peer.send({ id: marker, type: "webrtc_ice", data: {}, receiver_id: bob.user.id });
    const relayed = (await framesUntil(bob.peer, marker)).map((frame) => frame.id);
    expect(relayed.at(-1)).toBe(marker);
    expect(relayed.slice(0, -1)).toEqual(ids.slice(0, relayed.length - 1));
    expect(relayed.length - 1).toBeLessThan(ids.length);
  });

  it("closes a member 1008 when an episode lasts the close delay, after one error_rate_limited", async () => {
    const { members } = await fullCall();
    const [alice, bob, carol] = members;
    let open = true;
    const closed = alice.peer.closed.then((close) => {
      open = false;
      return close;
    });
    for (let i = 0; open && i < 200; i++) {
      alice.peer.send({ id: `spam-${i}`, type: "ping", data: {} });
      await sleep(20);
    }
    expect((await closed).code).toBe(1008);
    const frames = alice.peer.pending().map((text) => JSON.parse(text) as Frame);
    expect(frames.filter((frame) => frame.type === "error_rate_limited")).toHaveLength(1);
    expect(frames.filter((frame) => frame.type !== "error_rate_limited" && frame.type !== "pong")).toEqual([]);
    const gone = fromOmikron("client_disconnected", { user_id: alice.user.id }, 0);
    expect(await bob.peer.next()).toEqual(gone);
    expect(await carol.peer.next()).toEqual(gone);
  }, 10_000);

  it("drops over-rate frames before identification without a reply", async () => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    const peer = await connect(`/ws/call/${callId}`);
    for (let i = 0; i < 6; i++) peer.send({ id: `early-${i}`, type: "webrtc_ice", data: {} });
    // Long enough for a token to come back, well inside the identification timeout.
    await sleep(700);
    const id = uuid();
    expect(await peer.request(callIdentification(callId, alice, {}, id))).toEqual(
      fromOmikron(
        "identification_response",
        { acceppted: true, accepted: true, user_ids: { [alice.id]: "active" }, user_states: { [alice.id]: "online" } },
        0,
        id,
      ),
    );
  });
});

describe("identification timeout and unidentified sockets (SPEC §4)", () => {
  it("closes a socket that never identifies with 4008 and sends it nothing", async () => {
    const peer = await connect(`/ws/call/${uuid()}`);
    expect(await peer.closed).toEqual({ code: 4008, reason: "identification timeout" });
    expect(peer.pending()).toEqual([]);
  });

  it("closes a socket that sends only other frames with 4008", async () => {
    const peer = await connect(`/ws/call/${uuid()}`);
    peer.send({ id: uuid(), type: "ping", data: {} });
    peer.send({ id: uuid(), type: "webrtc_sdp", data: {} });
    expect(await peer.closed).toEqual({ code: 4008, reason: "identification timeout" });
    expect(peer.pending()).toEqual([]);
  });

  it("leaves identified members open when an unidentified socket of the same call times out", async () => {
    const { callId, members } = await fullCall();
    const [alice, bob] = members;
    const idle = await connect(`/ws/call/${callId}`);
    expect((await idle.closed).code).toBe(4008);
    await expectNothingElse(alice.peer);
    const signal = { id: uuid(), type: "webrtc_ice", data: {}, receiver_id: bob.user.id };
    alice.peer.send(signal);
    expect(await bob.peer.next()).toEqual({ ...signal, sender_id: alice.user.id });
  });

  it("admits a fourth waiting upgrade and closes the oldest waiting socket 4008 to make room (SPEC §4 r2)", async () => {
    const callId = uuid();
    const waiting = [await connect(`/ws/call/${callId}`), await connect(`/ws/call/${callId}`), await connect(`/ws/call/${callId}`)];
    const newcomer = await upgrade(`/ws/call/${callId}`);
    expect(newcomer.status).toBe(101);
    expect(await waiting[0]!.closed).toEqual({ code: 4008, reason: "too many unidentified sockets" });
    expect(waiting[0]!.pending()).toEqual([]);
    const [alice] = (await users(1)) as [Account];
    const id = uuid();
    const reply = await waiting[1]!.request(callIdentification(callId, alice, {}, id));
    expect(reply).toMatchObject({ id, type: "identification_response", data: { accepted: true } });
  });
});
