/** The admin commands (records, listings, presence, calls) against a real local relay: output, --json and exit codes. */
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectClient, connectIota, joinCall } from "../../src/peer/index.ts";
import { type LocalRelay, envOf, run, startLocalRelay, uuid } from "./support.ts";

let relay: LocalRelay;
let env: Record<string, string>;

beforeAll(async () => {
  relay = await startLocalRelay();
  env = envOf(relay);
});
afterAll(() => relay?.stop());

const HASH = /^[0-9a-f]{64}$/;

describe("iota and user records", () => {
  it("creates an Iota with a generated key, replaces it, and shows it with its users", async () => {
    const added = await run(["iota", "add", "--json"], { env });
    expect(added.code).toBe(0);
    const iota = added.json() as { iota_id: string; users: string[]; created: boolean; private_key: string; private_key_hash: string };
    expect(iota).toMatchObject({ users: [], created: true });
    expect(iota.private_key_hash).toMatch(HASH);
    expect(Buffer.from(iota.private_key, "base64")).toHaveLength(32);

    const replaced = await run(["iota", "add", iota.iota_id.toUpperCase(), "--key-hash", "ab".repeat(32), "--json"], { env });
    expect(replaced.code).toBe(0);
    // A given hash is the caller's: it is not printed back.
    expect(replaced.json()).toEqual({ iota_id: iota.iota_id, users: [], created: false });

    const user = await run(["user", "add", "--iota", iota.iota_id, "--private-key", "a private key", "--json"], { env });
    expect(user.code).toBe(0);
    const userId = (user.json() as { user_id: string }).user_id;
    expect(user.json()).toEqual({ user_id: userId, iota_id: iota.iota_id, created: true });

    const shown = await run(["iota", "show", iota.iota_id, "--json"], { env });
    expect(shown.code).toBe(0);
    expect(shown.json()).toEqual({ iota_id: iota.iota_id, users: [userId] });
    const human = await run(["iota", "show", iota.iota_id], { env });
    expect(human.stdout).toEqual([`iota ${iota.iota_id}`, `users: ${userId}`]);

    expect((await run(["user", "show", userId, "--json"], { env })).json()).toEqual({ user_id: userId, iota_id: iota.iota_id });
  });

  it("removes records, and then answers exit 1 not_found for them", async () => {
    const iotaId = uuid();
    const userId = uuid();
    expect((await run(["iota", "add", iotaId], { env })).code).toBe(0);
    expect((await run(["user", "add", userId, "--iota", iotaId], { env })).code).toBe(0);

    const userRm = await run(["user", "rm", userId, "--json"], { env });
    expect(userRm.code).toBe(0);
    expect(userRm.json()).toEqual({ user_id: userId, removed: true });
    const gone = await run(["user", "show", userId, "--json"], { env });
    expect(gone.code).toBe(1);
    expect(gone.stdout).toEqual([]);
    expect(JSON.parse(gone.stderr[0] ?? "")).toMatchObject({ error: "not_found" });

    expect((await run(["iota", "rm", iotaId], { env })).stdout).toEqual([`removed iota ${iotaId}`]);
    expect((await run(["iota", "rm", iotaId], { env })).code).toBe(1);
    expect((await run(["iota", "show", iotaId], { env })).code).toBe(1);
  });

  it("answers exit 1 iota_not_found for a user of an Iota that does not exist", async () => {
    const result = await run(["user", "add", "--iota", uuid(), "--json"], { env });
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stderr[0] ?? "")).toMatchObject({ error: "iota_not_found" });
  });
});

describe("exit codes", () => {
  it("answers 2 for a malformed command line, before sending anything", async () => {
    const cases = [
      ["iota", "show", "not-a-uuid"],
      ["iota", "show", "22222222-2222-2222-2222-222222222222"],
      ["iota", "add", "--key-hash", "abc"],
      ["iota", "add", "--key-hash", "ab".repeat(32), "--private-key", "x"],
      ["iota", "show"],
      ["iota", "show", uuid(), uuid()],
      ["iota", "show", uuid(), "--bogus"],
      ["user", "add"],
      ["user", "ls", "--limit", "0"],
      ["user", "ls", "--limit", "1001"],
      ["iota", "frobnicate"],
      [],
    ];
    // Pointed at a port nobody listens on: a command that sent anything would answer 3.
    const nowhere = { ...env, OMIKRON_URL: "http://127.0.0.1:9" };
    for (const argv of cases) expect({ argv, code: (await run(argv, { env: nowhere })).code }).toEqual({ argv, code: 2 });
    const noToken = await run(["iota", "show", uuid()], { env: { OMIKRON_URL: relay.url } });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr[0]).toMatch(/OMIKRON_ADMIN_TOKEN/);
  });

  it("answers 3 for a wrong token and for a relay that cannot be reached", async () => {
    const wrong = await run(["iota", "show", uuid(), "--token", "x".repeat(40), "--json"], { env });
    expect(wrong.code).toBe(3);
    expect(JSON.parse(wrong.stderr[0] ?? "")).toMatchObject({ error: "unauthorized" });
    const unreachable = await run(["iota", "show", uuid(), "--url", "http://127.0.0.1:9"], { env });
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr[0]).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);
  });

  it("answers 0 for --help on every command and prints its usage", async () => {
    for (const argv of [["--help"], ["iota", "--help"], ["iota", "add", "--help"], ["user", "ls", "-h"], ["keygen", "--help"]]) {
      const result = await run(argv, { env });
      expect(result.code).toBe(0);
      expect(result.stdout.join("\n")).toMatch(/^Usage: omikron /);
    }
  });

  it("sets the process exit code and keeps stdout empty on failure when run as a process", () => {
    const child = spawnSync(process.execPath, ["src/cli/bin.ts", "iota", "show", uuid(), "--json"], {
      env: { ...process.env, ...env },
      encoding: "utf8",
    });
    expect(child.status).toBe(1);
    expect(child.stdout).toBe("");
    expect(JSON.parse(child.stderr)).toMatchObject({ error: "not_found" });
  });
});

