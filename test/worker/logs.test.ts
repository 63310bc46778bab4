import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { adminFetch, clientIdentification, connect, connectClient, connectIota, createIota, createUser, keyHash } from "./support";

/** Every line the relay logged while a test ran; the Durable Objects share the test's isolate. */
let lines: string[] = [];

beforeEach(() => {
  lines = [];
  for (const method of ["log", "warn", "error"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    });
  }
});

afterEach(() => {
  vi.restoreAllMocks();
});

function events(): Record<string, unknown>[] {
  return lines.filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("structured logs (SPEC §11)", () => {
  it("writes one JSON line per connection event with ids and codes", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    client.close(1000, "done");
    await client.closed;
    await iotaPeer.next();
    const seen = events().map((event) => [event.event, event.role, event.code ?? null]);
    expect(seen).toEqual([
      ["connect", "iota", null],
      ["identified", "iota", null],
      ["connect", "client", null],
      ["identified", "client", null],
      ["closed", "client", 1000],
    ]);
    expect(events()[3]).toMatchObject({ iota_id: iota.id, user_id: alice.id });
  });

  it("never logs a credential, its digest, or message contents", async () => {
    const iota = await createIota();
    const alice = await createUser(iota);
    const iotaPeer = await connectIota(iota, [alice.id]);
    const wrong = keyHash();
    const refused = await connect(`/ws/client/${iota.id}`);
    await refused.request(clientIdentification(iota, { id: alice.id, key: wrong }));
    await refused.closed;
    const client = await connectClient(iota, alice);
    await iotaPeer.next();
    client.send({ id: "m", type: "message", data: { secret_text: "the eagle lands at dawn" } });
    await iotaPeer.next();
    await client.request({ id: "bad", type: "pong" });
    await adminFetch(`/users/${alice.id}`, "PUT", { iota_id: iota.id, private_key_hash: keyHash() });
    const digest = async (text: string) =>
      [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)))]
        .map((byte) => byte.toString(16).padStart(2, "0"))
        .join("");
    const all = lines.join("\n");
    for (const secret of [iota.key, alice.key, wrong, await digest(alice.key), await digest(iota.key), "the eagle lands"]) {
      expect(all).not.toContain(secret);
    }
    expect(events().some((event) => event.event === "refused")).toBe(true);
    expect(events().some((event) => event.event === "error_reply" && event.error === "error_invalid_data")).toBe(true);
    expect(events().some((event) => event.event === "revoked")).toBe(true);
  });
});
