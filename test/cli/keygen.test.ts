/** `keygen`: the credential derivation of SPEC §8.1 r2, checked against known SHA-256 vectors. */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { run } from "./support.ts";

describe("keygen", () => {
  it("derives private_key_hash as the lower-case hex SHA-256 of the key text's UTF-8 bytes", async () => {
    // FIPS 180-2's "abc" vector, and a non-ASCII key whose UTF-8 bytes differ from Latin-1.
    const abc = await run(["keygen", "--private-key", "abc", "--json"]);
    expect(abc.code).toBe(0);
    expect(abc.json()).toEqual({
      private_key: "abc",
      private_key_hash: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    });
    const utf8 = (await run(["keygen", "--private-key", "é", "--json"])).json() as { private_key_hash: string };
    expect(utf8.private_key_hash).toBe(createHash("sha256").update(Buffer.from([0xc3, 0xa9])).digest("hex"));
  });

  it("draws a new 32-byte base64 key each time, with its hash", async () => {
    const first = (await run(["keygen", "--json"])).json() as { private_key: string; private_key_hash: string };
    const second = (await run(["keygen", "--json"])).json() as { private_key: string; private_key_hash: string };
    expect(first.private_key).not.toBe(second.private_key);
    expect(Buffer.from(first.private_key, "base64").toString("base64")).toBe(first.private_key);
    expect(Buffer.from(first.private_key, "base64")).toHaveLength(32);
    expect(first.private_key_hash).toBe(createHash("sha256").update(first.private_key, "utf8").digest("hex"));
    const human = await run(["keygen", "--private-key", "abc"]);
    expect(human.stdout).toEqual([
      "private_key: abc",
      "private_key_hash: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    ]);
  });
});
