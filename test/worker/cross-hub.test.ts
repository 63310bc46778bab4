import { describe, expect, it } from "vitest";
import {
  type Account,
  type Peer,
  adminFetch,
  connectClient,
  connectIota,
  createIota,
  createUser,
  errorReply,
  uuid,
} from "./support";

/** An Iota with one user, both connected, the Iota's client_connected already read. */
interface Side {
  iota: Account;
  user: Account;
  iotaPeer: Peer;
  client: Peer;
}

async function side(): Promise<Side> {
  const iota = await createIota();
  const user = await createUser(iota);
  const iotaPeer = await connectIota(iota, [user.id]);
  const client = await connectClient(iota, user);
  expect(await iotaPeer.next()).toMatchObject({ type: "client_connected", data: { user_id: user.id } });
  return { iota, user, iotaPeer, client };
}

/**
 * A message one Iota writes for another Iota's user. Written without whitespace, so a relay
 * that changes nothing (SPEC §2, §5.3: key order and unknown fields kept, sender_id as sent)
 * must hand on this very text.
 */
function crossMessage(receiverId: string, senderId: string | undefined, id = uuid()): string {
  return JSON.stringify({
    id,
    type: "message_send",
    log: { message: "sending", log_level: 0 },
    data: { chat_id: "c-1", content: "hi", nested: { list: [1, 2.5, "x"], none: null } },
    receiver_id: receiverId,
    ...(senderId === undefined ? {} : { sender_id: senderId }),
    unknown_field: { kept: true },
  });
}

/**
 * Proves a client received nothing so far: its Iota writes to it now, and that must be the
 * next frame the client reads.
 */
async function expectClientQuiet(s: Side): Promise<void> {
  const id = uuid();
  s.iotaPeer.send({ id, type: "marker", data: {}, receiver_id: s.user.id });
  expect(await s.client.next()).toEqual({ id, type: "marker", data: {}, receiver_id: s.user.id, sender_id: s.iota.id });
}

/** Proves a socket received nothing so far: a ping's pong must be the next frame. */
async function expectQuiet(peer: Peer): Promise<void> {
  const id = uuid();
  expect(await peer.request({ id, type: "ping", data: {} })).toMatchObject({ id, type: "pong" });
}

