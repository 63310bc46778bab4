/**
 * Test support for the worker project: sockets opened through the Worker, directory set-up
 * through the admin API, and helpers to read frames as the protocol defines them.
 */
import { exports } from "cloudflare:workers";
import { expect } from "vitest";

/** The token vitest.config.ts binds: 32 characters or more (SPEC §9 r2). */
export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef";
export const OMIKRON_ID = "22222222-2222-2222-2222-222222222222";
const BASE = "http://omikron.test";

/** SHA-256 of a text in lower-case hex, how the directory stores a credential: computed here, apart from src/. */
export async function sha256Hex(text: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** A fresh id the Omikron made up: a UUID v4 (SPEC §2). */
export const FRESH_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export type Frame = {
  id: string;
  type: string;
  log: { message: string; log_level: number };
  data: Record<string, unknown>;
  sender_id?: string;
  receiver_id?: string;
  [key: string]: unknown;
};

export interface Closed {
  code: number;
  reason: string;
}

/** A client socket that queues what it receives, so a test reads frames in order. */
export class Peer {
  private readonly frames: string[] = [];
  private readonly waiting: ((text: string) => void)[] = [];
  readonly closed: Promise<Closed>;

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (event) => {
      const text = typeof event.data === "string" ? event.data : "<binary>";
      const waiter = this.waiting.shift();
      if (waiter) waiter(text);
      else this.frames.push(text);
    });
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason }));
    });
  }

  /** The next raw text frame. */
  nextText(): Promise<string> {
    const queued = this.frames.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** The next frame, parsed. */
  async next(): Promise<Frame> {
    return JSON.parse(await this.nextText()) as Frame;
  }

  /** Frames already received and not yet read; for asserting that nothing else arrived. */
  pending(): string[] {
    return [...this.frames];
  }

  send(value: unknown): void {
    this.ws.send(typeof value === "string" ? value : JSON.stringify(value));
  }

  /** Sends a frame and answers the next one received. */
  async request(value: unknown): Promise<Frame> {
    this.send(value);
    return this.next();
  }

  close(code = 1000, reason = "bye"): void {
    this.ws.close(code, reason);
  }
}

export async function upgrade(path: string): Promise<Response> {
  return exports.default.fetch(`${BASE}${path}`, { headers: { Upgrade: "websocket" } });
}

export async function connect(path: string): Promise<Peer> {
  const response = await upgrade(path);
  if (response.status !== 101 || !response.webSocket) {
    throw new Error(`upgrade of ${path} answered ${response.status}: ${await response.text()}`);
  }
  return new Peer(response.webSocket);
}

export function fetchWorker(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(`${BASE}${path}`, init);
}

export function adminFetch(path: string, method = "GET", body?: unknown): Promise<Response> {
  return fetchWorker(`/admin${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

export const uuid = () => crypto.randomUUID();

/** A credential as a peer presents it: 64 hex characters. */
export function keyHash(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

export interface Account {
  id: string;
  key: string;
}

export async function createIota(): Promise<Account> {
  const account = { id: uuid(), key: keyHash() };
  const response = await adminFetch(`/iotas/${account.id}`, "PUT", { private_key_hash: account.key });
  if (response.status !== 201) throw new Error(`creating an Iota answered ${response.status}`);
  return account;
}

export async function createUser(iota: Account): Promise<Account> {
  const account = { id: uuid(), key: keyHash() };
  const response = await adminFetch(`/users/${account.id}`, "PUT", { iota_id: iota.id, private_key_hash: account.key });
  if (response.status !== 201) throw new Error(`creating a user answered ${response.status}`);
  return account;
}

export function iotaIdentification(iota: Account, userIds: string[] | string, id = uuid()) {
  return {
    id,
    type: "identification",
    log: { message: "Iota identifying", log_level: 0 },
    data: { iota_id: iota.id, user_ids: Array.isArray(userIds) ? userIds.map((u) => `${u},`).join("") : userIds, private_key_hash: iota.key },
  };
}

export function clientIdentification(iota: Account, user: Account, id = uuid()) {
  return {
    id,
    type: "identification",
    log: { message: "Client identifying", log_level: 0 },
    data: { iota_id: iota.id, user_id: user.id, private_key_hash: user.key },
  };
}

/** An identified Iota socket. */
export async function connectIota(iota: Account, userIds: string[] = []): Promise<Peer> {
  const peer = await connect(`/ws/iota/${iota.id}`);
  const reply = await peer.request(iotaIdentification(iota, userIds));
  if (reply.type !== "identification_response") throw new Error(`Iota identification answered ${reply.type}`);
  return peer;
}

/** An identified client socket. */
export async function connectClient(iota: Account, user: Account): Promise<Peer> {
  const peer = await connect(`/ws/client/${iota.id}`);
  const reply = await peer.request(clientIdentification(iota, user));
  if (reply.data.accepted !== true) throw new Error("client identification was refused");
  return peer;
}

/** A frame the Omikron writes itself; `id` undefined means it must be a fresh one. */
export function fromOmikron(type: string, data: Record<string, unknown>, logLevel: number, id?: string) {
  return {
    id: id ?? expect.stringMatching(FRESH_ID),
    type,
    log: { message: expect.any(String), log_level: logLevel },
    data,
    sender_id: OMIKRON_ID,
  };
}

/** The Omikron's reply to the request `id`: {@link fromOmikron} with the id given first. */
export function errorReply(type: string, id: string, logLevel: number, data: Record<string, unknown>) {
  return fromOmikron(type, data, logLevel, id);
}
