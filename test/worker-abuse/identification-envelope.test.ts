/**
 * Attack: an identification frame that is not a valid envelope was still processed
 * (issue 10). Such an attempt is now refused like an ill-typed one (SPEC §4 r2): the refusal
 * frame, then close 4003, even when its data holds a good credential.
 */
import { describe, expect, it } from "vitest";
import { callIdentification, users } from "../worker/calls";
import { type Account, FRESH_ID, clientIdentification, createIota, createUser, iotaIdentification, uuid } from "../worker/support";
import { connectFrom } from "./attack";

/** Ways to spoil an otherwise valid identification envelope (SPEC §2). */
const SPOILERS: [string, (frame: Record<string, unknown>) => string][] = [
  ["an id of 129 characters", (frame) => JSON.stringify({ ...frame, id: "i".repeat(129) })],
  ["a numeric receiver_id", (frame) => JSON.stringify({ ...frame, receiver_id: 7 })],
  ["a sender_id that is an object", (frame) => JSON.stringify({ ...frame, sender_id: {} })],
  ["a repeated type key", (frame) => JSON.stringify(frame).replace('"type":"identification"', '"type":"identification","type":"identification"')],
];

describe("identification frames that are not valid envelopes (SPEC §4 r2)", () => {
  it.each(SPOILERS)("refuses a client identification with %s, though its credential is right", async (_what, spoil) => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const peer = await connectFrom(`/ws/client/${iota.id}`);
    peer.send(spoil(clientIdentification(iota, alice, "attempt")));
    const reply = await peer.next();
    expect(reply).toMatchObject({ type: "identification_response", data: { acceppted: false, accepted: false } });
    expect(reply.id === "attempt" || FRESH_ID.test(reply.id)).toBe(true);
    expect((await peer.closed).code).toBe(4003);
  });

  it.each(SPOILERS)("refuses an Iota identification with %s", async (_what, spoil) => {
    const iota = await createIota();
    const peer = await connectFrom(`/ws/iota/${iota.id}`);
    peer.send(spoil(iotaIdentification(iota, [])));
    expect(await peer.next()).toMatchObject({ type: "error_not_authenticated" });
    expect((await peer.closed).code).toBe(4003);
  });

  it.each(SPOILERS)("refuses a call join with %s", async (_what, spoil) => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    const peer = await connectFrom(`/ws/call/${callId}`);
    peer.send(spoil(callIdentification(callId, alice)));
    expect(await peer.next()).toMatchObject({ type: "identification_response", data: { accepted: false } });
    expect((await peer.closed).code).toBe(4003);
  });
});
