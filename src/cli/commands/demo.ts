/**
 * `omikron demo` (`npm run demo`): the whole relay in one run. Starts a throw-away local
 * Omikron (or uses --url), provisions an Iota and two users through the admin API, connects
 * the Iota (which answers its users' requests), two clients and a two-member call on the peer
 * library, reads presence and the call through the admin API, and prints every frame as it
 * arrives. Every step waits for the frames the spec promises; a missing or different one ends
 * the demo with exit 1, so the summary line is only printed when everything happened.
 */
import { randomUUID } from "node:crypto";
import { CallMembersSchema, IotaRecordSchema, PresenceSchema, UserRecordSchema } from "../../admin/schemas.ts";
import { type Frame, OMIKRON_ID, type OutboundFrame, type Peer, PeerError, connectClient, connectIota, joinCall } from "../../peer/index.ts";
import { AdminClient } from "../admin-client.ts";
import { defineCommand } from "../command.ts";
import { CliError, EXIT } from "../exit.ts";
import { type Names, describeFrame } from "../frames.ts";
import { newPrivateKey, privateKeyHash } from "../keys.ts";
import { type LocalRelay, startLocalRelay } from "../local-relay.ts";
import type { Output } from "../output.ts";

/** How long a step waits for a frame the spec promises before the demo fails. */
const FRAME_WAIT_MS = 10_000;

/** Width of the peer column: "alice/call". */
const WHO_WIDTH = 10;

const PUSHES = ["iota_connected", "iota_disconnected", "client_connected", "client_disconnected", "client_changed"] as const;

class DemoFailure extends CliError {
  constructor(message: string) {
    super(EXIT.failed, "demo_failed", `demo failed: ${message}`);
  }
}

function ensure(condition: boolean, what: string): void {
  if (!condition) throw new DemoFailure(what);
}

/**
 * Every frame each peer receives, printed on arrival and queued, so a step can wait for the
 * one it expects (in order, without missing one that came early).
 */
class Conversation {
  readonly #out: Output;
  readonly #names = new Map<string, string>();
  readonly #inbox = new Map<string, Frame[]>();
  readonly #waiters = new Map<string, () => void>();
  /** Frames peers sent one another through the relay, by route. */
  readonly relayed = { "client -> iota": 0, "iota -> client": 0, "call member -> member": 0 };

  constructor(out: Output) {
    this.#out = out;
  }

  get names(): Names {
    return this.#names;
  }

  name(id: string, name: string): void {
    this.#names.set(id.toLowerCase(), name);
  }

  step(title: string): void {
    this.#out.event({ step: title }, `\n== ${title}`);
  }

  info(value: Record<string, unknown>, line: string): void {
    this.#out.event(value, `   ${this.#readable(line)}`);
  }

  /** Starts recording `peer` as `who`; its identification is the first frame recorded. */
  watch(who: string, peer: Peer, route: keyof Conversation["relayed"] | null): void {
    this.#inbox.set(who, []);
    const received = (frame: Frame) => {
      if (route && frame.sender_id !== undefined && frame.sender_id !== OMIKRON_ID) {
        this.relayed[route]++;
      }
      this.#out.event({ peer: who, direction: "in", frame }, `   ${who.padEnd(WHO_WIDTH)} <- ${this.#readable(describeFrame(frame, this.#names))}`);
      this.#inbox.get(who)?.push(frame);
      this.#waiters.get(who)?.();
    };
    if (peer.identification) received(peer.identification);
    peer.on("message", received);
    for (const type of PUSHES) peer.on(type, received);
  }

  send(who: string, peer: Peer, frame: OutboundFrame): string {
    const id = peer.send(frame);
    this.#out.event({ peer: who, direction: "out", frame: { ...frame, id } }, `   ${who.padEnd(WHO_WIDTH)} -> ${this.#readable(describeFrame({ ...frame, id }, this.#names))}`);
    return id;
  }

