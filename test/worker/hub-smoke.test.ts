import { describe, expect, it } from "vitest";
import { connectClient, connectIota, createIota, createUser, uuid } from "./support";

describe("hub smoke", () => {
  it("relays both ways", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const iotaPeer = await connectIota(iota, [user.id]);
    const client = await connectClient(iota, user);
    expect(await iotaPeer.next()).toMatchObject({ type: "client_connected", data: { user_id: user.id } });
    client.send({ id: "m1", type: "get_chats", data: { x: 1 } });
    const got = await iotaPeer.next();
    expect(got).toEqual({ id: "m1", type: "get_chats", data: { x: 1 }, sender_id: user.id });
    iotaPeer.send({ id: "m2", type: "chats", data: {}, receiver_id: user.id });
    expect(await client.next()).toEqual({ id: "m2", type: "chats", data: {}, receiver_id: user.id, sender_id: iota.id });
    const pong = await client.request({ id: uuid(), type: "ping", data: { last_ping: 12 } });
    expect(pong).toMatchObject({ type: "pong", data: { last_ping: -1 } });
  });
});
