/**
 * Helpers for the attack tests: requests as they arrive from the internet, each carrying the
 * client address Cloudflare sets (`CF-Connecting-IP`), so the per-address limits of
 * wrangler.toml (SPEC §3, §8.2 r2) apply to them exactly as in production.
 */
import { exports } from "cloudflare:workers";
import { type Account, Peer, clientIdentification, iotaIdentification } from "../worker/support";

const BASE = "http://omikron.test";

let counter = 0;

/** A client address no other test uses (TEST-NET-3 and the IPv6 documentation prefix). */
export function freshAddress(family: 4 | 6 = 4): string {
  counter++;
  const n = (Date.now() % 100_000) * 1_000 + counter;
  if (family === 6) return `2001:db8:${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}::1`;
  return `203.0.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

export function upgradeFrom(path: string, address: string): Promise<Response> {
  return exports.default.fetch(`${BASE}${path}`, { headers: { Upgrade: "websocket", "CF-Connecting-IP": address } });
}

/** An open socket from `address` (a fresh one by default, so no budget is shared). */
export async function connectFrom(path: string, address = freshAddress()): Promise<Peer> {
  const response = await upgradeFrom(path, address);
  if (response.status !== 101 || !response.webSocket) throw new Error(`upgrade of ${path} answered ${response.status}: ${await response.text()}`);
  return new Peer(response.webSocket);
}

export function adminFrom(address: string, path: string, token: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${token}`);
  headers.set("CF-Connecting-IP", address);
  return exports.default.fetch(`${BASE}/admin${path}`, { ...init, headers });
}

export async function identifiedIota(iota: Account, userIds: string[] = []): Promise<Peer> {
  const peer = await connectFrom(`/ws/iota/${iota.id}`);
  const reply = await peer.request(iotaIdentification(iota, userIds));
  if (reply.type !== "identification_response") throw new Error(`Iota identification answered ${reply.type}`);
  return peer;
}

export async function identifiedClient(iota: Account, user: Account): Promise<Peer> {
  const peer = await connectFrom(`/ws/client/${iota.id}`);
  const reply = await peer.request(clientIdentification(iota, user));
  if (reply.data.accepted !== true) throw new Error("client identification was refused");
  return peer;
}

/**
 * Runs a budget test inside one window of the platform limiter. Its windows are aligned to
 * the wall clock (every 60 s), so a run that fails across a boundary saw its count reset
 * half-way and proves nothing; it is run again, once (each run draws fresh addresses).
 */
export async function inOneWindow<T>(run: () => Promise<T>, periodMs = 60_000): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const window = Math.floor(Date.now() / periodMs);
    try {
      return await run();
    } catch (error) {
      // A failure is only believed when the whole run stayed inside one window.
      if (Math.floor(Date.now() / periodMs) === window || attempt > 0) throw error;
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