describe("listings", () => {
  it("pages through Iotas with --limit and --cursor, or all of them with --all, in id order", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(((await run(["iota", "add", "--json"], { env })).json() as { iota_id: string }).iota_id);
    const all = (await run(["iota", "ls", "--all", "--limit", "2", "--json"], { env })).json() as {
      iotas: { iota_id: string; users: number }[];
      next_cursor: string | null;
    };
    const listed = all.iotas.map((iota) => iota.iota_id);
    expect(all.next_cursor).toBeNull();
    expect(listed).toEqual([...listed].sort());
    expect(listed).toEqual(expect.arrayContaining(ids));

    const first = (await run(["iota", "ls", "--limit", "2", "--json"], { env })).json() as typeof all;
    expect(first.iotas).toEqual(all.iotas.slice(0, 2));
    expect(first.next_cursor).toEqual(expect.any(String));
    const second = (await run(["iota", "ls", "--limit", "2", "--cursor", first.next_cursor ?? "", "--json"], { env })).json() as typeof all;
    expect(second.iotas).toEqual(all.iotas.slice(2, 4));
    const human = await run(["iota", "ls", "--limit", "2"], { env });
    expect(human.stdout.at(-1)).toBe(`more: --cursor ${first.next_cursor} (or --all)`);
  });

  it("lists the users of one Iota with --iota", async () => {
    const iotaId = ((await run(["iota", "add", "--json"], { env })).json() as { iota_id: string }).iota_id;
    const users: string[] = [];
    for (let i = 0; i < 3; i++) {
      users.push(((await run(["user", "add", "--iota", iotaId, "--json"], { env })).json() as { user_id: string }).user_id);
    }
    const page = (await run(["user", "ls", "--iota", iotaId, "--limit", "2", "--all", "--json"], { env })).json();
    expect(page).toEqual({ users: users.sort().map((user_id) => ({ user_id, iota_id: iotaId })), next_cursor: null });
    expect((await run(["iota", "ls", "--all", "--json"], { env })).json()).toMatchObject({
      iotas: expect.arrayContaining([{ iota_id: iotaId, users: 3 }]),
    });
  });
});

describe("presence and calls", () => {
  it("shows an Iota offline, then online with its connected user and sockets", async () => {
    const iota = (await run(["iota", "add", "--json"], { env })).json() as { iota_id: string; private_key_hash: string };
    const user = (await run(["user", "add", "--iota", iota.iota_id, "--json"], { env })).json() as { user_id: string; private_key_hash: string };
    expect((await run(["presence", iota.iota_id, "--json"], { env })).json()).toEqual({
      iota_id: iota.iota_id,
      iota_online: false,
      users_online: [],
      client_sockets: 0,
    });
    const hub = await connectIota({ url: relay.url, iotaId: iota.iota_id, userIds: [user.user_id], privateKeyHash: iota.private_key_hash, reconnect: false });
    const client = await connectClient({ url: relay.url, iotaId: iota.iota_id, userId: user.user_id, privateKeyHash: user.private_key_hash, reconnect: false });
    try {
      const online = await run(["presence", iota.iota_id], { env });
      expect(online.code).toBe(0);
      expect(online.stdout).toEqual([`iota ${iota.iota_id}: online`, `users online: ${user.user_id}`, "client sockets: 1"]);
    } finally {
      await client.close();
      await hub.close();
    }
  });

  it("shows a call's members and states, and answers exit 1 for a call nobody is in", async () => {
    const callId = uuid();
    const empty = await run(["call", "show", callId, "--json"], { env });
    expect(empty.code).toBe(1);
    expect(JSON.parse(empty.stderr[0] ?? "")).toMatchObject({ error: "not_found" });

    const iota = (await run(["iota", "add", "--json"], { env })).json() as { iota_id: string };
    const user = (await run(["user", "add", "--iota", iota.iota_id, "--json"], { env })).json() as { user_id: string; private_key_hash: string };
    const member = await joinCall({ url: relay.url, callId, userId: user.user_id, privateKeyHash: user.private_key_hash, callState: "muted", userState: "dnd", reconnect: false });
    try {
      expect((await run(["call", "show", callId.toUpperCase(), "--json"], { env })).json()).toEqual({
        call_id: callId,
        members: { [user.user_id]: { call_state: "muted", user_state: "dnd" } },
      });
    } finally {
      await member.close();
    }
  });
});
