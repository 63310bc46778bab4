/**
 * What the hub and the call room share: accepting hibernatable sockets, the identification
 * phase and its timeout alarm, size and rate limits, per-socket ordering, and the close
 * handshake. Each rule lives here once; the subclasses supply identification and routing.
 */
import { DurableObject } from "cloudflare:workers";
import { type Config, configOf } from "./config";
import type { Env } from "./env";
import { jsonError } from "./http-error";
import { type RateSettings, RateLimiter, isOversize } from "./limits";
import { type LogFields, log } from "./log";
import { type ErrorType, type InboundFrame, decode, errorFrame, isReservedType } from "./protocol";

export const CLOSE = {
  policy: 1008,
  tooLarge: 1009,
  internalError: 1011,
  replaced: 4001,
  refused: 4003,
  identifyTimeout: 4008,
} as const;

/** Close codes that must not be echoed: they are never sent on the wire (RFC 6455 §7.4.1). */
const UNECHOABLE = new Set([1005, 1006, 1015]);

/** Every socket's attachment starts with these; subclasses add their own fields. */
export interface BaseAttachment {
  /**
   * `attempting` is held in memory only, so an object evicted mid-attempt times the socket out.
   * `closed` marks a socket we closed, so its late close event after a wake changes nothing.
   */
  phase: "pending" | "attempting" | "identified" | "closed";
  /** When an unidentified socket is closed with 4008 (ms since epoch). */
  deadline: number;
  /**
   * The connection id on this socket's log lines (SPEC §11 r2): random, drawn at upgrade, so
   * it names the socket without saying anything about who is behind it.
   */
  conn: string;
}

/** A decoded, valid frame from an identified socket, with the text it arrived as. */
export type Inbound = InboundFrame;

type Task = () => void | Promise<void>;

function reportTaskError(error: unknown): void {
  log("internal_error", { error: error instanceof Error ? error.name : "unknown", level: "error" });
}

/** Runs a task so that nothing it throws escapes: one bad frame never disturbs other sockets. */
function guarded(task: Task): Promise<void> | undefined {
  try {
    const result = task();
    return result instanceof Promise ? result.catch(reportTaskError) : undefined;
  } catch (error) {
    reportTaskError(error);
    return undefined;
  }
}

export abstract class SocketHost<A extends BaseAttachment> extends DurableObject<Env> {
  protected readonly config: Config;
  private readonly attachments = new WeakMap<WebSocket, A>();
  private readonly limiters = new WeakMap<WebSocket, RateLimiter>();
  private readonly queues = new Map<WebSocket, Promise<void>>();
  private readonly departed = new WeakSet<WebSocket>();
  /** Sockets decided to be closed (size, rate) whose earlier frames are still queued. */
  private readonly doomed = new WeakSet<WebSocket>();
  /** Counts revocations pushed by the directory; see `verified`. */
  private revocations = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.config = configOf(env);
    // Literal "ping" keep-alives are answered by the runtime without waking the object (SPEC §6).
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  // ---- hooks ---------------------------------------------------------------------------

  /** Reads the upgrade request into a fresh attachment (its `conn` is drawn here), or answers an error response. */
  protected abstract admit(request: Request, deadline: number): Omit<A, "conn"> | Response;
  /** Handles the socket's one identification attempt; `data` is unvalidated. */
  protected abstract identify(ws: WebSocket, attachment: A, id: string | undefined, data: unknown): void | Promise<void>;
  /** Handles a valid frame from an identified socket (reserved types already refused). */
  protected abstract receive(ws: WebSocket, attachment: A, inbound: Inbound): void | Promise<void>;
  /** Updates indexes and tells others once a socket is gone. Must be idempotent. */
  protected abstract leave(ws: WebSocket, attachment: A, notify: boolean): void;
  protected abstract rateSettings(attachment: A): RateSettings;
  protected abstract logFields(attachment: A): LogFields;

  // ---- attachments ---------------------------------------------------------------------

  /** The socket's attachment; deserialised once per wake, then served from memory. */
  protected attachment(ws: WebSocket): A {
    let attachment = this.attachments.get(ws);
    if (!attachment) {
      attachment = ws.deserializeAttachment() as A;
      this.attachments.set(ws, attachment);
    }
    return attachment;
  }

  /** Stores an attachment so it survives hibernation. */
  protected store(ws: WebSocket, attachment: A): void {
    this.attachments.set(ws, attachment);
    const { phase, ...rest } = attachment;
    ws.serializeAttachment({ ...rest, phase: phase === "attempting" ? "pending" : phase });
  }

  /**
   * Open sockets with their attachments; closing ones are left out, except the one being
   * handed to `leave()`: when its close event is what woke the object, it is already gone from
   * `getWebSockets()`, yet an index rebuilt now must still find it to tell the others.
   */
  protected *openSockets(): Iterable<[WebSocket, A]> {
    for (const ws of this.ctx.getWebSockets()) {
      if (ws.readyState !== WebSocket.OPEN || this.departed.has(ws)) continue;
      const attachment = this.attachment(ws);
      if (attachment.phase !== "closed") yield [ws, attachment];
    }
    if (this.leaving && this.leaving.readyState !== WebSocket.OPEN) yield [this.leaving, this.attachment(this.leaving)];
  }

