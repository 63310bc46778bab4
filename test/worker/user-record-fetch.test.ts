/**
 * A user record that holds nothing asks the control for the user's r1 record only while the
 * control may still hold r1 records it has not pushed (SPEC §8.1 "fetches them once"); once
 * the control says the migration is over, no call join reaches the control (SPEC §8.1: the
 * control "is never on the path of ... a call join"; §12). The tests run in order: the
 * isolate learns that the migration is over from the second and keeps it.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { callIdentification, refused } from "./calls";
import { type Account, connect, keyHash, sha256Hex, uuid } from "./support";

const control = () => env.BUILTIN_DIRECTORY.get(env.BUILTIN_DIRECTORY.idFromName("directory"));

/** A user only the control knows, as r1 left it: never pushed to its user record. */
async function r1User(): Promise<Account> {
  const user = { id: uuid(), key: keyHash() };
  const digest = await sha256Hex(user.key);
  await runInDurableObject(control(), (_instance, state) => {
    state.storage.sql.exec("INSERT INTO users (user_id, iota_id, key_digest, version) VALUES (?, ?, ?, 0)", user.id, uuid(), digest);
  });
  return user;
}

async function setMigrating(migrating: boolean): Promise<void> {
  await runInDurableObject(control(), (_instance, state) => {
    if (migrating) state.storage.sql.exec("INSERT INTO meta (key, value) VALUES ('migrate', 'users:') ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    else state.storage.sql.exec("DELETE FROM meta WHERE key = 'migrate'");
  });
}

async function join(user: Account) {
  const callId = uuid();
  const peer = await connect(`/ws/call/${callId}`);
  const identification = callIdentification(callId, user);
  return { reply: await peer.request(identification), id: identification.id, peer };
}

describe("a user record with no record of its own", () => {
  it("fetches the user's r1 record from the control while the control migrates", async () => {
    await setMigrating(true);
    const user = await r1User();
    const { reply } = await join(user);
    expect(reply.type).toBe("identification_response");
    expect(reply.data.accepted).toBe(true);
  });

  it("still fetches while a push to a user record waits in the control's outbox", async () => {
    await setMigrating(false);
    const target = uuid();
    const state = JSON.stringify({ iota_id: null, digest: null, version: 1, revoke: false });
    await runInDurableObject(control(), (_instance, storage) => {
      storage.storage.sql.exec("INSERT INTO outbox (kind, target, payload, due) VALUES ('user', ?, ?, ?)", target, state, Date.now() + 3_600_000);
    });
    // Two users: the first one's answer must not have told the isolate the migration is over.
    for (const user of [await r1User(), await r1User()]) expect((await join(user)).reply.data.accepted).toBe(true);
    await runInDurableObject(control(), (_instance, storage) => {
      storage.storage.sql.exec("DELETE FROM outbox WHERE target = ?", target);
    });
  });

  it("asks once more when the migration is over, and hears so", async () => {
    const user = await r1User();
    expect((await join(user)).reply.data.accepted).toBe(true);
  });

  it("then asks the control nothing: a record only the control holds is not found", async () => {
    const user = await r1User();
    const { reply, id, peer } = await join(user);
    expect(reply).toEqual(refused(id));
    expect((await peer.closed).code).toBe(4003);
  });
});
