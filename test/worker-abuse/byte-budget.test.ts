/**
 * Attack: no byte budget (issue 10). Frames were counted, not bytes, and a call broadcast
 * fanned out to every member for the price of one frame. Now each socket has a byte bucket
 * (SPEC §9 r2: 4 MiB burst for clients and call members) and a broadcast is charged once per
 * receiver to its sender.
 */
import { describe, expect, it } from "vitest";
import { callIdentification, users } from "../worker/calls";
import { type Account, type Peer, createIota, createUser, fromOmikron, uuid } from "../worker/support";
import { connectFrom, identifiedClient, identifiedIota } from "./attack";

const MIB = 1_048_576;

/** A frame of about `size` bytes that any receiver may take. */
function bulky(id: string, size: number, extra: Record<string, unknown> = {}): string {
  const head = JSON.stringify({ id, type: "blob", ...extra, data: { pad: "" } });
  return head.replace('"pad":""', `"pad":"${"p".repeat(size - head.length)}"`);
}

async function joined(callId: string, user: Account): Promise<Peer> {
  const peer = await connectFrom(`/ws/call/${callId}`);
  const reply = await peer.request(callIdentification(callId, user));
  expect(reply.data.accepted).toBe(true);
  return peer;
}

describe("byte bucket per socket (SPEC §9 r2)", () => {
  it("relays a client's first 4 MiB at once and answers the next megabyte error_rate_limited", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await identifiedIota(iota, [alice.id]);
    const client = await identifiedClient(iota, alice);
    await iotaPeer.next();
    // Four frames just under 1 MiB fit the 4 MiB burst with the identification; a fifth does not.
    for (let i = 0; i < 5; i++) client.send(bulky(`big-${i}`, MIB - 1_000));
    expect(await client.next()).toEqual(fromOmikron("error_rate_limited", {}, 1, "big-4"));
    for (let i = 0; i < 4; i++) expect((await iotaPeer.next()).id).toBe(`big-${i}`);
    // Small frames still pass: the frame bucket is far from empty and some bytes are left.
    expect((await client.request({ id: "small", type: "ping" })).type).toBe("pong");
    expect(iotaPeer.pending()).toEqual([]);
  });

  it("charges a call broadcast once per receiver, so one frame cannot fan out to every member", async () => {
    const callId = uuid();
    const [alice, bob, carol, dave] = (await users(4)) as [Account, Account, Account, Account];
    const sender = await joined(callId, alice);
    const receivers: Peer[] = [];
    for (const user of [bob, carol, dave]) {
      receivers.push(await joined(callId, user));
      await sender.next();
      for (const earlier of receivers.slice(0, -1)) await earlier.next();
    }
    // 3 receivers × 1 MB = 3 MB of the 4 MiB burst: relayed to all three.
    sender.send(bulky("first", 1_000_000));
    for (const peer of receivers) expect((await peer.next()).id).toBe("first");
    // The next one would cost 3 MB more with about 1.2 MB left: refused, sent to nobody.
    sender.send(bulky("second", 1_000_000));
    expect(await sender.next()).toEqual(fromOmikron("error_rate_limited", {}, 1, "second"));
    // A frame to one member costs one copy and still fits.
    sender.send(bulky("direct", 100_000, { receiver_id: bob.id }));
    expect((await receivers[0]!.next()).id).toBe("direct");
    for (const peer of receivers.slice(1)) expect(peer.pending()).toEqual([]);
  });
});
