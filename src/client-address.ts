/**
 * The client address the per-address limits are keyed by (SPEC §3, §8.2 r2).
 *
 * Cloudflare sets `CF-Connecting-IP` on every request that reaches the Worker from the
 * internet, and overwrites any value a client sent. An IPv6 address is keyed by its /64
 * prefix: one subscriber usually holds a whole /64, so keying by the full address would give
 * each attacker 2^64 separate budgets. A request without the header (only possible locally,
 * or from another Worker) shares one budget with every other such request.
 */
export function clientAddress(request: Request): string {
  const address = request.headers.get("CF-Connecting-IP")?.trim();
  if (!address) return "unknown";
  return address.includes(":") ? ipv6Prefix(address) : address;
}

/** The first four groups of an IPv6 address, expanded, e.g. `2001:db8:0:1::/64`. */
function ipv6Prefix(address: string): string {
  const [head = "", tail] = address.toLowerCase().split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}
