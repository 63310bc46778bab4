import { describe, expect, it } from "vitest";
import { FRESH_ID, OMIKRON_ID, type Peer, connect, connectClient, connectIota, createIota, createUser } from "./support";

/** A hub with an Iota, a client under attack and a bystander client of another user. */
async function setUp() {
  const iota = await createIota();
  const attacker = await createUser(iota);
  const bystander = await createUser(iota);
  const iotaPeer = await connectIota(iota, [attacker.id, bystander.id]);
  const bad = await connectClient(iota, attacker);
  const good = await connectClient(iota, bystander);
  await iotaPeer.next();
  await iotaPeer.next();
  return { iota, attacker, bystander, iotaPeer, bad, good };
}

/** The bystander still relays both ways, so bad input disturbed nobody else. */
async function stillServes({ iota, bystander, iotaPeer, good }: Awaited<ReturnType<typeof setUp>>, tag: string) {
  good.send({ id: `up-${tag}`, type: "message" });
  expect(await iotaPeer.next()).toMatchObject({ id: `up-${tag}`, sender_id: bystander.id });
  iotaPeer.send({ id: `down-${tag}`, type: "message", receiver_id: bystander.id });
  expect(await good.next()).toMatchObject({ id: `down-${tag}`, sender_id: iota.id });
}

async function expectInvalid(peer: Peer, frame: unknown, id?: string) {
  const reply = await peer.request(frame);
  expect(reply).toMatchObject({ type: "error_invalid_data", log: { log_level: 2 }, data: {}, sender_id: OMIKRON_ID });
  if (id !== undefined) expect(reply.id).toBe(id);
  else expect(reply.id).toMatch(FRESH_ID);
}

describe("bad input on an identified socket (SPEC §2, §9)", () => {
  const invalid: [string, unknown, string | undefined][] = [
    ["invalid JSON", "{not json", undefined],
    ["a JSON array", "[1,2,3]", undefined],
    ["a JSON string", '"hello"', undefined],
    ["a missing type", { id: "t1", data: {} }, "t1"],
    ["a numeric type", { id: "t2", type: 5 }, "t2"],
    ["data that is null", { id: "t3", type: "x", data: null }, "t3"],
    ["data that is an array", { id: "t4", type: "x", data: [] }, "t4"],
    ["a numeric receiver_id", { id: "t5", type: "x", receiver_id: 5 }, "t5"],
    ["a sender_id object", { id: "t6", type: "x", sender_id: {} }, "t6"],
    ["an id that is a number", { id: 7, type: "x" }, undefined],
    ["an id of 129 characters", { id: "i".repeat(129), type: "x" }, undefined],
    ["a 10,000-deep array", `${"[".repeat(10_000)}${"]".repeat(10_000)}`, undefined],
  ];

  for (const [what, frame, id] of invalid) {
    it(`answers ${what} with error_invalid_data and keeps serving everyone`, async () => {
      const setup = await setUp();
      await expectInvalid(setup.bad, frame, id);
      await stillServes(setup, "after");
      expect((await setup.bad.request({ id: "alive", type: "ping", data: {} })).type).toBe("pong");
    });
  }

  it("echoes an id of exactly 128 characters", async () => {
    const setup = await setUp();
    const id = "i".repeat(128);
    expect((await setup.bad.request({ id, type: "ping" })).id).toBe(id);
  });

  it("answers a binary frame with error_invalid_data", async () => {
    const setup = await setUp();
    setup.bad.ws.send(new Uint8Array([1, 2, 3]));
    expect(await setup.bad.next()).toMatchObject({ type: "error_invalid_data", log: { log_level: 2 } });
    await stillServes(setup, "binary");
  });

  it("relays a 10,000-deep array inside data untouched", async () => {
    const setup = await setUp();
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    setup.bad.send(`{"id":"deep","type":"nested","data":{"v":${deep}}}`);
    const relayed = await setup.iotaPeer.nextText();
    expect(relayed.length).toBeGreaterThan(20_000);
    expect(relayed.includes(deep)).toBe(true);
    await stillServes(setup, "deep");
  });

  it("relays unknown types and huge numbers", async () => {
    const setup = await setUp();
    setup.bad.send('{"id":"u","type":"never_heard_of","data":{"n":1e400,"m":-0.0}}');
    const relayed = await setup.iotaPeer.nextText();
    expect(relayed.startsWith('{"id":"u","type":"never_heard_of","data":{"n":1e400,"m":-0.0}')).toBe(true);
  });

  it("answers an over-size frame with error_too_large and closes 1009, leaving others connected", async () => {
    const setup = await setUp();
    setup.bad.send(JSON.stringify({ id: "big", type: "x", data: { blob: "a".repeat(1_048_576) } }));
    const reply = await setup.bad.next();
    expect(reply).toMatchObject({ type: "error_too_large", log: { log_level: 2 }, sender_id: OMIKRON_ID });
    expect(reply.id).not.toBe("big");
    expect((await setup.bad.closed).code).toBe(1009);
    expect(await setup.iotaPeer.next()).toMatchObject({ type: "client_disconnected", data: { user_id: setup.attacker.id } });
    await stillServes(setup, "oversize");
  });

  it("relays a frame of exactly MAX_MESSAGE_BYTES", async () => {
    const setup = await setUp();
    const shell = '{"id":"edge","type":"x","data":{"blob":""}}';
    // Multi-byte characters make the UTF-8 length, not the string length, the one that counts.
    const filler = "é".repeat(1_000) + "a".repeat(1_048_576 - shell.length - 2_000);
    const text = `{"id":"edge","type":"x","data":{"blob":"${filler}"}}`;
    expect(new TextEncoder().encode(text).byteLength).toBe(1_048_576);
    setup.bad.send(text);
    expect(await setup.iotaPeer.nextText()).toBe(`${text.slice(0, -1)},"sender_id":"${setup.attacker.id}"}`);
  });

  it("answers frames from a socket that never identified with nothing at all", async () => {
    const setup = await setUp();
    const stranger = await connect(`/ws/client/${setup.iota.id}`);
    stranger.send("{oops");
    stranger.send({ type: "message", receiver_id: setup.bystander.id });
    stranger.ws.send(new Uint8Array([0]));
    stranger.send("ping");
    expect(await stranger.nextText()).toBe("pong");
    await stillServes(setup, "stranger");
  });
});
