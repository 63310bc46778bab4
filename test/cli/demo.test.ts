/** `npm run demo`: the whole relay end to end, as a fresh clone runs it and against a given relay. */
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalRelay, envOf, run, startLocalRelay } from "./support.ts";

let relay: LocalRelay;

beforeAll(async () => {
  relay = await startLocalRelay();
});
afterAll(() => relay?.stop());

describe("demo", () => {
  it("starts its own relay, shows the conversation and ends with exit 0 and its summary line", async () => {
    const child = spawn(process.execPath, ["src/cli/bin.ts", "demo"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    const lines = stdout.trimEnd().split("\n");
    expect(lines.at(-1)).toBe(
      "demo ok: relayed 8 frames (2 client -> iota, 4 iota -> client, 2 between 2 call members); presence showed the Iota and 2 users online",
    );
    expect(lines).toContain("   bob        <- message_receive from iota to bob  {\"from\":\"alice\",\"text\":\"Hi Bob, lunch today?\"}");
  });

  it("runs against a given relay with --url, prints JSON events, and removes the records it created", async () => {
    const before = (await run(["iota", "ls", "--all", "--json"], { env: envOf(relay) })).json();
    const result = await run(["demo", "--url", relay.url, "--json"], { env: { OMIKRON_ADMIN_TOKEN: relay.adminToken } });
    expect(result.code).toBe(0);
    const events = result.stdout.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(events.at(-1)).toMatchObject({
      ok: true,
      relayed: { "client -> iota": 2, "iota -> client": 4, "call member -> member": 2 },
      presence: { iota_online: true, client_sockets: 2 },
      call_members: 2,
    });
    expect(events.filter((event) => event.direction === "in").length).toBeGreaterThan(20);
    expect((await run(["iota", "ls", "--all", "--json"], { env: envOf(relay) })).json()).toEqual(before);
  });

  it("fails with exit 3 and no summary when the given relay refuses its token", async () => {
    const result = await run(["demo", "--url", relay.url, "--token", "x".repeat(40)], {});
    expect(result.code).toBe(3);
    expect(result.stdout.some((line) => line.startsWith("demo ok"))).toBe(false);
  });
});
