/**
 * Call-room helpers shared by the call tests of the worker and worker-limits projects: joining
 * a call (SPEC §7) and the frames the Omikron answers a call member with.
 */
import { expect } from "vitest";
import { type Account, type Frame, type Peer, connect, createIota, createUser, fromOmikron, uuid } from "./support";

export interface Member {
  user: Account;
  peer: Peer;
}

export function callIdentification(callId: string, user: Account, extra: Record<string, unknown> = {}, id = uuid()) {
  return {
    id,
    type: "identification",
    log: { message: "Client identifying", log_level: 0 },
    data: { call_id: callId, user_id: user.id, private_key_hash: user.key, ...extra },
  };
}

export function accepted(id: string, callStates: Record<string, string>, userStates: Record<string, string>) {
  return fromOmikron("identification_response", { acceppted: true, accepted: true, user_ids: callStates, user_states: userStates }, 0, id);
}

export function refused(id: string) {
  return fromOmikron("identification_response", { acceppted: false, accepted: false }, 2, id);
}

export function connected(user: Account, callState = "active", userState = "online") {
  return fromOmikron("client_connected", { user_id: user.id, call_state: callState, user_state: userState }, 0);
}

export function invalidData(id?: string) {
  return fromOmikron("error_invalid_data", {}, 2, id);
}

export function pong(id: string) {
  return fromOmikron("pong", {}, -1, id);
}

/** Users of two different Iotas: a call room takes users of any Iota (SPEC §7). */
export async function users(count: number): Promise<Account[]> {
  const iotas = [await createIota(), await createIota()];
  const created: Account[] = [];
  for (let i = 0; i < count; i++) created.push(await createUser(iotas[i % 2] as Account));
  return created;
}

export async function attempt(callId: string, user: Account, extra: Record<string, unknown> = {}): Promise<{ peer: Peer; reply: Frame; id: string }> {
  const peer = await connect(`/ws/call/${callId}`);
  const id = uuid();
  const reply = await peer.request(callIdentification(callId, user, extra, id));
  return { peer, reply, id };
}

export async function join(callId: string, user: Account, extra: Record<string, unknown> = {}): Promise<Peer> {
  const { peer, reply } = await attempt(callId, user, extra);
  expect(reply.data.accepted).toBe(true);
  return peer;
}

/**
 * Three members who joined one after another with the given states, with every
 * client_connected already read, so a test starts from quiet sockets. `beforeLaterJoin`, if
 * given, runs before the second and the third join (the hibernation tests evict the room there).
 */
export async function callOfThree(
  states: Record<string, unknown>[] = [{}, {}, {}],
  beforeLaterJoin?: (callId: string) => Promise<void>,
): Promise<{ callId: string; members: [Member, Member, Member] }> {
  const callId = uuid();
  const [a, b, c] = (await users(3)) as [Account, Account, Account];
  const members: Member[] = [];
  for (const [index, user] of [a, b, c].entries()) {
    if (index > 0 && beforeLaterJoin) await beforeLaterJoin(callId);
    const peer = await join(callId, user, states[index]);
    for (const earlier of members) expect((await earlier.peer.next()).type).toBe("client_connected");
    members.push({ user, peer });
  }
  return { callId, members: members as [Member, Member, Member] };
}

/** A pong as the next frame shows that nothing else was sent to this socket before it. */
export async function expectNothingElse(peer: Peer): Promise<void> {
  const id = uuid();
  expect(await peer.request({ id, type: "ping", data: {} })).toEqual(pong(id));
}