  private leaving: WebSocket | null = null;

  /** Hands a departing socket to `leave()` exactly once. */
  private departNow(ws: WebSocket, attachment: A, notify: boolean): boolean {
    if (this.departed.has(ws) || attachment.phase === "closed") return false;
    this.leaving = ws;
    try {
      this.leave(ws, attachment, notify);
    } finally {
      this.leaving = null;
      this.departed.add(ws);
    }
    return true;
  }

  // ---- upgrade -------------------------------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return jsonError(426, "upgrade_required", "expected a WebSocket upgrade");
    }
    let unidentified = 0;
    for (const [, attachment] of this.openSockets()) if (attachment.phase !== "identified") unidentified++;
    if (unidentified >= this.config.MAX_UNIDENTIFIED_PER_OBJECT) {
      return jsonError(429, "too_many_unidentified", "too many sockets waiting to identify; retry later");
    }
    const deadline = Date.now() + this.config.IDENTIFY_TIMEOUT_MS;
    const admitted = this.admit(request, deadline);
    if (admitted instanceof Response) return admitted;
    // `A` is the subclass's attachment type; the one field it leaves out is added here.
    const attachment = { ...admitted, conn: crypto.randomUUID() } as A;
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    this.store(server, attachment);
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > deadline) await this.ctx.storage.setAlarm(deadline);
    log("connect", this.logFields(attachment));
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Closes unidentified sockets whose time is up (SPEC §4), then waits for the next deadline. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [ws, attachment] of this.openSockets()) {
      // An attempt under way is not timed out, but checked again later in case it never ends.
      if (attachment.phase === "attempting") next = Math.min(next, now + this.config.IDENTIFY_TIMEOUT_MS);
      if (attachment.phase !== "pending") continue;
      if (attachment.deadline <= now) this.drop(ws, CLOSE.identifyTimeout, "identification timeout");
      else next = Math.min(next, attachment.deadline);
    }
    if (next !== Number.POSITIVE_INFINITY) await this.ctx.storage.setAlarm(next);
  }

  // ---- frames --------------------------------------------------------------------------

  /**
   * Size and rate are judged as a frame arrives, but what follows (a reply, a close) waits in
   * the socket's queue, so frames accepted before it, an identification attempt included, are
   * handled first (SPEC §4 ordering, §9 "loses no message that it accepted").
   */
  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    if (this.departed.has(ws) || this.doomed.has(ws)) return;
    const attachment = this.attachment(ws);
    if (isOversize(message, this.config.MAX_MESSAGE_BYTES)) {
      this.doomed.add(ws);
      this.enqueue(ws, () => {
        this.reject(ws, this.attachment(ws), "error_too_large", undefined, "frame exceeds the size limit");
        this.drop(ws, CLOSE.tooLarge, "message too large");
      });
      return;
    }
    const verdict = this.limiter(ws, attachment).take(Date.now());
    if (verdict === "pass") {
      // The common case, nothing of this socket waiting: handled at once, with no closure or
      // Promise unless the handling itself waits (then later frames queue behind it).
      if (this.queues.has(ws)) this.enqueue(ws, () => this.handleQueued(ws, message));
      else this.handleNow(ws, attachment, message);
    } else if (verdict === "close" && attachment.phase !== "pending") {
      this.doomed.add(ws);
      this.enqueue(ws, () => this.drop(ws, CLOSE.policy, "rate limit exceeded"));
    } else if (verdict === "reject") {
      this.enqueue(ws, () => this.rateLimited(ws, message));
    }
  }

  /** Answers an episode's first rejection; before identification over-rate frames just drop. */
  private rateLimited(ws: WebSocket, message: string | ArrayBuffer): void {
    const attachment = this.attachment(ws);
    if (attachment.phase !== "identified" || this.departed.has(ws)) return;
    // Only this rejection is parsed, to tell the peer which message was dropped.
    const decoded = typeof message === "string" ? decode(message) : null;
    const id = decoded ? (decoded.ok ? decoded.envelope.id : decoded.id) : undefined;
    this.sendFrame(ws, errorFrame("error_rate_limited", id, "rate limit exceeded; message dropped"));
    log("error_reply", { ...this.logFields(attachment), error: "error_rate_limited", level: "warn" });
  }

  private limiter(ws: WebSocket, attachment: A): RateLimiter {
    let limiter = this.limiters.get(ws);
    if (!limiter) {
      limiter = new RateLimiter(this.rateSettings(attachment), Date.now());
      this.limiters.set(ws, limiter);
    }
    return limiter;
  }

  /**
   * Runs a socket's frames strictly in order (SPEC §4): a frame whose handling waits (on the
   * directory, say) holds back the frames after it, and only that socket's frames.
   */
  private enqueue(ws: WebSocket, task: Task): void {
    const pending = this.queues.get(ws);
    const result = pending ? pending.then(() => guarded(task)) : guarded(task);
    if (result) this.waitFor(ws, result);
  }

  /** Makes `result` the socket's queue tail until it settles. */
  private waitFor(ws: WebSocket, result: Promise<void>): void {
    const tail = result.then(() => {
      if (this.queues.get(ws) === tail) this.queues.delete(ws);
    });
    this.queues.set(ws, tail);
  }

  /** A frame that arrived with nothing of its socket waiting: the socket is open and ours. */
  private handleNow(ws: WebSocket, attachment: A, message: string | ArrayBuffer): void {
    let result: void | Promise<void>;
    try {
      result = this.handle(ws, attachment, message);
    } catch (error) {
      reportTaskError(error);
      return;
    }
    if (result) this.waitFor(ws, result.catch(reportTaskError));
  }

  /** A frame that waited behind others: its socket may have closed or departed meanwhile. */
  private handleQueued(ws: WebSocket, message: string | ArrayBuffer): void | Promise<void> {
    if (this.departed.has(ws) || ws.readyState !== WebSocket.OPEN) return;
    return this.handle(ws, this.attachment(ws), message);
  }

  private handle(ws: WebSocket, attachment: A, message: string | ArrayBuffer): void | Promise<void> {
    if (attachment.phase !== "identified") {
      // Before identification only an attempt counts; everything else is ignored (SPEC §4).
      if (attachment.phase !== "pending" || typeof message !== "string") return;
      const decoded = decode(message);
      if (decoded.ok ? decoded.envelope.type !== "identification" : !decoded.identification) return;
      attachment.phase = "attempting";
      // An attempt that is not a valid envelope (a repeated key, say) is refused like an
      // ill-typed one (SPEC §4): the hook gets no data to accept.
      return decoded.ok ? this.identify(ws, attachment, decoded.envelope.id, decoded.data) : this.identify(ws, attachment, decoded.id, undefined);
    }
    if (typeof message !== "string") return this.reject(ws, attachment, "error_invalid_data", undefined, "binary frames are not accepted");
    const decoded = decode(message);
    if (!decoded.ok) return this.reject(ws, attachment, "error_invalid_data", decoded.id, "malformed envelope");
    const { envelope } = decoded;
    if (envelope.type === "identification") {
      return this.reject(ws, attachment, "error_invalid_data", envelope.id, "already identified");
    }
    if (isReservedType(envelope.type)) {
      return this.reject(ws, attachment, "error_invalid_data", envelope.id, `type ${envelope.type} is reserved for the Omikron`);
    }
    return this.receive(ws, attachment, decoded);
  }

  /** Call when the directory revoked something here, before closing the sockets concerned. */
  protected noteRevocation(): void {
    this.revocations++;
  }

  /**
   * Runs a directory check (an identification, an ownership lookup). A revocation that
   * arrives while the check is under way may have been decided after the directory answered,
   * so the answer would outlive it (SPEC §8.1); the check is then asked again.
   */
  protected async verified<T>(check: () => Promise<T>): Promise<T> {
    for (;;) {
      const before = this.revocations;
      const answer = await check();
      if (this.revocations === before) return answer;
    }
  }

  // ---- writing and closing -------------------------------------------------------------

  /** Sends a frame, ignoring a socket that closed meanwhile (its close event does the cleanup). */
  protected sendFrame(ws: WebSocket, text: string): boolean {
    try {
      ws.send(text);
      return true;
    } catch {
      return false;
    }
  }

  /** Sends an error reply and logs it (SPEC §9, §11). */
  protected reject(ws: WebSocket, attachment: A, type: ErrorType, id: string | undefined, message: string, data?: Record<string, unknown>): void {
    this.sendFrame(ws, errorFrame(type, id, message, data));
    log("error_reply", { ...this.logFields(attachment), error: type, request_id: id });
  }

  /** Closes a socket from our side; departure is handled now, so the close event finds nothing to do. */
  protected drop(ws: WebSocket, code: number, reason: string, notify = true): void {
    const attachment = this.attachment(ws);
    if (!this.departNow(ws, attachment, notify)) return;
    try {
      this.store(ws, { ...attachment, phase: "closed" });
    } catch {
      // A socket already closing keeps no attachment; its close event finds it departed.
    }
    try {
      ws.close(code, reason);
    } catch {
      // Already closing: the peer has its close frame or is sending one.
    }
    log(code === CLOSE.replaced ? "replaced" : "closed", { ...this.logFields(attachment), code, reason });
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    // The local runtime does not answer a peer's close by itself; without this peers hang.
    if (!UNECHOABLE.has(code)) {
      try {
        ws.close(code, reason);
      } catch {
        // Already closed from our side.
      }
    }
    this.depart(ws, code);
  }

  override webSocketError(ws: WebSocket): void {
    this.depart(ws, 1006);
  }

  private depart(ws: WebSocket, code: number): void {
    this.queues.delete(ws);
    const attachment = this.attachment(ws);
    if (!this.departNow(ws, attachment, true)) return;
    log("closed", { ...this.logFields(attachment), code });
  }
}