describe("cross-hub relay between Iotas (SPEC §5.3)", () => {
  it("delivers an Iota's message to the receiver's Iota exactly as sent, sender_id included", async () => {
    const a = await side();
    const b = await side();
    const text = crossMessage(b.user.id, a.user.id);
    a.iotaPeer.send(text);
    expect(await b.iotaPeer.nextText()).toBe(text);
    await expectQuiet(a.iotaPeer);
  });

  it("does not deliver a cross-hub message to the receiving user's clients", async () => {
    const a = await side();
    const b = await side();
    const text = crossMessage(b.user.id, a.user.id);
    a.iotaPeer.send(text);
    expect(await b.iotaPeer.nextText()).toBe(text);
    await expectClientQuiet(b);
  });

  it("carries the receiving Iota's answer back to the first Iota the same way", async () => {
    const a = await side();
    const b = await side();
    a.iotaPeer.send(crossMessage(b.user.id, a.user.id));
    await b.iotaPeer.next();
    const answer = crossMessage(a.user.id, b.user.id);
    b.iotaPeer.send(answer);
    expect(await a.iotaPeer.nextText()).toBe(answer);
    await expectClientQuiet(a);
  });

  it("accepts a sender the directory records under the Iota even if it was not listed at identification", async () => {
    const a = await createIota();
    const aUser = await createUser(a);
    const aPeer = await connectIota(a, []);
    const b = await side();
    const text = crossMessage(b.user.id, aUser.id);
    aPeer.send(text);
    expect(await b.iotaPeer.nextText()).toBe(text);
  });

  it("forwards a sender_id written in upper case lower-cased, the frame otherwise unchanged (SPEC §5.3 r2)", async () => {
    const a = await side();
    const b = await side();
    const upper = a.user.id.toUpperCase();
    expect(upper).not.toBe(a.user.id);
    const text = crossMessage(b.user.id, upper);
    a.iotaPeer.send(text);
    expect(await b.iotaPeer.nextText()).toBe(text.replace(`"sender_id":"${upper}"`, `"sender_id":"${a.user.id}"`));
    await expectQuiet(a.iotaPeer);
  });

  it("routes a receiver_id written in upper case to the user's Iota", async () => {
    const a = await side();
    const b = await side();
    const text = crossMessage(b.user.id.toUpperCase(), a.user.id);
    a.iotaPeer.send(text);
    expect(await b.iotaPeer.nextText()).toBe(text);
  });

  it("keeps the order of one sender's messages to one receiver", async () => {
    const a = await side();
    const b = await side();
    const texts = Array.from({ length: 8 }, (_, n) => crossMessage(b.user.id, a.user.id, `m-${n}`));
    for (const text of texts) a.iotaPeer.send(text);
    const received: string[] = [];
    for (const _ of texts) received.push(await b.iotaPeer.nextText());
    expect(received).toEqual(texts);
  });

  it("keeps relaying to the Iota's own clients, in order, between cross-hub messages", async () => {
    const a = await side();
    const b = await side();
    const cross: string[] = [];
    const local: string[] = [];
    for (let n = 0; n < 5; n++) {
      const text = crossMessage(b.user.id, a.user.id, `cross-${n}`);
      cross.push(text);
      a.iotaPeer.send(text);
      local.push(`local-${n}`);
      a.iotaPeer.send({ id: `local-${n}`, type: "message_live", data: { n }, receiver_id: a.user.id });
    }
    const atClient: string[] = [];
    for (const _ of local) atClient.push((await a.client.next()).id);
    expect(atClient).toEqual(local);
    const atB: string[] = [];
    for (const _ of cross) atB.push(await b.iotaPeer.nextText());
    expect(atB).toEqual(cross);
  });

  it("follows a user moved to another Iota instead of a cached owner", async () => {
    const a = await side();
    const b = await side();
    const c = await side();
    const moving = await createUser(b.iota);
    const before = crossMessage(moving.id, a.user.id);
    a.iotaPeer.send(before);
    expect(await b.iotaPeer.nextText()).toBe(before);

    const moved = await adminFetch(`/users/${moving.id}`, "PUT", { iota_id: c.iota.id, private_key_hash: moving.key });
    expect(moved.status).toBe(200);
    const after = crossMessage(moving.id, a.user.id);
    a.iotaPeer.send(after);
    expect(await c.iotaPeer.nextText()).toBe(after);
    // B must not have had the message first: A's next message to B's own user is B's next frame.
    const toB = crossMessage(b.user.id, a.user.id);
    a.iotaPeer.send(toB);
    expect(await b.iotaPeer.nextText()).toBe(toB);
  });
});

