/**
 * New private keys for `keygen` and the record commands. A peer keeps its private key as
 * base64 text and presents its `private_key_hash`, derived by the peer library exactly as
 * SPEC §8.1 r2 says (lower-case hex SHA-256 over the text's UTF-8 bytes), so the CLI, the demo
 * and every peer built on the library agree by construction.
 */
import { randomBytes } from "node:crypto";

export { privateKeyHash } from "../peer/index.ts";

/** Bytes of randomness in a generated private key: as many as an X25519 or Ed25519 key. */
const PRIVATE_KEY_BYTES = 32;

export function newPrivateKey(): string {
  return randomBytes(PRIVATE_KEY_BYTES).toString("base64");
}
