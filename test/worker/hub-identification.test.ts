import { describe, expect, it } from "vitest";
import {
  OMIKRON_ID,
  clientIdentification,
  connect,
  connectClient,
  connectIota,
  createIota,
  createUser,
  iotaIdentification,
  keyHash,
  uuid,
} from "./support";

describe("Iota identification (SPEC §4.1)", () => {
  it("accepts the Iota's own users and denies unknown, foreign and malformed ids", async () => {
    const iota = await createIota();
    const other = await createIota();
    const mine = await createUser(iota);
    const theirs = await createUser(other);
    const unknown = uuid();
    const peer = await connect(`/ws/iota/${iota.id}`);
    const reply = await peer.request(iotaIdentification(iota, `${mine.id},${theirs.id},${unknown},not-a-uuid,`, "req-1"));
    const denied = `${theirs.id},${unknown},not-a-uuid,`;
    expect(reply).toEqual({
      id: "req-1",
      type: "identification_response",
      log: { message: "Iota identified", log_level: 0 },
      data: { accepted_profiles: `${mine.id},`, denid_profiles: denied, denied_profiles: denied },
      sender_id: OMIKRON_ID,
    });
  });

  it("reads user_ids leniently: spaces, leading commas and a JSON array", async () => {
    const iota = await createIota();
    const a = await createUser(iota);
    const b = await createUser(iota);
    const first = await connect(`/ws/iota/${iota.id}`);
    const reply = await first.request(iotaIdentification(iota, ` ,${a.id.toUpperCase()} , ${b.id}`));
    expect(reply.data).toMatchObject({ accepted_profiles: `${a.id},${b.id},`, denid_profiles: "" });
    const second = await connect(`/ws/iota/${iota.id}`);
    const request = iotaIdentification(iota, []);
    request.data.user_ids = [a.id] as unknown as string;
    expect((await second.request(request)).data).toMatchObject({ accepted_profiles: `${a.id},`, denied_profiles: "" });
  });

  it("accepts an empty user list", async () => {
    const iota = await createIota();
    const peer = await connect(`/ws/iota/${iota.id}`);
    const reply = await peer.request(iotaIdentification(iota, ""));
    expect(reply.data).toEqual({ accepted_profiles: "", denid_profiles: "", denied_profiles: "" });
  });

  const refusals: [string, (iota: { id: string; key: string }) => unknown][] = [
    ["a wrong credential", (iota) => ({ ...iotaIdentification(iota, ""), data: { iota_id: iota.id, user_ids: "", private_key_hash: keyHash() } })],
    ["a missing credential", (iota) => ({ ...iotaIdentification(iota, ""), data: { iota_id: iota.id, user_ids: "" } })],
    ["an iota_id other than the path's", (iota) => ({ ...iotaIdentification(iota, ""), data: { iota_id: uuid(), user_ids: "", private_key_hash: iota.key } })],
    ["data that is not an object", (iota) => ({ ...iotaIdentification(iota, ""), data: "nope" })],
    ["a missing user_ids", (iota) => ({ ...iotaIdentification(iota, ""), data: { iota_id: iota.id, private_key_hash: iota.key } })],
    ["a numeric iota_id", (iota) => ({ ...iotaIdentification(iota, ""), data: { iota_id: 7, user_ids: "", private_key_hash: iota.key } })],
  ];

  for (const [what, build] of refusals) {
    it(`refuses ${what} with error_not_authenticated and close 4003`, async () => {
      const iota = await createIota();
      const peer = await connect(`/ws/iota/${iota.id}`);
      const request = build(iota) as { id: string };
      const reply = await peer.request(request);
      expect(reply).toMatchObject({ id: request.id, type: "error_not_authenticated", log: { log_level: 2 }, data: {}, sender_id: OMIKRON_ID });
      expect(JSON.stringify(reply)).not.toContain(iota.key);
      expect((await peer.closed).code).toBe(4003);
    });
  }

  it("refuses an Iota the directory does not know", async () => {
    const stranger = { id: uuid(), key: keyHash() };
    const peer = await connect(`/ws/iota/${stranger.id}`);
    expect((await peer.request(iotaIdentification(stranger, ""))).type).toBe("error_not_authenticated");
    expect((await peer.closed).code).toBe(4003);
  });

  it("refuses with a fresh id when the attempt's id is not a string", async () => {
    const iota = await createIota();
    const peer = await connect(`/ws/iota/${iota.id}`);
    const reply = await peer.request({ ...iotaIdentification(iota, ""), id: 42, data: null });
    expect(reply.type).toBe("error_not_authenticated");
    expect(reply.id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await peer.closed).code).toBe(4003);
  });
});

