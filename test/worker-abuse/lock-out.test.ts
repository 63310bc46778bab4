/**
 * Attack: lock-out (issue 10). Anyone who knows an iota_id could keep its hub's unidentified
 * slots full, so the Iota's reconnect and every new device were refused. Defended by upgrade
 * admission per address (SPEC §3 r2) and by evicting the oldest unidentified socket (§4 r2).
 */
import { env, exports } from "cloudflare:workers";
import { listDurableObjectIds } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { callIdentification, users } from "../worker/calls";
import { type Account, type Peer, clientIdentification, createIota, createUser, iotaIdentification, uuid } from "../worker/support";
import { connectFrom, freshAddress, inOneWindow, upgradeFrom } from "./attack";

const UPGRADES_PER_ADDRESS = 120;
const MAX_UNIDENTIFIED = 256;

/** `count` idle sockets, each from its own address; the first is opened first, so it is the oldest. */
async function openIdle(path: string, count: number): Promise<Peer[]> {
  const oldest = await connectFrom(path);
  const second = await connectFrom(path);
  return [oldest, second, ...(await Promise.all(Array.from({ length: count - 2 }, () => connectFrom(path))))];
}

describe("upgrade admission per client address (SPEC §3 r2)", () => {
  it("admits 120 upgrades a minute from one address, then answers 429 JSON without touching a Durable Object", async () => {
    await inOneWindow(async () => {
      const address = freshAddress();
      const iotaId = uuid();
      const opened = await Promise.all(Array.from({ length: UPGRADES_PER_ADDRESS }, () => connectFrom(`/ws/client/${iotaId}`, address)));
      const untouched = uuid();
      const refused = await upgradeFrom(`/ws/iota/${untouched}`, address);
      expect(refused.status).toBe(429);
      expect(refused.webSocket).toBeNull();
      expect(await refused.json()).toEqual({ error: "too_many_upgrades", message: expect.any(String) });
      const hubs = (await listDurableObjectIds(env.HUB)).map((id) => id.toString());
      expect(hubs).toContain(env.HUB.idFromName(iotaId).toString());
      expect(hubs).not.toContain(env.HUB.idFromName(untouched).toString());
      // Another address is not held back by this one's flood.
      const other = await upgradeFrom(`/ws/iota/${untouched}`, freshAddress());
      expect(other.status).toBe(101);
      other.webSocket?.accept();
      other.webSocket?.close(1000);
      for (const peer of opened) peer.close();
    });
  });

  it("counts IPv6 addresses of one /64 as one client", async () => {
    await inOneWindow(async () => {
      const prefix = freshAddress(6).replace(/::1$/, "");
      const callId = uuid();
      const opened = await Promise.all(
        Array.from({ length: UPGRADES_PER_ADDRESS }, (_, i) => connectFrom(`/ws/call/${callId}`, `${prefix}::${(i + 1).toString(16)}`)),
      );
      expect((await upgradeFrom(`/ws/call/${callId}`, `${prefix}:ffff:ffff:ffff:ffff`)).status).toBe(429);
      for (const peer of opened) peer.close();
    });
  });

  it("judges a bad path id (400) and a missing Upgrade header (426) before the budget", async () => {
    const address = freshAddress();
    expect((await upgradeFrom("/ws/iota/not-a-uuid", address)).status).toBe(400);
    const plain = await exports.default.fetch(`http://omikron.test/ws/iota/${uuid()}`, { headers: { "CF-Connecting-IP": address } });
    expect(plain.status).toBe(426);
  });
});

describe("a full set of unidentified sockets (SPEC §4 r2)", () => {
  it("lets the Iota and a new device in while 256 idle sockets from many addresses hold the hub", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const idle = await openIdle(`/ws/client/${iota.id}`, MAX_UNIDENTIFIED);

    const iotaPeer = await connectFrom(`/ws/iota/${iota.id}`);
    // Room was made by closing the oldest idle socket, with 4008 and nothing before it.
    expect(await idle[0]!.closed).toEqual({ code: 4008, reason: "too many unidentified sockets" });
    expect(idle[0]!.pending()).toEqual([]);
    expect((await iotaPeer.request(iotaIdentification(iota, [alice.id]))).type).toBe("identification_response");

    // The Iota no longer counts as unidentified, so the device finds a free slot.
    const device = await connectFrom(`/ws/client/${iota.id}`);
    expect((await device.request(clientIdentification(iota, alice))).data).toMatchObject({ accepted: true, iota_online: true });
    expect(await iotaPeer.next()).toMatchObject({ type: "client_connected", data: { user_id: alice.id } });
    // The flood goes on, evicting its own oldest sockets, and what identified stays.
    for (let i = 0; i < 4; i++) idle.push(await connectFrom(`/ws/client/${iota.id}`));
    const evicted = await Promise.race(idle.slice(1).map((peer) => peer.closed));
    expect(evicted.code).toBe(4008);
    expect((await device.request({ id: "still-here", type: "ping" })).type).toBe("pong");
    for (const peer of idle) peer.close();
  });

  it("lets a member into a call whose unidentified slots a flood holds", async () => {
    const callId = uuid();
    const [alice] = (await users(1)) as [Account];
    const idle = await openIdle(`/ws/call/${callId}`, MAX_UNIDENTIFIED);
    const member = await connectFrom(`/ws/call/${callId}`);
    expect((await idle[0]!.closed).code).toBe(4008);
    const reply = await member.request(callIdentification(callId, alice));
    expect(reply).toMatchObject({ type: "identification_response", data: { accepted: true } });
    for (const peer of idle) peer.close();
  });
});