describe("cross-hub authority (SPEC §5.3)", () => {
  const badSenders: [string, (ctx: { b: Side; third: Account }) => string | undefined][] = [
    ["sender_id is missing", () => undefined],
    ["sender_id is not a UUID", () => "not-a-uuid"],
    ["sender_id is a user of the receiving Iota", ({ b }) => b.user.id],
    ["sender_id is a user of a third Iota", ({ third }) => third.id],
    ["sender_id is unknown to the directory", () => uuid()],
  ];

  for (const [what, senderOf] of badSenders) {
    it(`refuses with error_invalid_user_id and relays nothing when ${what}`, async () => {
      const a = await side();
      const b = await side();
      const third = await createUser(await createIota());
      const id = uuid();
      a.iotaPeer.send(crossMessage(b.user.id, senderOf({ b, third }), id));
      expect(await a.iotaPeer.next()).toEqual(errorReply("error_invalid_user_id", id, 2, { receiver_id: b.user.id }));
      // B's next frame is a later, valid message: the refused one never reached it.
      const valid = crossMessage(b.user.id, a.user.id);
      a.iotaPeer.send(valid);
      expect(await b.iotaPeer.nextText()).toBe(valid);
    });
  }

  it("refuses a sender moved to another Iota after it was accepted at identification", async () => {
    const a = await createIota();
    const moving = await createUser(a);
    const aPeer = await connectIota(a, [moving.id]);
    const b = await side();
    const elsewhere = await createIota();
    const moved = await adminFetch(`/users/${moving.id}`, "PUT", { iota_id: elsewhere.id, private_key_hash: moving.key });
    expect(moved.status).toBe(200);
    const id = uuid();
    aPeer.send(crossMessage(b.user.id, moving.id, id));
    expect(await aPeer.next()).toEqual(errorReply("error_invalid_user_id", id, 2, { receiver_id: b.user.id }));
  });

  it("refuses a sender deleted after it was accepted at identification", async () => {
    const a = await createIota();
    const deleted = await createUser(a);
    const aPeer = await connectIota(a, [deleted.id]);
    const b = await side();
    expect((await adminFetch(`/users/${deleted.id}`, "DELETE")).status).toBe(204);
    const id = uuid();
    aPeer.send(crossMessage(b.user.id, deleted.id, id));
    expect(await aPeer.next()).toEqual(errorReply("error_invalid_user_id", id, 2, { receiver_id: b.user.id }));
  });

  it("refuses a receiver the directory does not know with error_invalid_user_id", async () => {
    const a = await side();
    const stranger = uuid();
    const id = uuid();
    a.iotaPeer.send(crossMessage(stranger, a.user.id, id));
    expect(await a.iotaPeer.next()).toEqual(errorReply("error_invalid_user_id", id, 2, { receiver_id: stranger }));
  });

  it("refuses a receiver whose Iota was deleted with error_invalid_user_id", async () => {
    const a = await side();
    const gone = await createIota();
    const orphan = await createUser(gone);
    expect((await adminFetch(`/iotas/${gone.id}`, "DELETE")).status).toBe(204);
    const id = uuid();
    a.iotaPeer.send(crossMessage(orphan.id, a.user.id, id));
    expect(await a.iotaPeer.next()).toEqual(errorReply("error_invalid_user_id", id, 2, { receiver_id: orphan.id }));
  });

  it("refuses a receiver whose Iota was deleted after a message already reached it", async () => {
    const a = await side();
    const c = await side();
    const first = crossMessage(c.user.id, a.user.id);
    a.iotaPeer.send(first);
    expect(await c.iotaPeer.nextText()).toBe(first);
    expect((await adminFetch(`/iotas/${c.iota.id}`, "DELETE")).status).toBe(204);
    const id = uuid();
    a.iotaPeer.send(crossMessage(c.user.id, a.user.id, id));
    expect(await a.iotaPeer.next()).toEqual(errorReply("error_invalid_user_id", id, 2, { receiver_id: c.user.id }));
  });

  it("answers error_no_iota when the receiver's Iota never connected", async () => {
    const a = await side();
    const offline = await createIota();
    const receiver = await createUser(offline);
    const id = uuid();
    a.iotaPeer.send(crossMessage(receiver.id, a.user.id, id));
    expect(await a.iotaPeer.next()).toEqual(errorReply("error_no_iota", id, 1, { receiver_id: receiver.id }));
  });

  it("answers error_no_iota when the receiver's Iota has disconnected", async () => {
    const a = await side();
    const b = await side();
    const first = crossMessage(b.user.id, a.user.id);
    a.iotaPeer.send(first);
    expect(await b.iotaPeer.nextText()).toBe(first);
    b.iotaPeer.close();
    await b.iotaPeer.closed;
    const id = uuid();
    a.iotaPeer.send(crossMessage(b.user.id, a.user.id, id));
    expect(await a.iotaPeer.next()).toEqual(errorReply("error_no_iota", id, 1, { receiver_id: b.user.id }));
  });
});
