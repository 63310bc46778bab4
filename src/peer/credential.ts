/**
 * SPEC §8.1 r2: the `private_key_hash` Tensamin's clients present is the lower-case hex
 * SHA-256 of the UTF-8 bytes of their base64 private-key text. To the Omikron it is an opaque
 * 64-hex bearer credential; this is how a peer derives it. Web Crypto only, so it runs in
 * browsers, Node, Workers and Deno alike.
 */
export async function privateKeyHash(privateKeyBase64: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(privateKeyBase64));
  let hex = "";
  for (const byte of new Uint8Array(digest)) hex += byte.toString(16).padStart(2, "0");
  return hex;
}
