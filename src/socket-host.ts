/**
 * What the hub and the call room share: accepting hibernatable sockets, the identification
 * phase and its timeout alarm, the cap on unidentified sockets (oldest evicted), size, frame
 * and byte limits, the idle timeout, per-socket ordering, and the close handshake. Each rule
 * lives here once; the subclasses supply identification and routing.
 */
import { DurableObject } from "cloudflare:workers";
import { type Config, configOf } from "./config";
import type { Env } from "./env";
import { jsonError } from "./http-error";
import { type RateSettings, type RateVerdict, RateLimiter, frameBytes, isOversize } from "./limits";
import { type LogFields, log } from "./log";
import { type ErrorType, type InboundFrame, decode, errorFrame, isReservedType } from "./protocol";

export const CLOSE = {
  idle: 1001,
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
  /**
   * When an identified socket last sent a frame, as last stored: it is rewritten at most once
   * per quarter of IDLE_TIMEOUT_MS, so it may lag the last frame by that much (see `lastHeard`).
   */
  heardAt?: number;
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
  /** Live sockets and the unidentified ones among them; see `tracked`. */
  private tracking: Tracking | null = null;
  /** When the last frame of an identified socket arrived, exact for this wake. */
  private readonly heard = new WeakMap<WebSocket, number>();
  /** When the alarm next looks for idle sockets; unknown (null) after a wake. */
  private nextIdleCheck: number | null = null;

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
    if (attachment.phase === "identified" || attachment.phase === "closed") this.leaveUnidentified(ws, attachment);
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

  /** A socket that identified (or closed) is no longer counted as unidentified. */
  private leaveUnidentified(ws: WebSocket, attachment: A): void {
    const { waiting, attempting } = this.tracked;
    const wasUnidentified = waiting.delete(ws) || attempting.delete(ws);
    if (wasUnidentified && attachment.phase === "identified") {
      const now = Date.now();
      attachment.heardAt = now;
      this.heard.set(ws, now);
      this.scheduleIdleCheck(now).catch(() => log("internal_error", { error: "idle_alarm_failed", level: "error" }));
    }
  }

  /**
   * Forgets a departed socket. The last one takes the alarm with it: an object that never had
   * an identified socket then keeps no storage at all (SPEC §4 r2), and no object is woken for
   * sockets that are gone.
   */
  private untrack(ws: WebSocket): void {
    const { live, waiting, attempting } = this.tracked;
    waiting.delete(ws);
    attempting.delete(ws);
    // Not `if (!live.delete(ws))`: when this socket's close event woke the object, the index
    // was rebuilt without it, and it is still the last one.
    live.delete(ws);
    if (live.size > 0) return;
    this.nextIdleCheck = null;
    this.ctx.storage.deleteAlarm().catch(() => log("internal_error", { error: "alarm_delete_failed", level: "error" }));
  }

  /** Hands a departing socket to `leave()` exactly once. */
  private departNow(ws: WebSocket, attachment: A, notify: boolean): boolean {
    if (this.departed.has(ws) || attachment.phase === "closed") return false;
    this.leaving = ws;
    try {
      this.leave(ws, attachment, notify);
    } finally {
      this.leaving = null;
      this.departed.add(ws);
      this.untrack(ws);
    }
    return true;
  }

  // ---- upgrade -------------------------------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return jsonError(426, "upgrade_required", "expected a WebSocket upgrade");
    }
    const deadline = Date.now() + this.config.IDENTIFY_TIMEOUT_MS;
    const admitted = this.admit(request, deadline);
    if (admitted instanceof Response) return admitted;
    // `A` is the subclass's attachment type; the one field it leaves out is added here.
    const attachment = { ...admitted, conn: crypto.randomUUID() } as A;
    this.makeRoom();
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    const tracked = this.tracked;
    tracked.live.add(server);
    tracked.waiting.add(server);
    this.store(server, attachment);
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > deadline) await this.ctx.storage.setAlarm(deadline);
    log("connect", this.logFields(attachment));
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * Full of unidentified sockets (SPEC §4 r2): the oldest one waiting is closed 4008 so the
   * newcomer gets in, and a flood of idle sockets cannot lock out a peer that identifies
   * promptly. A socket whose attempt is under way is not waiting: it is left to finish, and
   * leaves the unidentified set either way. O(1): `waiting` is kept in age order.
   */
  private makeRoom(): void {
    const { waiting, attempting } = this.tracked;
    if (waiting.size + attempting.size < this.config.MAX_UNIDENTIFIED_PER_OBJECT) return;
    const oldest = waiting.values().next();
    if (!oldest.done) this.drop(oldest.value, CLOSE.identifyTimeout, "too many unidentified sockets");
  }

  /**
   * The alarm serves two deadlines: unidentified sockets whose time is up are closed 4008
   * (SPEC §4), and at most once per half IDLE_TIMEOUT_MS identified sockets that have sent
   * nothing for IDLE_TIMEOUT_MS are closed 1001 (SPEC §9 r2). It is set again only while
   * there is a socket to wait for, so an object with none keeps no alarm.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const { waiting, attempting, live } = this.tracked;
    let next = Number.POSITIVE_INFINITY;
    // An attempt under way is not timed out, but checked again later in case it never ends.
    if (attempting.size > 0) next = now + this.config.IDENTIFY_TIMEOUT_MS;
    // `waiting` is in age order, so the deadlines come in order too.
    for (const ws of waiting) {
      const { deadline } = this.attachment(ws);
      if (deadline > now) {
        next = Math.min(next, deadline);
        break;
      }
      this.drop(ws, CLOSE.identifyTimeout, "identification timeout");
    }
    const timeout = this.config.IDLE_TIMEOUT_MS;
    if (timeout > 0 && live.size > waiting.size + attempting.size) {
      if (this.nextIdleCheck === null || now >= this.nextIdleCheck) {
        this.closeIdle(now, timeout);
        this.nextIdleCheck = now + timeout / 2;
      }
      if (live.size > waiting.size + attempting.size) next = Math.min(next, this.nextIdleCheck);
    }
    if (next !== Number.POSITIVE_INFINITY) await this.ctx.storage.setAlarm(next);
  }

  /** Closes identified sockets silent for `timeout` with 1001 "idle", telling the others. */
  private closeIdle(now: number, timeout: number): void {
    const { live } = this.tracked;
    for (const ws of [...live]) {
      const attachment = this.attachment(ws);
      if (attachment.phase === "identified" && now - this.lastHeard(ws, attachment, timeout) >= timeout) {
        this.drop(ws, CLOSE.idle, "idle");
      }
    }
  }

  /**
   * The latest moment the socket may have sent something: a frame seen in this wake, else the
   * stored time plus the most it may lag; or the runtime's last auto-answered `ping`
   * keep-alive, which counts as traffic but never woke the object (SPEC §6, §9 r2). Erring
   * late means a socket is never closed before it has really been silent for the timeout.
   */
  private lastHeard(ws: WebSocket, attachment: A, timeout: number): number {
    const frame = this.heard.get(ws) ?? (attachment.heardAt ?? Date.now()) + timeout / 4;
    const keepAlive = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
    return Math.max(frame, keepAlive);
  }

  /** Records an identified socket's frame; stored at most once per quarter of the timeout. */
  private noteHeard(ws: WebSocket, attachment: A, now: number): void {
    const timeout = this.config.IDLE_TIMEOUT_MS;
    if (timeout === 0) return;
    this.heard.set(ws, now);
    if (now - (attachment.heardAt ?? 0) >= timeout / 4) {
      attachment.heardAt = now;
      this.store(ws, attachment);
    }
  }

  /** Makes sure the alarm looks for idle sockets within half the timeout (SPEC §9 r2). */
  private async scheduleIdleCheck(now: number): Promise<void> {
    const timeout = this.config.IDLE_TIMEOUT_MS;
    if (timeout === 0 || (this.nextIdleCheck !== null && this.nextIdleCheck > now)) return;
    const at = now + timeout / 2;
    this.nextIdleCheck = at;
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > at) await this.ctx.storage.setAlarm(at);
  }

  /**
   * Live sockets, and the unidentified ones in age order, rebuilt from the sockets and their
   * attachments once per wake; after that every upgrade, identification and departure keeps
   * them up to date in O(1), so nothing walks every socket per upgrade (SPEC §12).
   */
  private get tracked(): Tracking {
    if (!this.tracking) {
      const tracking: Tracking = { live: new Set(), waiting: new Set(), attempting: new Set() };
      const pending: [WebSocket, number][] = [];
      for (const [ws, attachment] of this.openSockets()) {
        if (ws === this.leaving) continue;
        tracking.live.add(ws);
        if (attachment.phase === "pending") pending.push([ws, attachment.deadline]);
        else if (attachment.phase === "attempting") tracking.attempting.add(ws);
      }
      pending.sort((a, b) => a[1] - b[1]);
      for (const [ws] of pending) tracking.waiting.add(ws);
      this.tracking = tracking;
    }
    return this.tracking;
  }

  /** Marks the socket's identification attempt as under way: it waits no more (see `makeRoom`). */
  private beginAttempt(ws: WebSocket): void {
    const { waiting, attempting } = this.tracked;
    if (waiting.delete(ws)) attempting.add(ws);
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
    const now = Date.now();
    if (attachment.phase === "identified") this.noteHeard(ws, attachment, now);
    const verdict = this.limiter(ws, attachment).take(now, message);
    if (verdict === "pass") {
      // The common case, nothing of this socket waiting: handled at once, with no closure or
      // Promise unless the handling itself waits (then later frames queue behind it).
      if (this.queues.has(ws)) this.enqueue(ws, () => this.handleQueued(ws, message));
      else this.handleNow(ws, attachment, message);
    } else if (verdict === "close") {
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

  /**
   * Charges the byte bucket for what a frame costs beyond its arrival: a call broadcast
   * counts once per receiver (SPEC §9 r2). Answers whether the frame may go; when it may not,
   * the episode rules apply as for an arriving frame (answer the first, close on a flood).
   */
  protected spend(ws: WebSocket, attachment: A, bytes: number, id: string | undefined): boolean {
    if (bytes <= 0) return true;
    const verdict: RateVerdict = this.limiter(ws, attachment).spend(Date.now(), bytes);
    if (verdict === "pass") return true;
    if (verdict === "reject") {
      this.sendFrame(ws, errorFrame("error_rate_limited", id, "byte rate limit exceeded; message dropped"));
      log("error_reply", { ...this.logFields(attachment), error: "error_rate_limited", level: "warn" });
    } else if (verdict === "close") {
      this.drop(ws, CLOSE.policy, "rate limit exceeded");
    }
    return false;
  }

  /** A frame's size as the byte budgets count it. */
  protected sizeOf(text: string): number {
    return frameBytes(text);
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
      this.beginAttempt(ws);
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

  /** Refuses an identification over a limit (SPEC §9, §11 r2): the error reply, a `refused` line naming the user, close 4003. */
  protected refuseAtLimit(ws: WebSocket, attachment: A, userId: string, type: ErrorType, id: string | undefined, message: string, closeReason: string): void {
    this.reject(ws, attachment, type, id, message);
    log("refused", { ...this.logFields(attachment), user_id: userId, reason: "limit" });
    this.drop(ws, CLOSE.refused, closeReason);
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

interface Tracking {
  /** Every socket not yet departed. */
  live: Set<WebSocket>;
  /** Unidentified sockets with no attempt under way, oldest first (insertion order). */
  waiting: Set<WebSocket>;
  /** Unidentified sockets whose attempt is under way (held in memory only). */
  attempting: Set<WebSocket>;
}