describe("client identification (SPEC §4.2)", () => {
  it("answers acceppted and accepted with iota_online false when the Iota is away", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const peer = await connect(`/ws/client/${iota.id}`);
    expect(await peer.request(clientIdentification(iota, user, "c-1"))).toEqual({
      id: "c-1",
      type: "identification_response",
      log: { message: "Client identified", log_level: 0 },
      data: { acceppted: true, accepted: true, iota_online: false },
      sender_id: OMIKRON_ID,
    });
  });

  it("answers iota_online true when the Iota is connected", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    await connectIota(iota, [user.id]);
    const peer = await connect(`/ws/client/${iota.id}`);
    expect((await peer.request(clientIdentification(iota, user))).data).toEqual({ acceppted: true, accepted: true, iota_online: true });
  });

  it("accepts a credential written in upper case", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const peer = await connect(`/ws/client/${iota.id}`);
    const reply = await peer.request(clientIdentification(iota, { id: user.id.toUpperCase(), key: user.key.toUpperCase() }));
    expect(reply.data.accepted).toBe(true);
  });

  const refusals: [string, (iota: { id: string; key: string }, user: { id: string; key: string }) => Promise<Record<string, unknown>>][] = [
    ["a wrong credential", async (iota, user) => clientIdentification(iota, { id: user.id, key: keyHash() })],
    ["an unknown user", async (iota) => clientIdentification(iota, { id: uuid(), key: keyHash() })],
    ["another Iota's user", async (iota) => clientIdentification(iota, await createUser(await createIota()))],
    ["an iota_id other than the path's", async (iota, user) => ({ ...clientIdentification(iota, user), data: { iota_id: uuid(), user_id: user.id, private_key_hash: user.key } })],
    ["a credential that is not 64 hex characters", async (iota, user) => clientIdentification(iota, { id: user.id, key: "abc" })],
    ["a missing user_id", async (iota, user) => ({ ...clientIdentification(iota, user), data: { iota_id: iota.id, private_key_hash: user.key } })],
    ["data that is null", async (iota, user) => ({ ...clientIdentification(iota, user), data: null })],
  ];

  for (const [what, build] of refusals) {
    it(`refuses ${what} with both flags false and close 4003`, async () => {
      const iota = await createIota();
      const user = await createUser(iota);
      await connectIota(iota, [user.id]);
      const peer = await connect(`/ws/client/${iota.id}`);
      const request = await build(iota, user);
      const reply = await peer.request(request);
      expect(reply).toEqual({
        id: request.id,
        type: "identification_response",
        log: { message: expect.any(String), log_level: 2 },
        data: { acceppted: false, accepted: false },
        sender_id: OMIKRON_ID,
      });
      expect((await peer.closed).code).toBe(4003);
    });
  }

  it("gets the refusal only: no iota_online and no later frame", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const peer = await connect(`/ws/client/${iota.id}`);
    await peer.request(clientIdentification(iota, { id: user.id, key: keyHash() }));
    const closed = await peer.closed;
    expect(closed.code).toBe(4003);
    expect(peer.pending()).toEqual([]);
  });
});

describe("before and after identification (SPEC §4)", () => {
  it("ignores every message before identification, then answers the attempt", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const peer = await connect(`/ws/client/${iota.id}`);
    peer.send({ id: "early-ping", type: "ping", data: { last_ping: 3 } });
    peer.send("not json at all");
    peer.send({ id: "early-msg", type: "get_chats", data: {} });
    const reply = await peer.request(clientIdentification(iota, user, "attempt"));
    expect(reply.id).toBe("attempt");
    expect(reply.type).toBe("identification_response");
  });

  it("relays frames sent right behind the attempt, in order, once it succeeds", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const iotaPeer = await connectIota(iota, [user.id]);
    const peer = await connect(`/ws/client/${iota.id}`);
    peer.send(clientIdentification(iota, user, "attempt"));
    for (let i = 0; i < 5; i++) peer.send({ id: `m${i}`, type: "message", data: { i } });
    expect((await peer.next()).id).toBe("attempt");
    expect((await iotaPeer.next()).type).toBe("client_connected");
    for (let i = 0; i < 5; i++) expect(await iotaPeer.next()).toEqual({ id: `m${i}`, type: "message", data: { i }, sender_id: user.id });
  });

  it("answers a second identification with error_invalid_data and keeps the socket", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const client = await connectClient(iota, user);
    const reply = await client.request(clientIdentification(iota, user, "again"));
    expect(reply).toMatchObject({ id: "again", type: "error_invalid_data", log: { log_level: 2 }, sender_id: OMIKRON_ID });
    expect((await client.request({ id: "p", type: "ping", data: {} })).type).toBe("pong");
  });
});
