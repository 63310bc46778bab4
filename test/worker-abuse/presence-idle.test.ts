/**
 * Presence after an idle close (SPEC §8.2, §9 r2): a peer that vanished without closing is
 * closed 1001 by the idle alarm (IDLE_TIMEOUT_MS is 1200 in this project) and leaves presence
 * with that close, while a peer that keeps sending `ping` keep-alives stays.
 */
import { describe, expect, it } from "vitest";
import { callIdentification } from "../worker/calls";
import { type Account, adminFetch, createIota, createUser, uuid } from "../worker/support";
import { connectFrom, identifiedClient, identifiedIota } from "./attack";

async function presenceOf(iotaId: string): Promise<unknown> {
  const response = await adminFetch(`/iotas/${iotaId}/presence`);
  expect(response.status).toBe(200);
  return response.json();
}

/** Two idle timeouts in a row take a few seconds; this bounds a hang, it measures nothing. */
const TWO_IDLE_CLOSES_MS = 15_000;

describe("presence after an idle close (SPEC §8.2, §9)", () => {
  it("drops a silent client from a hub's presence, keeping the Iota that sends keep-alives", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await identifiedIota(iota, [alice.id]);
    const client = await identifiedClient(iota, alice);
    expect(await presenceOf(iota.id)).toEqual({ iota_id: iota.id, iota_online: true, users_online: [alice.id], client_sockets: 1 });
    // The literal keep-alive counts as traffic without waking the hub (SPEC §6, §9).
    const keepAlive = setInterval(() => iotaPeer.send("ping"), 200);
    try {
      expect((await client.closed).code).toBe(1001);
      expect(await presenceOf(iota.id)).toEqual({ iota_id: iota.id, iota_online: true, users_online: [], client_sockets: 0 });
    } finally {
      clearInterval(keepAlive);
    }
    expect((await iotaPeer.closed).code).toBe(1001);
    expect(await presenceOf(iota.id)).toEqual({ iota_id: iota.id, iota_online: false, users_online: [], client_sockets: 0 });
  }, TWO_IDLE_CLOSES_MS);

  it("answers 404 for a call whose only member went silent", async () => {
    const callId = uuid();
    const alice: Account = await createUser(await createIota());
    const member = await connectFrom(`/ws/call/${callId}`);
    expect((await member.request(callIdentification(callId, alice))).data.accepted).toBe(true);
    expect((await adminFetch(`/calls/${callId}`)).status).toBe(200);
    expect((await member.closed).code).toBe(1001);
    expect((await adminFetch(`/calls/${callId}`)).status).toBe(404);
  }, TWO_IDLE_CLOSES_MS);
});
