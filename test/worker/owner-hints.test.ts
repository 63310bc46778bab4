import { describe, expect, it } from "vitest";
import { adminFetch, connectIota, createIota, createUser, errorReply, uuid } from "./support";

describe("a hub's remembered owners never outlive a directory change (SPEC §8.1, §8.2)", () => {
  it("a deleted user its Iota once addressed is no longer one the Iota may address", async () => {
    const iota = await createIota();
    const iotaPeer = await connectIota(iota, []);
    // Created after identification, so the hub learns its owner by asking the directory.
    const user = await createUser(iota);
    const first = uuid();
    iotaPeer.send({ id: first, type: "message_live", data: {}, receiver_id: user.id });
    expect(await iotaPeer.next()).toEqual(errorReply("error_user_offline", first, 1, { receiver_id: user.id }));
    expect((await adminFetch(`/users/${user.id}`, "DELETE")).status).toBe(204);
    const id = uuid();
    iotaPeer.send({ id, type: "message_live", data: {}, receiver_id: user.id });
    expect(await iotaPeer.next()).toEqual(errorReply("error_invalid_user_id", id, 2, { receiver_id: user.id }));
  });

  it("a user moved away after its old Iota addressed it is reached through its new Iota", async () => {
    const from = await createIota();
    const to = await createIota();
    const stays = await createUser(from);
    const fromPeer = await connectIota(from, [stays.id]);
    const toPeer = await connectIota(to, []);
    const user = await createUser(from);
    const first = uuid();
    fromPeer.send({ id: first, type: "message_live", data: {}, receiver_id: user.id });
    expect(await fromPeer.next()).toEqual(errorReply("error_user_offline", first, 1, { receiver_id: user.id }));
    expect((await adminFetch(`/users/${user.id}`, "PUT", { iota_id: to.id, private_key_hash: user.key })).status).toBe(200);
    const text = JSON.stringify({ id: uuid(), type: "message_send", data: {}, receiver_id: user.id, sender_id: stays.id });
    fromPeer.send(text);
    expect(await toPeer.nextText()).toBe(text);
  });

  it("a user moved in after the Iota forwarded to it elsewhere is served as the Iota's own", async () => {
    const from = await createIota();
    const to = await createIota();
    const sender = await createUser(to);
    const user = await createUser(from);
    const toPeer = await connectIota(to, [sender.id]);
    const first = uuid();
    // The receiver's Iota is offline; the hub still remembers who owns the receiver.
    toPeer.send({ id: first, type: "message_send", data: {}, receiver_id: user.id, sender_id: sender.id });
    expect(await toPeer.next()).toEqual(errorReply("error_no_iota", first, 1, { receiver_id: user.id }));
    expect((await adminFetch(`/users/${user.id}`, "PUT", { iota_id: to.id, private_key_hash: user.key })).status).toBe(200);
    // Same-hub traffic (SPEC §5.2) carries no sender_id; the user is now this Iota's own.
    const id = uuid();
    toPeer.send({ id, type: "chats", data: {}, receiver_id: user.id });
    expect(await toPeer.next()).toEqual(errorReply("error_user_offline", id, 1, { receiver_id: user.id }));
  });
});
