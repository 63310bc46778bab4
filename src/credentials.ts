/**
 * Credential handling (SPEC §8.1): the Omikron never keeps a presented `private_key_hash`,
 * only the SHA-256 of its lower-cased text, and compares digests in constant time.
 */
const encoder = new TextEncoder();

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

function fromHex(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

/** What the directory stores for a presented credential. */
export async function storedFormOf(presentedKeyHash: string): Promise<string> {
  return toHex(await digest(presentedKeyHash.toLowerCase()));
}

/** Whether a presented credential matches a stored one, in time independent of where they differ. */
export async function credentialMatches(presentedKeyHash: string, stored: string): Promise<boolean> {
  const presented = await digest(presentedKeyHash.toLowerCase());
  const expected = fromHex(stored);
  return presented.length === expected.length && crypto.subtle.timingSafeEqual(presented, expected);
}

/**
 * Whether a bearer token equals the configured one. Both sides are hashed first so the
 * comparison is over equal lengths and leaks neither content nor length.
 */
export async function tokenMatches(presented: string, configured: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(presented), digest(configured)]);
  return crypto.subtle.timingSafeEqual(a, b);
}
