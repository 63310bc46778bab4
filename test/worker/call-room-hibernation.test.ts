import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type Member, accepted, attempt, callIdentification, callOfThree as joinCallOfThree, expectNothingElse, users } from "./calls";
import { type Account, adminFetch, fromOmikron, uuid } from "./support";

function room(callId: string) {
  return env.CALL_ROOM.get(env.CALL_ROOM.idFromName(callId));
}

/** Tears the room's instance down; its sockets hibernate and its storage stays (SPEC §10). */
function evict(callId: string): Promise<void> {
  return evictDurableObject(room(callId));
}

/**
 * Three members, each joined after evicting the room, with every client_connected already
 * read; the joins themselves thus already cross an eviction.
 */
function callOfThree(states?: Record<string, unknown>[]): Promise<{ callId: string; members: [Member, Member, Member] }> {
  return joinCallOfThree(states, evict);
}

describe("call room across hibernation (SPEC §7, §10)", () => {
  it("lists every member's states to a joiner after an eviction", async () => {
    const { callId, members } = await callOfThree([{ call_state: "muted", user_state: "dnd" }, { call_state: "streaming" }, { user_state: "idle" }]);
    const [alice, bob, carol] = members;
    await evict(callId);
    const [dave] = (await users(1)) as [Account];
    const { reply, id } = await attempt(callId, dave, { call_state: "deafed" });
    expect(reply).toEqual(
      accepted(
        id,
        { [alice.user.id]: "muted", [bob.user.id]: "streaming", [carol.user.id]: "active", [dave.id]: "deafed" },
        { [alice.user.id]: "dnd", [bob.user.id]: "online", [carol.user.id]: "idle", [dave.id]: "online" },
      ),
    );
    const hello = fromOmikron("client_connected", { user_id: dave.id, call_state: "deafed", user_state: "online" }, 0);
    expect(await alice.peer.next()).toEqual(hello);
    expect(await bob.peer.next()).toEqual(hello);
    expect(await carol.peer.next()).toEqual(hello);
  });

  it("routes a unicast to its receiver only after an eviction", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    await evict(callId);
    const signal = { id: uuid(), type: "webrtc_sdp", data: { sdp: "v=0" }, receiver_id: carol.user.id };
    alice.peer.send(signal);
    expect(await carol.peer.nextText()).toBe(JSON.stringify({ ...signal, sender_id: alice.user.id }));
    await expectNothingElse(bob.peer);
  });

  it("broadcasts to every other member after an eviction, overwriting a spoofed sender_id", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    await evict(callId);
    const signal = { id: uuid(), type: "start_stream", sender_id: alice.user.id, data: {}, extra: 1 };
    bob.peer.send(signal);
    const relayed = JSON.stringify({ ...signal, sender_id: bob.user.id });
    expect(await alice.peer.nextText()).toBe(relayed);
    expect(await carol.peer.nextText()).toBe(relayed);
    await expectNothingElse(bob.peer);
  });

  it("answers a ping with pong {} after an eviction", async () => {
    const { callId, members } = await callOfThree();
    await evict(callId);
    const id = uuid();
    expect(await members[1].peer.request({ id, type: "ping", data: { last_ping: 5 } })).toEqual(fromOmikron("pong", {}, -1, id));
  });

  it("compares a change after an eviction with the state stored before it", async () => {
    const { callId, members } = await callOfThree([{ call_state: "muted", user_state: "dnd" }, {}, {}]);
    const [alice, bob, carol] = members;
    await evict(callId);
    alice.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "muted", user_state: "dnd" } });
    await expectNothingElse(bob.peer);
    await evict(callId);
    alice.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "muted", user_state: "away" } });
    const change = fromOmikron("client_changed", { user_id: alice.user.id, user_state: "away" }, 0);
    expect(await bob.peer.next()).toEqual(change);
    expect(await carol.peer.next()).toEqual(change);
  });

  it("keeps a change made just before an eviction", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    bob.peer.send({ id: uuid(), type: "client_changed", data: { call_state: "deafed", user_state: "brb" } });
    expect((await alice.peer.next()).type).toBe("client_changed");
    expect((await carol.peer.next()).type).toBe("client_changed");
    await evict(callId);
    const [dave] = (await users(1)) as [Account];
    const { reply } = await attempt(callId, dave);
    expect(reply.data.user_ids).toEqual({ [alice.user.id]: "active", [bob.user.id]: "deafed", [carol.user.id]: "active", [dave.id]: "active" });
    expect(reply.data.user_states).toEqual({ [alice.user.id]: "online", [bob.user.id]: "brb", [carol.user.id]: "online", [dave.id]: "online" });
  });

  it("sends client_disconnected to the others when a member leaves after an eviction", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    await evict(callId);
    alice.peer.close();
    await alice.peer.closed;
    const gone = fromOmikron("client_disconnected", { user_id: alice.user.id }, 0);
    expect(await bob.peer.next()).toEqual(gone);
    expect(await carol.peer.next()).toEqual(gone);
  });

  it("answers error_user_offline for a member who left after an eviction", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    await evict(callId);
    alice.peer.close();
    await alice.peer.closed;
    expect((await bob.peer.next()).type).toBe("client_disconnected");
    expect((await carol.peer.next()).type).toBe("client_disconnected");
    await evict(callId);
    const id = uuid();
    expect(await bob.peer.request({ id, type: "webrtc_ice", data: {}, receiver_id: alice.user.id })).toEqual(
      fromOmikron("error_user_offline", { receiver_id: alice.user.id }, 1, id),
    );
  });

  it("replaces a member rejoining after an eviction without a client_disconnected", async () => {
    const { callId, members } = await callOfThree([{ call_state: "muted" }, {}, {}]);
    const [alice, bob, carol] = members;
    await evict(callId);
    const { peer: rejoined, reply, id } = await attempt(callId, alice.user, { user_state: "back" });
    expect(await alice.peer.closed).toEqual({ code: 4001, reason: "replaced" });
    expect(reply).toEqual(
      accepted(
        id,
        { [alice.user.id]: "active", [bob.user.id]: "active", [carol.user.id]: "active" },
        { [alice.user.id]: "back", [bob.user.id]: "online", [carol.user.id]: "online" },
      ),
    );
    const hello = fromOmikron("client_connected", { user_id: alice.user.id, call_state: "active", user_state: "back" }, 0);
    expect(await bob.peer.next()).toEqual(hello);
    expect(await carol.peer.next()).toEqual(hello);
    await evict(callId);
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
    const signal = { id: uuid(), type: "webrtc_sdp", data: {}, receiver_id: alice.user.id };
    carol.peer.send(signal);
    expect(await rejoined.next()).toEqual({ ...signal, sender_id: carol.user.id });
  });

  it("sends one client_disconnected when a rejoined member leaves after an eviction", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    const { peer: rejoined } = await attempt(callId, alice.user);
    await alice.peer.closed;
    expect((await bob.peer.next()).type).toBe("client_connected");
    expect((await carol.peer.next()).type).toBe("client_connected");
    await evict(callId);
    rejoined.close();
    await rejoined.closed;
    const gone = fromOmikron("client_disconnected", { user_id: alice.user.id }, 0);
    expect(await bob.peer.next()).toEqual(gone);
    expect(await carol.peer.next()).toEqual(gone);
    await expectNothingElse(bob.peer);
    await expectNothingElse(carol.peer);
  });

  it("deletes the stored state when the last member leaves across evictions, so a new join sees only itself", async () => {
    const { callId, members } = await callOfThree([{ call_state: "muted" }, { user_state: "dnd" }, {}]);
    for (const [index, member] of members.entries()) {
      await evict(callId);
      member.peer.close();
      await member.peer.closed;
      for (const other of members.slice(index + 1)) expect((await other.peer.next()).type).toBe("client_disconnected");
    }
    const rows = await runInDurableObject(room(callId), (_instance, state) => {
      const tables = state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
        .toArray()
        .map((row) => row.name);
      let count = 0;
      for (const table of tables) count += state.storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM "${table}"`).one().n;
      return count;
    });
    expect(rows).toBe(0);
    await evict(callId);
    const [first] = members;
    const { reply, id } = await attempt(callId, first.user);
    expect(reply).toEqual(accepted(id, { [first.user.id]: "active" }, { [first.user.id]: "online" }));
  });

  it("closes a removed user's call socket after an eviction and tells the others", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob, carol] = members;
    await evict(callId);
    expect((await adminFetch(`/users/${bob.user.id}`, "DELETE")).status).toBe(204);
    expect(await bob.peer.closed).toEqual({ code: 4003, reason: "credential revoked" });
    const gone = fromOmikron("client_disconnected", { user_id: bob.user.id }, 0);
    expect(await alice.peer.next()).toEqual(gone);
    expect(await carol.peer.next()).toEqual(gone);
  });

  it("answers a second identification after an eviction with error_invalid_data", async () => {
    const { callId, members } = await callOfThree();
    const [alice, bob] = members;
    await evict(callId);
    const id = uuid();
    expect(await alice.peer.request(callIdentification(callId, alice.user, {}, id))).toEqual(fromOmikron("error_invalid_data", {}, 2, id));
    await expectNothingElse(bob.peer);
  });
});
