/**
 * One peer connection to the Omikron: opens the socket, identifies, and once accepted relays
 * frames both ways; correlates replies by `id`; keeps the socket alive with literal `ping`
 * frames; reconnects (and re-identifies) after the close codes SPEC §9 r2 names. The role
 * classes (`IotaPeer`, `ClientPeer`, `CallPeer`) only say how to identify.
 */
import { type BackoffOptions, DEFAULT_BACKOFF, backoffDelay, shouldReconnect } from "./backoff.ts";
import { ConnectionClosedError, NotConnectedError, RefusedError, RequestTimeoutError } from "./errors.ts";
import type { Frame, Pushes } from "./schemas.ts";
import { OMIKRON_ID, PUSH_TYPES, parseFrame } from "./wire.ts";

export type { Frame };

/** A frame to send: `id` is filled with a fresh UUID when missing. */
export interface OutboundFrame {
  type: string;
  id?: string;
  data?: Record<string, unknown>;
  receiver_id?: string;
  log?: { message: string; log_level: number };
  [field: string]: unknown;
}

/** The part of the standard WebSocket the library uses (browsers, Node ≥ 22, Workers, Deno). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: never) => void): void;
}
export type SocketConstructor = new (url: string) => SocketLike;

export interface PeerOptions {
  /** The Omikron's base URL (`wss://host`, or `https://host`, turned into `wss:`). */
  url: string | URL;
  /** Reconnect after 1001/1006/1011/4008 (SPEC §9 r2). Default true, with DEFAULT_BACKOFF. */
  reconnect?: boolean | Partial<BackoffOptions>;
  /** Interval of literal `ping` keep-alives (ms); a missed `pong` by the next one counts as a
   *  dead connection (reconnect as after 1006). Default 30 000 (the server's idle timeout is
   *  120 s); 0 turns keep-alives off. */
  keepAliveMs?: number;
  /** Default timeout of `request()` (ms). Default 10 000. */
  requestTimeoutMs?: number;
  /** How long to wait for the identification's answer (ms). Default 15 000. */
  identifyTimeoutMs?: number;
  /** The WebSocket class to use; default `globalThis.WebSocket`. */
  WebSocket?: SocketConstructor;
}

export type PeerState = "connecting" | "identified" | "reconnecting" | "closed";

export interface Disconnected {
  code: number;
  reason: string;
  /** When the next attempt starts (ms), or null when the peer gives up (then `close` follows). */
  reconnectInMs: number | null;
}

export interface Closed {
  code: number;
  reason: string;
}

export interface PeerEvents<Identified> extends Pushes {
  /** Any frame that is not a push or an awaited reply: relayed messages, unawaited errors. */
  message: Frame;
  /** Every text frame received after the identification, as received and in order (before it
   *  is dispatched as a push, reply or message); the keep-alive `pong` excluded. */
  text: string;
  /** The identification was accepted (at first and after every reconnect). */
  identified: Identified;
  /** The socket closed after it had identified. */
  disconnected: Disconnected;
  /** The peer is done: `close()` was called, or a close code it does not reconnect after. */
  close: Closed;
}

interface Pending {
  resolve: (frame: Frame) => void;
  reject: (error: Error) => void;
  timer: Timer;
}

type Listener<T> = (value: T) => void;

const OPEN = 1;

type Timer = ReturnType<typeof setTimeout>;

/** clearTimeout/clearInterval of a timer that may not be set (the runtimes type them apart). */
function stopTimer(timer: Timer | undefined): void {
  if (timer !== undefined) clearTimeout(timer);
}
/** A client may only send 1000 or 3000–4999; 4000 tells the server the client gave up on it. */
const KEEP_ALIVE_LOST = 4000;

export abstract class Peer<Identified extends Frame = Frame> {
  /** The latest accepted identification_response. */
  identification: Identified | null = null;
  /** The last round trip measured by `ping()` (ms), sent as `last_ping` by the next one. */
  lastPing: number | undefined;
  readonly closed: Promise<Closed>;

  #state: PeerState = "connecting";
  #url: string;
  #ws: SocketLike | null = null;
  #WebSocket: SocketConstructor;
  #backoff: BackoffOptions | null;
  #keepAliveMs: number;
  #requestTimeoutMs: number;
  #identifyTimeoutMs: number;
  #attempt = 0;
  #timer: Timer | undefined;
  #keepAlive: Timer | undefined;
  #pongDue = false;
  /** Frames received since the identification, until the caller could attach listeners. */
  #held: string[] | null = null;
  #pending = new Map<string, Pending>();
  #listeners = new Map<keyof PeerEvents<Identified>, Set<Listener<never>>>();
  #settleFirst: { resolve: () => void; reject: (error: Error) => void } | null = null;
  #resolveClosed!: (closed: Closed) => void;