  /** The next frame `who` received of `type` (earlier unmatched frames stay queued). */
  async next(who: string, type: string, match: (frame: Frame) => boolean = () => true): Promise<Frame> {
    const deadline = Date.now() + FRAME_WAIT_MS;
    for (;;) {
      const inbox = this.#inbox.get(who) ?? [];
      const index = inbox.findIndex((frame) => frame.type === type && match(frame));
      if (index >= 0) return inbox.splice(index, 1)[0] as Frame;
      const left = deadline - Date.now();
      if (left <= 0) throw new DemoFailure(`${who} received no ${type} within ${FRAME_WAIT_MS / 1000} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.set(who, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Ids in a line, replaced by the names a reader knows them by. */
  #readable(line: string): string {
    let text = line;
    for (const [id, name] of this.#names) text = text.replaceAll(id, name);
    return text;
  }
}

export const demo = defineCommand({
  path: ["demo"],
  summary: "Run the relay end to end: an Iota, two users, their clients and a call, frame by frame.",
  details: [
    "Without --url (the environment's $OMIKRON_URL is not used here), starts its own local Omikron",
    "on a free port of 127.0.0.1 (offline, throw-away state and admin token) and stops it at the",
    "end. With --url, uses that relay and its admin token (--token or $OMIKRON_ADMIN_TOKEN), and",
    "removes the records it created.",
    "Ends with a one-line summary of what was relayed; exit 0 only if every expected frame came.",
  ].join("\n"),
  args: [],
  options: {},
  relay: "admin",
  async run({ values, io, out, admin }) {
    // Ctrl-C ends the demo through the same clean-up as a failure: peers closed, and against
    // --url the records it created removed. (Once the local server runs, wrangler's own exit
    // handler stops it and ends the process with 130.)
    const interrupted = io.interrupted().then((): never => {
      throw new CliError(EXIT.failed, "interrupted", "demo interrupted");
    });
    interrupted.catch(() => undefined);
    let local: LocalRelay | null = null;
    let client: AdminClient;
    if (values.url === undefined) {
      out.note("starting a local Omikron (wrangler dev, offline, throw-away state) ...");
      const starting = startLocalRelay();
      try {
        local = await Promise.race([starting, interrupted]);
      } catch (error) {
        if (error instanceof CliError) {
          await starting.then((relay) => relay.stop()).catch(() => undefined);
          throw error;
        }
        throw new CliError(EXIT.unreachable, "unreachable", `could not start a local Omikron: ${error instanceof Error ? error.message : String(error)}`);
      }
      client = new AdminClient(local.url, local.adminToken);
    } else {
      client = admin();
    }
    const conversation = new Conversation(out);
    const peers: Peer[] = [];
    const created: string[] = [];
    try {
      return await Promise.race([play(client, conversation, peers, created, out), interrupted]);
    } catch (error) {
      // A refused identification or a dropped socket is the demo failing, not the CLI.
      if (error instanceof PeerError) throw new DemoFailure(error.message);
      throw error;
    } finally {
      await Promise.all(peers.map((peer) => peer.close().catch(() => undefined)));
      // Against a relay the demo did not start, leave it as it was found.
      if (!local) for (const path of created.reverse()) await client.request("DELETE", path, null).catch(() => undefined);
      await local?.stop();
    }
  },
});

async function play(admin: AdminClient, talk: Conversation, peers: Peer[], created: string[], out: Output): Promise<number> {
  const url = admin.baseUrl;
  talk.name(OMIKRON_ID, "omikron");

  talk.step(`provision through the admin API of ${url}`);
  const keys = { iota: newPrivateKey(), alice: newPrivateKey(), bob: newPrivateKey() };
  const hashes = {
    iota: await privateKeyHash(keys.iota),
    alice: await privateKeyHash(keys.alice),
    bob: await privateKeyHash(keys.bob),
  };
  const ids = { iota: randomUUID(), alice: randomUUID(), bob: randomUUID(), call: randomUUID() };
  for (const [name, id] of Object.entries(ids)) talk.name(id, name);
  const iotaRecord = await admin.request("PUT", `/iotas/${ids.iota}`, IotaRecordSchema, { private_key_hash: hashes.iota });
  created.push(`/iotas/${ids.iota}`);
  talk.info({ admin: "PUT /admin/iotas", status: iotaRecord.status, body: iotaRecord.body }, `PUT /admin/iotas/iota -> ${iotaRecord.status}`);
  for (const user of ["alice", "bob"] as const) {
    const reply = await admin.request("PUT", `/users/${ids[user]}`, UserRecordSchema, { iota_id: ids.iota, private_key_hash: hashes[user] });
    created.push(`/users/${ids[user]}`);
    talk.info({ admin: "PUT /admin/users", status: reply.status, body: reply.body }, `PUT /admin/users/${user} -> ${reply.status} ${JSON.stringify(reply.body)}`);
  }

  talk.step("the Iota connects and answers its users' requests");
  const iota = await connectIota({ url, iotaId: ids.iota, userIds: [ids.alice, ids.bob], privateKeyHash: hashes.iota, reconnect: false });
  peers.push(iota);
  talk.watch("iota", iota, "client -> iota");
  ensure(iota.acceptedUserIds.length === 2, "the Iota's users were not both accepted");
  // The Iota's own logic: a message_send is confirmed to its sender and delivered to its receiver.
  iota.on("message", (frame) => {
    if (frame.type !== "message_send" || frame.sender_id === undefined) return;
    const to = String(frame.data?.to ?? "");
    talk.send("iota", iota, { id: frame.id, type: "message_send_response", receiver_id: frame.sender_id, data: { delivered: true } });
    talk.send("iota", iota, { type: "message_receive", receiver_id: to, data: { from: frame.sender_id, text: frame.data?.text } });
  });

  talk.step("two clients connect");
  const alice = await connectClient({ url, iotaId: ids.iota, userId: ids.alice, privateKeyHash: hashes.alice, reconnect: false });
  peers.push(alice);
  talk.watch("alice", alice, "iota -> client");
  await talk.next("iota", "client_connected", (frame) => frame.data?.user_id === ids.alice);
  const bob = await connectClient({ url, iotaId: ids.iota, userId: ids.bob, privateKeyHash: hashes.bob, reconnect: false });
  peers.push(bob);
  talk.watch("bob", bob, "iota -> client");
  await talk.next("iota", "client_connected", (frame) => frame.data?.user_id === ids.bob);

  talk.step("alice and bob write to each other through their Iota");
  for (const [from, to, text] of [
    ["alice", "bob", "Hi Bob, lunch today?"],
    ["bob", "alice", "Sure! Let's call."],
  ] as const) {
    const sender = from === "alice" ? alice : bob;
    const id = talk.send(from, sender, { type: "message_send", data: { to: ids[to], text } });
    await talk.next(from, "message_send_response", (frame) => frame.id === id);
    const delivered = await talk.next(to, "message_receive", (frame) => frame.data?.from === ids[from]);
    ensure(delivered.data?.text === text, `${to} received ${JSON.stringify(delivered.data?.text)} instead of ${JSON.stringify(text)}`);
  }

  talk.step("pings: the Omikron answers them itself");
  talk.send("iota", iota, { type: "ping", data: { last_ping: 12 } });
  const iotaPong = await talk.next("iota", "pong");
  ensure(Object.keys((iotaPong.data?.user_ping as object | undefined) ?? {}).length === 2, "the Iota's pong did not list both online users");
  talk.send("alice", alice, { type: "ping", data: { last_ping: 30 } });
  const alicePong = await talk.next("alice", "pong");
  ensure(alicePong.data?.last_ping === 12, "alice's pong did not carry the Iota's last ping");

  talk.step("presence through the admin API");
  const presence = (await admin.request("GET", `/iotas/${ids.iota}/presence`, PresenceSchema)).body;
  talk.info({ admin: "GET /admin/iotas/:iota_id/presence", body: presence }, `GET /admin/iotas/iota/presence -> ${JSON.stringify(presence)}`);
  ensure(presence.iota_online && presence.users_online.length === 2 && presence.client_sockets === 2, "presence did not show the Iota and both users online");

  talk.step("alice and bob join a call");
  const aliceCall = await joinCall({ url, callId: ids.call, userId: ids.alice, privateKeyHash: hashes.alice, reconnect: false });
  peers.push(aliceCall);
  talk.watch("alice/call", aliceCall, "call member -> member");
  const bobCall = await joinCall({ url, callId: ids.call, userId: ids.bob, privateKeyHash: hashes.bob, callState: "muted", reconnect: false });
  peers.push(bobCall);
  talk.watch("bob/call", bobCall, "call member -> member");
  await talk.next("alice/call", "client_connected", (frame) => frame.data?.user_id === ids.bob);
  talk.send("alice/call", aliceCall, { type: "webrtc_sdp", receiver_id: ids.bob, data: { sdp_type: "offer", sdp: "v=0 (demo)" } });
  await talk.next("bob/call", "webrtc_sdp", (frame) => frame.sender_id === ids.alice);
  talk.send("bob/call", bobCall, { type: "webrtc_sdp", receiver_id: ids.alice, data: { sdp_type: "answer", sdp: "v=0 (demo)" } });
  await talk.next("alice/call", "webrtc_sdp", (frame) => frame.sender_id === ids.bob);
  talk.send("bob/call", bobCall, { type: "client_changed", data: { call_state: "active" } });
  await talk.next("alice/call", "client_changed", (frame) => frame.data?.user_id === ids.bob && frame.data?.call_state === "active");
  const call = (await admin.request("GET", `/calls/${ids.call}`, CallMembersSchema)).body;
  talk.info({ admin: "GET /admin/calls/:call_id", body: call }, `GET /admin/calls/call -> ${JSON.stringify(call)}`);
  ensure(Object.keys(call.members).length === 2, "the call did not show two members");

  talk.step("everyone leaves");
  await bobCall.close();
  await talk.next("alice/call", "client_disconnected", (frame) => frame.data?.user_id === ids.bob);
  await aliceCall.close();
  await bob.close();
  await talk.next("iota", "client_disconnected", (frame) => frame.data?.user_id === ids.bob);
  await alice.close();
  await talk.next("iota", "client_disconnected", (frame) => frame.data?.user_id === ids.alice);
  await iota.close();

  const relayed = talk.relayed;
  const total = Object.values(relayed).reduce((sum, n) => sum + n, 0);
  const summary =
    `demo ok: relayed ${total} frames (${relayed["client -> iota"]} client -> iota, ${relayed["iota -> client"]} iota -> client, ` +
    `${relayed["call member -> member"]} between 2 call members); presence showed the Iota and ${presence.users_online.length} users online`;
  out.event({ summary, ok: true, relayed, presence, call_members: Object.keys(call.members).length }, `\n${summary}`);
  return EXIT.ok;
}
