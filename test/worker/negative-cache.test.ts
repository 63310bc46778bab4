/**
 * The negative cache of owner lookups (SPEC §5.2 r2): a hub remembers "unknown user" for up
 * to 60 s, and forgets it at once when the directory creates that user, even when the user's
 * record object was evicted in between (it holds no socket, so it is evicted long before).
 */
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { adminFetch, connectIota, createIota, createUser, errorReply, keyHash, uuid } from "./support";

describe("negative cache (SPEC §5.2 r2)", () => {
  it("forgets a remembered unknown receiver when the user is created, after the user's record was evicted", async () => {
    const iota = await createIota();
    const sender = await createUser(iota);
    const other = await createIota();
    const iotaPeer = await connectIota(iota, [sender.id]);
    const otherPeer = await connectIota(other, []);
    const receiver = uuid();
    const frame = () => ({ id: uuid(), type: "message_send", data: {}, receiver_id: receiver, sender_id: sender.id });
    const first = frame();
    expect(await iotaPeer.request(first)).toEqual(errorReply("error_invalid_user_id", first.id, 2, { receiver_id: receiver }));
    await evictDurableObject(env.USER_RECORD.get(env.USER_RECORD.idFromName(receiver)));
    const created = await adminFetch(`/users/${receiver}`, "PUT", { iota_id: other.id, private_key_hash: keyHash() });
    expect(created.status).toBe(201);
    const text = JSON.stringify(frame());
    iotaPeer.send(text);
    expect(await otherPeer.nextText()).toBe(text);
  });
});