  constructor(path: string, options: PeerOptions) {
    const base = new URL(options.url);
    base.protocol = base.protocol.replace(/^http/, "ws");
    this.#url = new URL(path, base).href;
    this.#WebSocket = options.WebSocket ?? (globalThis.WebSocket as unknown as SocketConstructor);
    const reconnect = options.reconnect ?? true;
    this.#backoff = reconnect === false ? null : { ...DEFAULT_BACKOFF, ...(reconnect === true ? {} : reconnect) };
    this.#keepAliveMs = options.keepAliveMs ?? 30_000;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#identifyTimeoutMs = options.identifyTimeoutMs ?? 15_000;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /** The identification frame of this role; called for every attempt, with a fresh `id`. */
  protected abstract identificationFrame(id: string): OutboundFrame;
  /** Whether an answer to the identification accepts it, and if so its typed form. */
  protected abstract accepted(frame: Frame): Identified | null;
  /** A hook for roles that track state from pushes (call members). */
  protected observe(_frame: Frame): void {}

  get state(): PeerState {
    return this.#state;
  }

  /** Opens and identifies; resolves once accepted. Called once, by `connectIota` and friends. */
  start(): Promise<this> {
    return new Promise<void>((resolve, reject) => {
      this.#settleFirst = { resolve, reject };
      this.#open();
    }).then(() => this);
  }

  on<K extends keyof PeerEvents<Identified>>(type: K, listener: Listener<PeerEvents<Identified>[K]>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** Resolves with the next event of `type` (for scripts and tests). */
  once<K extends keyof PeerEvents<Identified>>(type: K): Promise<PeerEvents<Identified>[K]> {
    return new Promise((resolve) => {
      const off = this.on(type, (value) => {
        off();
        resolve(value);
      });
    });
  }

  /** Sends a frame; answers its `id`. Throws NotConnectedError unless identified. */
  send(frame: OutboundFrame): string {
    const ws = this.#ws;
    if (this.#state !== "identified" || !ws || ws.readyState !== OPEN) {
      throw new NotConnectedError(`cannot send ${frame.type}: the peer is ${this.#state}`);
    }
    const id = frame.id ?? crypto.randomUUID();
    this.sendText(JSON.stringify({ ...frame, id }));
    return id;
  }

  /**
   * Sends a text frame as it is (for frames already serialised, or relayed byte for byte).
   * Throws NotConnectedError unless identified.
   */
  sendText(text: string): void {
    const ws = this.#ws;
    if (this.#state !== "identified" || !ws || ws.readyState !== OPEN) {
      throw new NotConnectedError(`cannot send: the peer is ${this.#state}`);
    }
    ws.send(text);
  }

  /**
   * Sends a frame and resolves with the first frame that comes back with the same `id`:
   * the Omikron's reply (an `error_*` included) or the relayed answer of the other side.
   * Rejects with RequestTimeoutError, or ConnectionClosedError if the socket drops first.
   */
  request(frame: OutboundFrame, timeoutMs = this.#requestTimeoutMs): Promise<Frame> {
    const id = frame.id ?? crypto.randomUUID();
    if (this.#pending.has(id)) return Promise.reject(new Error(`a request with id ${id} is already waiting`));
    return new Promise((resolve, reject) => {
      this.send({ ...frame, id });
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new RequestTimeoutError(id, timeoutMs));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
    });
  }

  /** A JSON ping (SPEC §6) reporting the last round trip; answers the pong and measures anew. */
  async ping(): Promise<Frame> {
    const started = Date.now();
    const data = this.lastPing === undefined ? {} : { last_ping: this.lastPing };
    const pong = await this.request({ type: "ping", log: { message: "Ping", log_level: -1 }, data });
    this.lastPing = Date.now() - started;
    return pong;
  }

  /** Closes for good (no reconnect); resolves once the socket has closed. */
  close(code = 1000, reason = "bye"): Promise<Closed> {
    if (this.#state !== "closed") {
      const ws = this.#ws;
      this.#finish({ code, reason }, new ConnectionClosedError(code, reason, "closed by the caller"));
      if (ws && ws.readyState <= OPEN) {
        // The close event settles `closed` with what the server echoed.
        ws.addEventListener("close", ((event: { code: number; reason: string }) =>
          this.#resolveClosed({ code: event.code, reason: event.reason })) as (event: never) => void);
        ws.close(code, reason);
      } else {
        this.#resolveClosed({ code, reason });
      }
    }
    return this.closed;
  }

  #emit<K extends keyof PeerEvents<Identified>>(type: K, value: PeerEvents<Identified>[K]): void {
    for (const listener of [...(this.#listeners.get(type) ?? [])]) (listener as Listener<PeerEvents<Identified>[K]>)(value);
  }

  #open(): void {
    this.#state = this.#attempt === 0 && this.#settleFirst ? "connecting" : "reconnecting";
    const ws = new this.#WebSocket(this.#url);
    this.#ws = ws;
    const identificationId = crypto.randomUUID();
    let refusal: Frame | null = null;
    let identifyTimer: Timer | undefined;
    const listen = <E>(type: string, handler: (event: E) => void) =>
      ws.addEventListener(type, ((event: E) => {
        if (this.#ws === ws) handler(event);
      }) as (event: never) => void);

    listen("open", () => {
      ws.send(JSON.stringify(this.identificationFrame(identificationId)));
      identifyTimer = setTimeout(() => this.#lost(ws, 1006, "identification not answered"), this.#identifyTimeoutMs);
    });
    listen<{ data: unknown }>("message", (event) => {
      if (typeof event.data !== "string") return;
      if (event.data === "pong") {
        this.#pongDue = false;
        return;
      }
      if (this.#state === "identified") {
        if (this.#held) this.#held.push(event.data);
        else this.#receive(event.data);
        return;
      }
      const frame = parseFrame(event.data);
      if (!frame || frame.id !== identificationId || refusal) return;
      stopTimer(identifyTimer);
      const accepted = this.accepted(frame);
      if (!accepted) {
        // The close that follows says whether to retry (1011) or not (4003).
        refusal = frame;
        return;
      }
      this.#identified(accepted);
    });
    listen<{ code: number; reason: string }>("close", (event) => {
      stopTimer(identifyTimer);
      this.#closedBy(event.code, event.reason, refusal);
    });
  }

  #identified(frame: Identified): void {
    this.#state = "identified";
    this.#attempt = 0;
    this.identification = frame;
    // Pushes follow the identification_response at once, often in the same network read,
    // where a runtime may fire both message events before the caller's `await connect…()`
    // resumes. Holding them for one macrotask lets listeners attached right after the await
    // see every one of them.
    this.#held = [];
    const ws = this.#ws;
    setTimeout(() => {
      if (this.#ws === ws) this.#flushHeld();
    }, 0);
    this.#startKeepAlive();
    this.#emit("identified", frame);
    const first = this.#settleFirst;
    this.#settleFirst = null;
    first?.resolve();
  }

  #flushHeld(): void {
    const held = this.#held ?? [];
    this.#held = null;
    for (const text of held) this.#receive(text);
  }

  #receive(text: string): void {
    this.#emit("text", text);
    const frame = parseFrame(text);
    if (frame) this.#dispatch(frame);
  }

  #dispatch(frame: Frame): void {
    const pending = frame.id === undefined ? undefined : this.#pending.get(frame.id);
    if (pending && frame.id !== undefined) {
      this.#pending.delete(frame.id);
      stopTimer(pending.timer);
      return pending.resolve(frame);
    }
    // Peers may not send these types (SPEC §2), so one from the Omikron's id is its push.
    const type = frame.type as keyof Pushes;
    if (frame.sender_id === OMIKRON_ID && PUSH_TYPES.has(type)) {
      this.observe(frame);
      return this.#emit(type, frame as Pushes[typeof type]);
    }
    this.#emit("message", frame);
  }

  #startKeepAlive(): void {
    stopTimer(this.#keepAlive);
    if (this.#keepAliveMs <= 0) return;
    this.#pongDue = false;
    const ws = this.#ws;
    this.#keepAlive = setInterval(() => {
      if (!ws || this.#ws !== ws) return;
      if (this.#pongDue) return this.#lost(ws, 1006, "keep-alive not answered");
      this.#pongDue = true;
      ws.send("ping");
    }, this.#keepAliveMs);
  }

  /** Gives up on a socket that stopped answering, and handles it as an abnormal close. */
  #lost(ws: SocketLike, code: number, reason: string): void {
    if (this.#ws !== ws) return;
    this.#ws = null;
    try {
      ws.close(KEEP_ALIVE_LOST, reason);
    } catch {
      // Already closing: the late close event is ignored, since #ws no longer names it.
    }
    this.#closedBy(code, reason, null);
  }

  #closedBy(code: number, reason: string, refusal: Frame | null): void {
    // Frames that arrived before the close are delivered before it.
    if (this.#state === "identified") this.#flushHeld();
    this.#held = null;
    this.#ws = null;
    stopTimer(this.#keepAlive);
    const wasIdentified = this.#state === "identified";
    this.#rejectPending(new ConnectionClosedError(code, reason));
    if (this.#state === "closed") return;
    const retry = this.#backoff !== null && shouldReconnect(code) && this.#attempt < this.#backoff.maxAttempts;
    const delay = retry && this.#backoff ? backoffDelay(this.#attempt, this.#backoff) : null;
    if (wasIdentified) this.#emit("disconnected", { code, reason, reconnectInMs: delay });
    if (delay === null) {
      const error = refusal ? new RefusedError(refusal, code, reason) : new ConnectionClosedError(code, reason);
      this.#finish({ code, reason }, error);
      this.#resolveClosed({ code, reason });
      return;
    }
    this.#attempt++;
    this.#state = "reconnecting";
    this.#timer = setTimeout(() => this.#open(), delay);
  }

  #rejectPending(error: Error): void {
    for (const pending of this.#pending.values()) {
      stopTimer(pending.timer);
      pending.reject(error);
    }
    this.#pending.clear();
  }

  #finish(closed: Closed, error: Error): void {
    this.#state = "closed";
    this.#ws = null;
    stopTimer(this.#timer);
    stopTimer(this.#keepAlive);
    this.#rejectPending(error);
    const first = this.#settleFirst;
    this.#settleFirst = null;
    first?.reject(error);
    this.#emit("close", closed);
  }
}
