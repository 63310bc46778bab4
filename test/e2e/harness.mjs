// @ts-check
/**
 * The real local Omikron for the end-to-end tests and the benchmark (bench/relay.mjs), so
 * both measure the same server: wrangler's dev server in this process, offline, on
 * 127.0.0.1, with a throw-away persistence directory and every var and the admin token
 * passed as bindings (a developer's .dev.vars never reaches a test). Plain JavaScript so
 * the benchmark runs with no build step; `// @ts-check` and test/e2e/tsconfig.json keep it
 * strictly typed.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { startLocalWorker } from "../../.ci/local-worker.mjs";
import { connectClient, connectIota, joinCall } from "../../src/peer/index.ts";

export const OMIKRON_ID = "22222222-2222-2222-2222-222222222222";
export const UUID_PATTERN = /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/;


/** How long a test waits for an expected frame before failing with a readable message. */
const FRAME_WAIT_MS = 15_000;

/**
 * ws reports `close` only once TCP has ended, or this long after it started the closing
 * handshake. Locally the server ends TCP of a socket that never sent data only ~10 s after
 * closing it, although the close frame (and so the code) arrived at once; ws's default
 * (30 s) would stall such a test for nothing. Long enough for any real close echo.
 */
const CLOSE_HANDSHAKE_MS = 2_000;

export function uuid() {
  return randomUUID();
}

/** A credential as a peer presents it: 64 hex characters (SPEC §8.1). */
export function keyHash() {
  return randomBytes(32).toString("hex");
}

/**
 * @typedef {object} Frame
 * @property {string} id
 * @property {string} type
 * @property {{ message: string, log_level: number }} [log]
 * @property {Record<string, unknown>} [data]
 * @property {string} [sender_id]
 * @property {string} [receiver_id]
 */

/** @typedef {{ code: number, reason: string }} Closed */
/** @typedef {{ status: number, body: unknown }} HttpReply */
/** @typedef {{ id: string, keyHash: string }} Iota */
/** @typedef {{ id: string, keyHash: string, iotaId: string }} User */
/** @typedef {import("../../src/peer/index.ts").IotaPeer} IotaPeer */
/** @typedef {import("../../src/peer/index.ts").ClientPeer} ClientPeer */
/** @typedef {import("../../src/peer/index.ts").CallPeer} CallPeer */
/** @typedef {import("../../src/peer/index.ts").CallState} CallState */

/**
 * The peer library as the tests use it: no reconnects and no keep-alives, so a test sees only
 * the frames it caused (the library's own tests cover both).
 */
const TEST_PEER = { reconnect: false, keepAliveMs: 0 };

/**
 * Starts the Worker from wrangler.toml on a free port of 127.0.0.1. The caller must call
 * `stop()`; if starting fails half-way, what was started is stopped here.
 * `entrypoint` replaces wrangler.toml's `main` (the storm benchmark counts calls with its own);
 * `inspectorPort` opens the devtools inspector (the relay benchmark's profile).
 * @param {{ adminToken?: string, vars?: Record<string, string>, entrypoint?: string, inspectorPort?: number }} [options]
 * @returns {Promise<Relay>}
 */
export async function startRelay(options = {}) {
  const adminToken = options.adminToken ?? `e2e-${randomBytes(16).toString("hex")}`;
  const persist = await mkdtemp(join(tmpdir(), "omikron-e2e-"));
  /** @type {string[]} */
  const logs = [];
  /** @param {number} port */
  const launch = (port) =>
    startLocalWorker({ adminToken, persist, logs, port, vars: options.vars, entrypoint: options.entrypoint, inspectorPort: options.inspectorPort });
  /** @type {Awaited<ReturnType<typeof startLocalWorker>> | undefined} */
  let worker;
  try {
    worker = await launch(0);
    const url = await worker.url;
    return new Relay(url, adminToken, logs, worker, persist, launch);
  } catch (error) {
    await worker?.dispose().catch(() => {});
    await rm(persist, { recursive: true, force: true });
    throw error;
  }
}

