/** `omikron keygen`: a private key and the private_key_hash a peer presents for it (SPEC §8.1 r2). */
import { defineCommand } from "../command.ts";
import { EXIT, usageError } from "../exit.ts";
import { newPrivateKey, privateKeyHash } from "../keys.ts";

export const keygen = defineCommand({
  path: ["keygen"],
  summary: "Print a new random private key (base64 text) and its private_key_hash.",
  details: [
    "private_key_hash = lower-case hex SHA-256 over the UTF-8 bytes of the private key text.",
    "Give the hash to `iota add` / `user add` (--key-hash) and the private key to the peer.",
    "With --private-key, derives the hash of an existing key instead. Nothing is sent anywhere.",
  ].join("\n"),
  args: [],
  options: {
    "private-key": { type: "string", value: "<text>", description: "derive the hash of this key instead of drawing one" },
  },
  relay: "none",
  async run({ values, out }) {
    if (values["private-key"] === "") throw usageError("--private-key: must not be empty");
    const privateKey = values["private-key"] ?? newPrivateKey();
    const hash = await privateKeyHash(privateKey);
    out.result({ private_key: privateKey, private_key_hash: hash }, [`private_key: ${privateKey}`, `private_key_hash: ${hash}`]);
    return EXIT.ok;
  },
});
