/**
 * Attack: the noisy neighbour (issue 10). A client flooding junk kept its hub busy for the
 * whole 10 s episode. Now an episode that drops more frames than the burst closes the socket
 * 1008 at once (SPEC §9 r2), over-rate frames are never parsed, and upgrade admission bounds
 * the flooder's reconnects. The neighbour's added latency is measured by `bench/flood.mjs`.
 */
import { describe, expect, it } from "vitest";
import { type Frame, OMIKRON_ID, createIota, createUser } from "../worker/support";
import { connectFrom, identifiedClient, identifiedIota } from "./attack";

const BURST = 200;

describe("flood close (SPEC §9 r2)", () => {
  it("closes a flooding client 1008 after one error_rate_limited and more drops than the burst, sparing its neighbour", async () => {
    const iota = await createIota();
    const [flooder, neighbour] = [await createUser(iota), await createUser(iota)];
    const iotaPeer = await identifiedIota(iota, [flooder.id, neighbour.id]);
    const flooding = await identifiedClient(iota, flooder);
    const next = await identifiedClient(iota, neighbour);
    expect(await iotaPeer.next()).toMatchObject({ type: "client_connected", data: { user_id: flooder.id } });
    expect(await iotaPeer.next()).toMatchObject({ type: "client_connected", data: { user_id: neighbour.id } });

    // Everything at once, far less than a second: the 10 s episode rule alone would not close.
    const total = 3 * BURST;
    for (let i = 0; i < total; i++) flooding.send(`{"id":"f${i}","type":"junk","data":{}}`);
    expect(await flooding.closed).toEqual({ code: 1008, reason: "rate limit exceeded" });
    const replies = flooding.pending().map((text) => JSON.parse(text) as Frame);
    // One answer for the whole episode: the first rejected frame's id, once the burst (less
    // the identification's token, plus what refilled meanwhile) had passed.
    expect(replies).toEqual([
      { id: expect.stringMatching(/^f\d+$/), type: "error_rate_limited", log: { message: expect.any(String), log_level: 1 }, data: {}, sender_id: OMIKRON_ID },
    ]);
    const firstRejected = Number(replies[0]!.id.slice(1));
    expect(firstRejected).toBeGreaterThanOrEqual(BURST - 1);

    const relayed: string[] = [];
    for (;;) {
      const frame = await iotaPeer.next();
      if (frame.type === "client_disconnected") {
        expect(frame.data).toEqual({ user_id: flooder.id });
        break;
      }
      relayed.push(frame.id);
    }
    expect(relayed.slice(0, firstRejected)).toEqual(Array.from({ length: firstRejected }, (_, i) => `f${i}`));
    // Only what refilled while the flood arrived got through after that; the rest was dropped
    // unparsed until the drops outnumbered the burst and the socket was cut.
    expect(relayed.length - firstRejected).toBeLessThan(BURST / 10);
    expect((await next.request({ id: "still-served", type: "ping", data: {} })).type).toBe("pong");
  });

  it("closes a flooding socket that never identified, too", async () => {
    const iota = await createIota();
    const stranger = await connectFrom(`/ws/client/${iota.id}`);
    for (let i = 0; i < 3 * BURST; i++) stranger.send("not even json");
    expect((await stranger.closed).code).toBe(1008);
    expect(stranger.pending()).toEqual([]);
  });

  it("keeps a burst that stays within the bucket", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await identifiedIota(iota, [alice.id]);
    const client = await identifiedClient(iota, alice);
    await iotaPeer.next();
    for (let i = 0; i < BURST - 1; i++) client.send({ id: `ok${i}`, type: "message" });
    for (let i = 0; i < BURST - 1; i++) expect((await iotaPeer.next()).id).toBe(`ok${i}`);
    // Nothing was refused and the socket stays open.
    expect(client.pending()).toEqual([]);
    expect(iotaPeer.pending()).toEqual([]);
  });
});