export class Relay {
  /** @type {{ dispose(): Promise<void> }} */
  #worker;
  /** @type {(port: number) => Promise<{ dispose(): Promise<void> }>} */
  #launch;
  /** @type {string} */
  #persist;
  /** @type {Set<{ terminate(): void }>} */
  #peers = new Set();

  /**
   * @param {URL} url
   * @param {string} adminToken
   * @param {string[]} logs the relay's own log lines, in order
   * @param {{ dispose(): Promise<void> }} worker
   * @param {string} persist
   * @param {(port: number) => Promise<{ dispose(): Promise<void> }>} launch starts the server again
   */
  constructor(url, adminToken, logs, worker, persist, launch) {
    this.httpUrl = new URL("/", url).href.replace(/\/$/, "");
    this.wsUrl = this.httpUrl.replace(/^http/, "ws");
    this.adminToken = adminToken;
    this.logs = logs;
    this.#worker = worker;
    this.#persist = persist;
    this.#launch = launch;
    this.port = Number(url.port);
  }

  /**
   * Stops the server and starts it again on the same port with the same storage, as a deploy
   * or a crash would: every socket drops, the directory's records stay.
   */
  async restart() {
    await this.#worker.dispose();
    this.#worker = await this.#launch(this.port);
  }

  /**
   * @param {string} path
   * @param {RequestInit} [init]
   * @returns {Promise<HttpReply>}
   */
  async http(path, init) {
    const response = await fetch(`${this.httpUrl}${path}`, init);
    const text = await response.text();
    /** @type {unknown} */
    let body = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON: the raw text is what a test should see.
    }
    return { status: response.status, body };
  }

  /**
   * An admin API call (SPEC §8.2) with this relay's token unless `token` says otherwise.
   * @param {"GET" | "PUT" | "DELETE"} method
   * @param {string} path under /admin
   * @param {unknown} [body]
   * @param {string} [token]
   */
  admin(method, path, body, token = this.adminToken) {
    /** @type {Record<string, string>} */
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return this.http(`/admin${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  /** @returns {Promise<Iota>} */
  async createIota() {
    const iota = { id: uuid(), keyHash: keyHash() };
    const reply = await this.admin("PUT", `/iotas/${iota.id}`, { private_key_hash: iota.keyHash });
    if (reply.status !== 201) throw new Error(`PUT /admin/iotas answered ${reply.status} ${JSON.stringify(reply.body)}`);
    return iota;
  }

  /**
   * @param {Iota} iota
   * @returns {Promise<User>}
   */
  async createUser(iota) {
    const user = { id: uuid(), keyHash: keyHash(), iotaId: iota.id };
    const reply = await this.admin("PUT", `/users/${user.id}`, { iota_id: iota.id, private_key_hash: user.keyHash });
    if (reply.status !== 201) throw new Error(`PUT /admin/users answered ${reply.status} ${JSON.stringify(reply.body)}`);
    return user;
  }

  /**
   * Opens a socket; it is remembered so `closePeers()` and `stop()` can end it.
   * @param {string} path e.g. /ws/client/<iota_id>
   */
  async open(path) {
    const peer = await Peer.open(`${this.wsUrl}${path}`);
    this.#peers.add(peer);
    void peer.closed.then(() => this.#peers.delete(peer));
    return peer;
  }

  /**
   * @template {IotaPeer | ClientPeer | CallPeer} P
   * @param {P} peer
   * @returns {Inbox<P>}
   */
  #inbox(peer) {
    const inbox = new Inbox(peer);
    this.#peers.add(inbox);
    void inbox.closed.then(() => this.#peers.delete(inbox));
    return inbox;
  }

  /**
   * An Iota identified through the peer library, with an inbox of what it receives after.
   * @param {Iota} iota
   * @param {string[]} userIds
   */
  async iota(iota, userIds) {
    return this.#inbox(await connectIota({ url: this.wsUrl, iotaId: iota.id, userIds, privateKeyHash: iota.keyHash, ...TEST_PEER }));
  }

  /**
   * A client (one device of `user`) identified through the peer library.
   * @param {User} user
   */
  async client(user) {
    return this.#inbox(
      await connectClient({ url: this.wsUrl, iotaId: user.iotaId, userId: user.id, privateKeyHash: user.keyHash, ...TEST_PEER }),
    );
  }

  /**
   * A call member joined through the peer library.
   * @param {string} callId
   * @param {User} user
   * @param {{ callState?: CallState, userState?: string }} [states]
   */
  async call(callId, user, states = {}) {
    return this.#inbox(await joinCall({ url: this.wsUrl, callId, userId: user.id, privateKeyHash: user.keyHash, ...states, ...TEST_PEER }));
  }

  /**
   * An identified Iota socket over `ws` (for the benchmark); answers the socket and its
   * identification_response.
   * @param {Iota} iota
   * @param {string} userIds as sent in `user_ids`
   */
  async connectIota(iota, userIds) {
    const peer = await this.open(`/ws/iota/${iota.id}`);
    const request = {
      id: uuid(),
      type: "identification",
      log: { message: "Iota identifying", log_level: 0 },
      data: { iota_id: iota.id, user_ids: userIds, private_key_hash: iota.keyHash },
    };
    const response = await peer.request(request);
    if (response.type !== "identification_response") throw new Error(`Iota identification answered ${JSON.stringify(response)}`);
    return { peer, request, response };
  }

  /**
   * An identified client socket over `ws` (one device of `user`, for the benchmark).
   * @param {User} user
   */
  async connectClient(user) {
    const peer = await this.open(`/ws/client/${user.iotaId}`);
    const request = {
      id: uuid(),
      type: "identification",
      log: { message: "Client identifying", log_level: 0 },
      data: { iota_id: user.iotaId, user_id: user.id, private_key_hash: user.keyHash },
    };
    const response = await peer.request(request);
    if (response.data?.accepted !== true) throw new Error(`client identification answered ${JSON.stringify(response)}`);
    return { peer, request, response };
  }

  /** Ends every socket still open, so one test's peers cannot disturb the next. */
  closePeers() {
    for (const peer of this.#peers) peer.terminate();
    this.#peers.clear();
  }

  async stop() {
    this.closePeers();
    try {
      await this.#worker.dispose();
    } finally {
      await rm(this.#persist, { recursive: true, force: true });
    }
  }
}

/**
 * What a socket received and nobody read yet, in order, so a test reads frames one by one and
 * can show that nothing else arrived.
 */
class Queue {
  /** @type {string[]} */
  #frames = [];
  /** @type {{ resolve: (text: string) => void, reject: (error: Error) => void }[]} */
  #waiting = [];
  /** @type {Closed | null} */
  #closed = null;

  /** @param {string} text */
  deliver(text) {
    const waiter = this.#waiting.shift();
    if (waiter) waiter.resolve(text);
    else this.#frames.push(text);
  }

  /** @param {Closed} closed */
  ended(closed) {
    this.#closed = closed;
    for (const waiter of this.#waiting.splice(0)) {
      waiter.reject(new Error(`socket closed (${closed.code} ${closed.reason}) while a frame was awaited`));
    }
  }

  /**
   * The next text frame, as received.
   * @param {number} [waitMs]
   * @returns {Promise<string>}
   */
  nextText(waitMs = FRAME_WAIT_MS) {
    const queued = this.#frames.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed) return Promise.reject(new Error(`socket already closed (${this.#closed.code})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = this.#waiting.filter((waiter) => waiter.resolve !== settle);
        reject(new Error(`no frame arrived within ${waitMs} ms`));
      }, waitMs);
      /** @param {string} text */
      const settle = (text) => {
        clearTimeout(timer);
        resolve(text);
      };
      this.#waiting.push({
        resolve: settle,
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  /**
   * The next frame, parsed.
   * @param {number} [waitMs]
   * @returns {Promise<Frame>}
   */
  async next(waitMs) {
    const text = await this.nextText(waitMs);
    try {
      return /** @type {Frame} */ (JSON.parse(text));
    } catch {
      throw new Error(`expected a JSON frame, got ${JSON.stringify(text)}`);
    }
  }

  /** Frames received and not yet read: lets a test show that nothing else arrived. */
  pending() {
    return [...this.#frames];
  }

  /**
   * Takes every frame queued so far and empties the queue.
   * @protected
   */
  drain() {
    return this.#frames.splice(0);
  }
}

/**
 * A peer-library peer with a queue of every frame it receives after identifying (its `text`
 * event, so pushes, replies and relayed frames alike, byte for byte). `send` writes exactly
 * the object given (no `id` added), so a test can compare relayed text with what it sent.
 * @template {IotaPeer | ClientPeer | CallPeer} P
 */
export class Inbox extends Queue {
  /** @param {P} peer */
  constructor(peer) {
    super();
    this.peer = peer;
    peer.on("text", (text) => this.deliver(text));
    /** @type {Promise<Closed>} */
    this.closed = peer.closed.then((closed) => {
      this.ended(closed);
      return closed;
    });
  }

  /** The accepted identification_response. */
  get response() {
    return this.peer.identification;
  }

  /** @param {unknown} value a frame object, or a string sent as is */
  send(value) {
    this.peer.sendText(typeof value === "string" ? value : JSON.stringify(value));
  }

  /**
   * Sends a frame and answers the next one received.
   * @param {unknown} value
   */
  request(value) {
    this.send(value);
    return this.next();
  }

  /**
   * Closes for good; `closed` settles with what the server echoed.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = "bye") {
    void this.peer.close(code, reason);
  }

  terminate() {
    void this.peer.close(1000, "test over");
  }
}

/**
 * A raw ws client socket, for what the peer library never does (frames before or instead of
 * an identification) and for the benchmark, whose `stream` skips the per-frame promise.
 */
export class Peer extends Queue {
  /** @type {((text: string) => void) | null} */
  #stream = null;

  /** @param {WebSocket} ws */
  constructor(ws) {
    super();
    this.ws = ws;
    ws.on("message", (data, isBinary) => {
      const text = isBinary ? "<binary>" : rawText(data);
      if (this.#stream) this.#stream(text);
      else this.deliver(text);
    });
    /** @type {Promise<Closed>} */
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        const closed = { code, reason: reason.toString("utf8") };
        this.ended(closed);
        resolve(closed);
      });
    });
  }

  /**
   * Connects without permessage-deflate: compression halves local throughput and the relay
   * never needs it.
   * @param {string} url
   * @returns {Promise<Peer>}
   */
  static open(url) {
    // `closeTimeout` is a real ws option that its type declarations do not list yet.
    /** @type {WebSocket.ClientOptions} */
    const options = Object.assign({ perMessageDeflate: false }, { closeTimeout: CLOSE_HANDSHAKE_MS });
    const ws = new WebSocket(url, options);
    const peer = new Peer(ws);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(peer));
      ws.once("error", reject);
      ws.once("unexpected-response", (_request, response) => {
        reject(new Error(`upgrade of ${url} answered HTTP ${response.statusCode}`));
        ws.terminate();
      });
    });
  }

  /**
   * Hands every later frame straight to `handler` instead of queueing it, for the benchmark,
   * where a promise and a timer per frame would be measured too. Answers a function that
   * restores queueing.
   * @param {(text: string) => void} handler
   */
  stream(handler) {
    const unread = this.drain();
    if (unread.length > 0) throw new Error(`unread frames before streaming: ${unread.join(" ")}`);
    this.#stream = handler;
    return () => {
      this.#stream = null;
    };
  }

  /** @param {unknown} value a frame object, or a string sent as is */
  send(value) {
    this.ws.send(typeof value === "string" ? value : JSON.stringify(value));
  }

  /**
   * Sends a frame and answers the next one received.
   * @param {unknown} value
   */
  request(value) {
    this.send(value);
    return this.next();
  }

  /**
   * Starts a close handshake; `closed` settles once the server has answered it.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = "bye") {
    this.ws.close(code, reason);
  }

  terminate() {
    this.ws.terminate();
  }
}

/** @param {WebSocket.RawData} data */
function rawText(data) {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}
