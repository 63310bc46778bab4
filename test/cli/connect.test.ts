/** `connect iota|client|call`: sessions on the peer library against a real local relay. */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Frame, connectIota, joinCall, privateKeyHash } from "../../src/peer/index.ts";
import { type LocalRelay, Lines, awaitLine, envOf, run, startLocalRelay } from "./support.ts";

let relay: LocalRelay;
let env: Record<string, string>;
type Provisioned = { private_key: string; private_key_hash: string };
let iota: Provisioned & { iota_id: string };
let alice: Provisioned & { user_id: string };
let bob: Provisioned & { user_id: string };

beforeAll(async () => {
  relay = await startLocalRelay();
  env = envOf(relay);
  iota = (await run(["iota", "add", "--json"], { env })).json() as typeof iota;
  alice = (await run(["user", "add", "--iota", iota.iota_id, "--json"], { env })).json() as typeof alice;
  bob = (await run(["user", "add", "--iota", iota.iota_id, "--json"], { env })).json() as typeof bob;
});
afterAll(() => relay?.stop());

type Event = { direction: "in" | "out"; frame: Frame } | { direction: "closed"; code: number; reason: string };
const events = (stdout: string[]) => stdout.map((line) => JSON.parse(line) as Event);
const frames = (stdout: string[], direction: "in" | "out") =>
  events(stdout).flatMap((event) => (event.direction === direction ? [event.frame] : []));
const identified = (line: string) => line.includes('"identification_response"');

describe("connect", () => {
  it("identifies a client, sends what is typed, prints the Iota's replies and exits 0 at the end of input", async () => {
    const peer = await connectIota({
      url: relay.url,
      iotaId: iota.iota_id,
      userIds: [alice.user_id],
      privateKeyHash: iota.private_key_hash,
      reconnect: false,
    });
    const seen: Frame[] = [];
    peer.on("message", (frame) => {
      seen.push(frame);
      // The Iota answers a request to its sender, with the request's id.
      if (frame.type === "get_chats") peer.send({ id: frame.id, type: "get_chats_response", receiver_id: frame.sender_id, data: { chats: [] } });
    });
    const stdin = new Lines();
    const reply = awaitLine((line) => line.includes('"get_chats_response"'));
    const session = run(["connect", "client", iota.iota_id, alice.user_id, "--private-key", alice.private_key, "--json"], {
      env,
      stdin,
      onLine: reply.onLine,
    });
    for (const line of ["/ping", 'get_chats {"limit":5}', "not json {", '{"type":"raw_frame","data":{"n":1}}']) stdin.push(line);
    await reply.line;
    stdin.end();
    const result = await session;
    await peer.close();

    expect(result.code).toBe(0);
    const received = frames(result.stdout, "in");
    expect(received[0]).toMatchObject({ type: "identification_response", data: { accepted: true, iota_online: true } });
    expect(received.map((frame) => frame.type)).toEqual(expect.arrayContaining(["pong", "get_chats_response"]));
    expect(received.find((frame) => frame.type === "get_chats_response")).toMatchObject({ sender_id: iota.iota_id, data: { chats: [] } });
    expect(frames(result.stdout, "out").map((frame) => frame.type)).toEqual(["ping", "get_chats", "raw_frame"]);
    expect(result.stderr).toEqual(["(<data> must be a JSON object)"]);
    expect(events(result.stdout).at(-1)).toEqual({ direction: "closed", code: 1000, reason: "bye" });
    expect(seen.map((frame) => [frame.type, frame.sender_id])).toEqual([
      ["get_chats", alice.user_id],
      ["raw_frame", alice.user_id],
    ]);
  });

  it("prints a call's pushes and relayed frames, and sends typed changes to the other member", async () => {
    const callId = randomUUID();
    const stdin = new Lines();
    const joined = awaitLine(identified);
    const relayed = awaitLine((line) => line.includes('"webrtc_sdp"'));
    const session = run(["connect", "call", callId, alice.user_id, "--key-hash", alice.private_key_hash, "--call-state", "muted", "--json"], {
      env,
      stdin,
      onLine: (line) => {
        joined.onLine(line);
        relayed.onLine(line);
      },
    });
    await joined.line;
    const member = await joinCall({ url: relay.url, callId, userId: bob.user_id, privateKeyHash: bob.private_key_hash, reconnect: false });
    const changed = member.once("client_changed");
    member.send({ type: "webrtc_sdp", data: { sdp: "v=0" } });
    await relayed.line;
    stdin.push('client_changed {"call_state":"deafed"}');
    expect((await changed).data).toEqual({ user_id: alice.user_id, call_state: "deafed" });
    stdin.end();
    const result = await session;
    await member.close();

    expect(result.code).toBe(0);
    const received = frames(result.stdout, "in");
    expect(received[0]).toMatchObject({ type: "identification_response", data: { user_ids: { [alice.user_id]: "muted" } } });
    expect(received.slice(1, 3)).toMatchObject([
      { type: "client_connected", data: { user_id: bob.user_id, call_state: "active" } },
      { type: "webrtc_sdp", sender_id: bob.user_id, data: { sdp: "v=0" } },
    ]);
  });

  it("ends with exit 1 and the close code when the relay closes the session (a revoked user: 4003)", async () => {
    const victim = (await run(["user", "add", "--iota", iota.iota_id, "--json"], { env })).json() as typeof alice;
    const joined = awaitLine(identified);
    const session = run(["connect", "client", iota.iota_id, victim.user_id, "--key-hash", victim.private_key_hash, "--json"], {
      env,
      stdin: new Lines(),
      onLine: joined.onLine,
    });
    await joined.line;
    expect((await run(["user", "rm", victim.user_id], { env })).code).toBe(0);
    const result = await session;
    expect(result.code).toBe(1);
    expect(events(result.stdout).at(-1)).toEqual({ direction: "closed", code: 4003, reason: "credential revoked" });
  });

  it("exits 1 with the refusal for a wrong credential, and 3 when the relay cannot be reached", async () => {
    const refused = await run(["connect", "client", iota.iota_id, alice.user_id, "--key-hash", "0".repeat(64), "--json"], { env });
    expect(refused.code).toBe(1);
    expect(frames(refused.stdout, "in")[0]).toMatchObject({ type: "identification_response", data: { accepted: false } });
    expect(JSON.parse(refused.stderr[0] ?? "")).toMatchObject({ error: "refused" });

    const unreachable = await run(["connect", "iota", iota.iota_id, "--key-hash", "0".repeat(64), "--url", "http://127.0.0.1:9"], { env });
    expect(unreachable.code).toBe(3);
  });

  it("refuses a malformed command line with exit 2 before connecting", async () => {
    const nowhere = { ...env, OMIKRON_URL: "http://127.0.0.1:9" };
    for (const argv of [
      ["connect", "client", iota.iota_id, alice.user_id],
      ["connect", "call", randomUUID(), alice.user_id, "--key-hash", "0".repeat(64), "--call-state", "loud"],
      ["connect", "client", iota.iota_id],
      ["connect", "bogus"],
    ]) {
      expect({ argv, code: (await run(argv, { env: nowhere })).code }).toEqual({ argv, code: 2 });
    }
  });
});
