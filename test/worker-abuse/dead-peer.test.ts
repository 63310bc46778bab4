/**
 * Attack: dead peers stay online (issue 10). A client whose machine vanished with its TCP
 * connection up was never noticed. Now an identified socket silent for IDLE_TIMEOUT_MS (1.2 s
 * in this project) is closed 1001 "idle" from the alarm, with the usual departure pushes;
 * literal `ping` keep-alives, answered by the runtime without waking the object, count as
 * traffic (SPEC §9 r2).
 */
import { describe, expect, it } from "vitest";
import { createIota, createUser, fromOmikron } from "../worker/support";
import { identifiedClient, identifiedIota, sleep } from "./attack";

const IDLE_TIMEOUT_MS = 1_200;

describe("idle timeout (SPEC §9 r2)", () => {
  it("closes a silent client 1001 idle and tells its Iota it left", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await identifiedIota(iota, [alice.id]);
    const client = await identifiedClient(iota, alice);
    expect(await iotaPeer.next()).toMatchObject({ type: "client_connected" });
    // The Iota keeps talking, so only the client is silent.
    const talking = setInterval(() => iotaPeer.send({ id: "keep", type: "ping" }), 200);
    try {
      expect(await client.closed).toEqual({ code: 1001, reason: "idle" });
      for (;;) {
        const frame = await iotaPeer.next();
        if (frame.type === "pong") continue;
        expect(frame).toEqual(fromOmikron("client_disconnected", { user_id: alice.id }, 0));
        break;
      }
    } finally {
      clearInterval(talking);
    }
  });

  it("keeps a client that sends only literal ping keep-alives", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await identifiedIota(iota, [alice.id]);
    const client = await identifiedClient(iota, alice);
    await iotaPeer.next();
    let closed = false;
    void client.closed.then(() => (closed = true));
    for (let waited = 0; waited < 3 * IDLE_TIMEOUT_MS; waited += 200) {
      client.send("ping");
      expect(await client.nextText()).toBe("pong");
      iotaPeer.send("ping");
      expect(await iotaPeer.nextText()).toBe("pong");
      await sleep(200);
    }
    expect(closed).toBe(false);
    expect(await client.request({ id: "alive", type: "ping" })).toMatchObject({ id: "alive", type: "pong" });
  });

  it("closes a silent Iota 1001 and tells its clients", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await identifiedIota(iota, [alice.id]);
    const client = await identifiedClient(iota, alice);
    const talking = setInterval(() => client.send("ping"), 200);
    try {
      expect(await iotaPeer.closed).toEqual({ code: 1001, reason: "idle" });
      for (;;) {
        const text = await client.nextText();
        if (text === "pong") continue;
        expect(JSON.parse(text)).toEqual(fromOmikron("iota_disconnected", { iota_id: iota.id }, 0));
        break;
      }
    } finally {
      clearInterval(talking);
    }
  });
});
