/**
 * SPEC §2 r2: an envelope with a repeated top-level key is invalid (`error_invalid_data`,
 * not relayed), on hub and call sockets alike, whichever way the key is spelled; keys inside
 * `data` are not checked. Parsers disagree on which duplicate wins, so relaying one would let a
 * sender show the Omikron one `sender_id` and the receiver another.
 */
import { describe, expect, it } from "vitest";
import { callOfThree, expectNothingElse, invalidData } from "./calls";
import { type Peer, clientIdentification, connect, connectClient, connectIota, createIota, createUser, errorReply, fromOmikron } from "./support";

async function hub() {
  const iota = await createIota();
  const user = await createUser(iota);
  const victim = await createUser(iota);
  const iotaPeer = await connectIota(iota, [user.id, victim.id]);
  const client = await connectClient(iota, user);
  const victimPeer = await connectClient(iota, victim);
  expect((await iotaPeer.next()).type).toBe("client_connected");
  expect((await iotaPeer.next()).type).toBe("client_connected");
  return { iota, user, victim, iotaPeer, client, victimPeer };
}

/** The next frame `receiver` gets is `marker`, so the refused frame before it was not relayed. */
async function nextIsMarker(sender: Peer, receiver: Peer, marker: Record<string, unknown>): Promise<void> {
  sender.send(marker);
  expect(await receiver.next()).toMatchObject({ id: marker.id });
}

describe("repeated top-level keys on a hub (SPEC §2 r2)", () => {
  it("refuses a client frame naming sender_id twice, and relays nothing of it", async () => {
    const { user, victim, iotaPeer, client } = await hub();
    const spoof = `{"id":"dup-1","type":"message","sender_id":"${victim.id}","sender_id":"${user.id}","data":{}}`;
    expect(JSON.parse(spoof)).toMatchObject({ sender_id: user.id });
    expect(await client.request(spoof)).toEqual(errorReply("error_invalid_data", "dup-1", 2, {}));
    await nextIsMarker(client, iotaPeer, { id: "after-1", type: "message" });
  });

  it("compares decoded key names: an escaped sender_id repeats the plain one", async () => {
    const { victim, iotaPeer, client } = await hub();
    const spoof = `{"id":"dup-2","type":"message","sender\\u005fid":"${victim.id}","sender_id":"${victim.id}"}`;
    expect(await client.request(spoof)).toEqual(errorReply("error_invalid_data", "dup-2", 2, {}));
    await nextIsMarker(client, iotaPeer, { id: "after-2", type: "message" });
  });

  it("refuses an Iota frame naming receiver_id twice, delivering it to neither receiver", async () => {
    const { user, victim, iotaPeer, client, victimPeer } = await hub();
    const split = `{"id":"dup-3","type":"message","receiver_id":"${user.id}","receiver_id":"${victim.id}"}`;
    expect(await iotaPeer.request(split)).toEqual(errorReply("error_invalid_data", "dup-3", 2, {}));
    await nextIsMarker(iotaPeer, client, { id: "after-3a", type: "message", receiver_id: user.id });
    await nextIsMarker(iotaPeer, victimPeer, { id: "after-3b", type: "message", receiver_id: victim.id });
  });

  it("refuses a repeated type or unknown key, and gives no id to a frame that writes id twice", async () => {
    const { client } = await hub();
    expect(await client.request('{"id":"dup-4","type":"message","type":"ping"}')).toEqual(errorReply("error_invalid_data", "dup-4", 2, {}));
    expect(await client.request('{"id":"dup-5","type":"message","x":1,"x":1}')).toEqual(errorReply("error_invalid_data", "dup-5", 2, {}));
    expect(await client.request('{"id":"a","type":"message","id":"b"}')).toEqual(fromOmikron("error_invalid_data", {}, 2));
  });

  it("relays repeated keys inside data untouched", async () => {
    const { user, iotaPeer, client } = await hub();
    const text = '{"id":"in-data","type":"message","data":{"k":1,"k":2,"n":{"j":[1],"j":[2]}}}';
    client.send(text);
    expect(await iotaPeer.nextText()).toBe(`${text.slice(0, -1)},"sender_id":"${user.id}"}`);
  });

  it("refuses an identification with a repeated key like an ill-typed attempt (SPEC §4)", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const peer = await connect(`/ws/client/${iota.id}`);
    const request = clientIdentification(iota, user, "dup-id");
    const text = JSON.stringify(request).replace('"data":', `"data":${JSON.stringify(request.data)},"data":`);
    expect(await peer.request(text)).toEqual(
      fromOmikron("identification_response", { acceppted: false, accepted: false }, 2, "dup-id"),
    );
    expect((await peer.closed).code).toBe(4003);
  });
});

describe("repeated top-level keys in a call (SPEC §2 r2, §7)", () => {
  it("refuses a broadcast naming sender_id twice, and no member receives it", async () => {
    const { members } = await callOfThree();
    const [a, b, c] = members;
    const spoof = `{"id":"dup-call","type":"webrtc_sdp","sender_id":"${b.user.id}","sender\\u005Fid":"${a.user.id}","data":{}}`;
    expect(await a.peer.request(spoof)).toEqual(invalidData("dup-call"));
    await expectNothingElse(b.peer);
    await expectNothingElse(c.peer);
  });

  it("refuses a direct message naming receiver_id twice", async () => {
    const { members } = await callOfThree();
    const [a, b, c] = members;
    const split = `{"id":"dup-direct","type":"webrtc_ice","receiver_id":"${b.user.id}","receiver_id":"${c.user.id}"}`;
    expect(await a.peer.request(split)).toEqual(invalidData("dup-direct"));
    await expectNothingElse(b.peer);
    await expectNothingElse(c.peer);
  });
});
