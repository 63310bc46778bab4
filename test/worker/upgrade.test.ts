/**
 * Upgrading an r1 deployment (issue 8, SPEC §8.1): r1 kept every record in the one
 * directory object. Its records reach the hubs and user records by the control's outbox on
 * its first wake, and a hub from r1 fetches its records once when a peer identifies.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { callIdentification } from "./calls";
import { type Account, clientIdentification, connect, connectIota, createIota, createUser, errorReply, iotaIdentification, keyHash, sha256Hex, uuid } from "./support";

const account = (): Account => ({ id: uuid(), key: keyHash() });

async function identifies(iota: Account, user: Account): Promise<[string, unknown]> {
  const iotaPeer = await connect(`/ws/iota/${iota.id}`);
  const iotaReply = await iotaPeer.request(iotaIdentification(iota, [user.id]));
  const client = await connect(`/ws/client/${iota.id}`);
  const clientReply = await client.request(clientIdentification(iota, user));
  return [iotaReply.type === "identification_response" ? String(iotaReply.data.accepted_profiles) : iotaReply.type, clientReply.data.accepted];
}

describe("upgrading from r1", () => {
  it("a control object holding r1 records pushes them to hubs and user records on its first wake", async () => {
    const iota = account();
    const user = account();
    // A control of its own, laid out as r1 left it: records without versions, call
    // memberships in the control, no outbox.
    const control = env.BUILTIN_DIRECTORY.get(env.BUILTIN_DIRECTORY.idFromName(`r1-${uuid()}`));
    const r1Iota = await sha256Hex(iota.key);
    const r1User = await sha256Hex(user.key);
    await runInDurableObject(control, (_instance, state) => {
      state.storage.sql.exec(`
        DROP TABLE iotas; DROP TABLE users; DROP TABLE outbox; DROP TABLE meta;
        CREATE TABLE iotas (iota_id TEXT PRIMARY KEY, key_digest TEXT NOT NULL);
        CREATE TABLE users (user_id TEXT PRIMARY KEY, iota_id TEXT, key_digest TEXT NOT NULL);
        CREATE INDEX users_by_iota ON users (iota_id);
        CREATE TABLE call_sockets (user_id TEXT NOT NULL, call_id TEXT NOT NULL, socket_id TEXT NOT NULL, PRIMARY KEY (user_id, call_id, socket_id));
      `);
      state.storage.sql.exec("INSERT INTO iotas VALUES (?, ?)", iota.id, r1Iota);
      state.storage.sql.exec("INSERT INTO users VALUES (?, ?, ?)", user.id, iota.id, r1User);
    });
    // Before the migration, another hub looking the user up hears "unknown"; the lookup
    // does not reach the control.
    const sender = await createIota();
    const senderUser = await createUser(sender);
    const senderPeer = await connectIota(sender, [senderUser.id]);
    const early = { id: uuid(), type: "message_send", data: {}, receiver_id: user.id, sender_id: senderUser.id };
    expect(await senderPeer.request(early)).toEqual(errorReply("error_invalid_user_id", early.id, 2, { receiver_id: user.id }));
    await evictDurableObject(control);
    // The first wake after the deploy upgrades the schema and queues the migration.
    const tables = await runInDurableObject(control, (_instance, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").toArray().map((row) => row.name),
    );
    expect(tables).toContain("outbox");
    expect(tables).not.toContain("call_sockets");
    while (await runDurableObjectAlarm(control));
    expect(await identifies(iota, user)).toEqual([`${user.id},`, true]);
    // The migration's push told the hub that asked: its "unknown" is forgotten at once.
    const iotaPeer = await connect(`/ws/iota/${iota.id}`);
    expect((await iotaPeer.request(iotaIdentification(iota, []))).type).toBe("identification_response");
    // The client connected by `identifies` is online: the new Iota socket hears of it first.
    expect(await iotaPeer.next()).toMatchObject({ type: "client_connected", data: { user_id: user.id } });
    const late = JSON.stringify({ id: uuid(), type: "message_send", data: {}, receiver_id: user.id, sender_id: senderUser.id });
    senderPeer.send(late);
    expect(await iotaPeer.nextText()).toBe(late);
    // The user record has it too, so the user can join a call.
    const callId = uuid();
    const member = await connect(`/ws/call/${callId}`);
    expect((await member.request(callIdentification(callId, user))).data.accepted).toBe(true);
  });

  it("a hub from r1 with no records fetches them once from the control", async () => {
    const iota = account();
    const user = account();
    // r1 records, only in the deployment's control, never pushed anywhere.
    const control = env.BUILTIN_DIRECTORY.get(env.BUILTIN_DIRECTORY.idFromName("directory"));
    const iotaDigest = await sha256Hex(iota.key);
    const userDigest = await sha256Hex(user.key);
    await runInDurableObject(control, (_instance, state) => {
      state.storage.sql.exec("INSERT INTO iotas (iota_id, key_digest, version) VALUES (?, ?, 0)", iota.id, iotaDigest);
      state.storage.sql.exec("INSERT INTO users (user_id, iota_id, key_digest, version) VALUES (?, ?, ?, 0)", user.id, iota.id, userDigest);
    });
    // The r1 hub's constructor made this table, so a hub with it is one from r1.
    const hub = env.HUB.get(env.HUB.idFromName(iota.id));
    await runInDurableObject(hub, (_instance, state) => {
      state.storage.sql.exec("CREATE TABLE users (user_id TEXT PRIMARY KEY)");
    });
    await evictDurableObject(hub);
    expect(await identifies(iota, user)).toEqual([`${user.id},`, true]);
    const tables = await runInDurableObject(hub, (_instance, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").toArray().map((row) => row.name),
    );
    expect(tables).toEqual(expect.arrayContaining(["record_iota", "record_users"]));
    expect(tables).not.toContain("users");
  });
});
