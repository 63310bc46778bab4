/**
 * The call room (SPEC §7): one Durable Object per call, holding its members' sockets, their
 * call and user states, and relaying signalling between them.
 */
import { type JoinVerdict, userRecordOf } from "./directory";
import { jsonError } from "./http-error";
import { type RateSettings, peerRateSettings } from "./limits";
import { type LogFields, log } from "./log";
import { OMIKRON_ID, frame, keyHashSchema, normalizeId, parseLastPing, withSenderId } from "./protocol";
import { CallIdentificationData, type CallState, CallStateSchema, StateChangeData } from "./protocol-schemas";
import { type BaseAttachment, CLOSE, type Inbound, SocketHost } from "./socket-host";

/** Why a join was refused, for the operator's log only (SPEC §11 r2). */
type RefusalReason = "bad_credential" | "unknown_id" | "id_mismatch" | "ill_typed" | "directory_unavailable";

interface MemberState {
  call_state: CallState;
  user_state: string;
}

interface CallAttachment extends BaseAttachment {
  callId: string;
  /** Names this socket's call record in the user's record. */
  socketId: string;
  /** Set once the member has identified. */
  userId?: string;
}

export class CallRoom extends SocketHost<CallAttachment> {
  /** Members' sockets, rebuilt from attachments when the object wakes. */
  private sockets: Map<string, WebSocket> | null = null;
  /** Members' states, mirrored in SQLite so they survive hibernation (SPEC §7, §10). */
  private states: Map<string, MemberState> | null = null;
  private schemaReady = false;

  private get sql(): SqlStorage {
    if (!this.schemaReady) {
      this.ctx.storage.sql.exec(
        "CREATE TABLE IF NOT EXISTS members (user_id TEXT PRIMARY KEY, call_state TEXT NOT NULL, user_state TEXT NOT NULL)",
      );
      this.schemaReady = true;
    }
    return this.ctx.storage.sql;
  }

  private get members(): Map<string, WebSocket> {
    if (!this.sockets) {
      this.sockets = new Map();
      for (const [ws, attachment] of this.openSockets()) {
        if (attachment.phase === "identified" && attachment.userId) this.sockets.set(attachment.userId, ws);
      }
    }
    return this.sockets;
  }

  private get memberStates(): Map<string, MemberState> {
    if (!this.states) {
      this.states = new Map();
      const rows = this.sql.exec<{ user_id: string; call_state: string; user_state: string }>("SELECT * FROM members");
      for (const row of rows) {
        this.states.set(row.user_id, { call_state: CallStateSchema.parse(row.call_state), user_state: row.user_state });
      }
    }
    return this.states;
  }

  private saveState(userId: string, state: MemberState): void {
    this.memberStates.set(userId, state);
    this.sql.exec(
      "INSERT INTO members (user_id, call_state, user_state) VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET call_state = excluded.call_state, user_state = excluded.user_state",
      userId,
      state.call_state,
      state.user_state,
    );
  }

  private stateOf(userId: string): MemberState {
    return this.memberStates.get(userId) ?? { call_state: "active", user_state: "online" };
  }

  // ---- SocketHost hooks ----------------------------------------------------------------

  protected admit(request: Request, deadline: number): Omit<CallAttachment, "conn"> | Response {
    const callId = normalizeId(new URL(request.url).pathname.split("/")[3]);
    if (!callId) return jsonError(404, "not_found", "no such endpoint");
    return { phase: "pending", deadline, callId, socketId: crypto.randomUUID() };
  }

  protected rateSettings(): RateSettings {
    return peerRateSettings(this.config);
  }

  protected logFields(attachment: CallAttachment): LogFields {
    return { conn: attachment.conn, role: "call", call_id: attachment.callId, user_id: attachment.userId };
  }

  protected async identify(ws: WebSocket, attachment: CallAttachment, id: string | undefined, data: unknown): Promise<void> {
    const request = CallIdentificationData.safeParse(data);
    const userId = request.success ? normalizeId(request.data.user_id) : null;
    const keyHash = request.success ? keyHashSchema.safeParse(request.data.private_key_hash) : null;
    if (!request.success || !userId || !keyHash?.success) return this.refuse(ws, attachment, id, "ill_typed");
    if (normalizeId(request.data.call_id) !== attachment.callId) return this.refuse(ws, attachment, id, "id_mismatch");
    let verdict: JoinVerdict;
    try {
      // Asked of the member's own record, so joins spread over users (SPEC §8.1 r2).
      verdict = await this.verified(() => userRecordOf(this.env, userId).joinCall(userId, keyHash.data, attachment.callId, attachment.socketId));
    } catch {
      return this.refuse(ws, attachment, id, "directory_unavailable");
    }
    if (verdict === "limit") {
      return this.refuseAtLimit(ws, attachment, userId, "error_too_many_connections", id, "this user is in too many calls", "too many calls");
    }
    if (verdict !== "joined") return this.refuse(ws, attachment, id, verdict);

    // Checked after the wait: others may have joined meanwhile. A rejoin is never refused as full.
    const members = this.members;
    const previous = members.get(userId);
    if (ws.readyState !== WebSocket.OPEN) {
      // Closed while the directory was asked: undo the record it just made for this socket.
      this.forgetCall(userId, attachment);
      return;
    }
    if (!previous && members.size >= this.config.CALL_MAX_MEMBERS) {
      this.forgetCall(userId, attachment);
      return this.refuseAtLimit(ws, attachment, userId, "error_call_full", id, "the call is full", "call full");
    }
    attachment.phase = "identified";
    attachment.userId = userId;
    this.store(ws, attachment);
    members.set(userId, ws);
    const state: MemberState = { call_state: request.data.call_state, user_state: request.data.user_state };
    this.saveState(userId, state);
    // The old socket is no longer the member when it closes, so nobody hears of the swap.
    if (previous) this.drop(previous, CLOSE.replaced, "replaced");
    log("identified", this.logFields(attachment));

    const callStates: Record<string, string> = {};
    const userStates: Record<string, string> = {};
    for (const memberId of members.keys()) {
      const memberState = this.stateOf(memberId);
      callStates[memberId] = memberState.call_state;
      userStates[memberId] = memberState.user_state;
    }
    this.sendFrame(
      ws,
      frame("identification_response", id, "Client identified", 0, {
        acceppted: true,
        accepted: true,
        user_ids: callStates,
        user_states: userStates,
      }),
    );
    this.toOthers(userId, frame("client_connected", undefined, "Client connected", 0, { user_id: userId, ...state }));
  }

  /** A credential refusal closes 4003; a record that could not be asked closes 1011, so the peer retries (SPEC §9). */
  private refuse(ws: WebSocket, attachment: CallAttachment, id: string | undefined, reason: RefusalReason): void {
    this.sendFrame(ws, frame("identification_response", id, "identification refused", 2, { acceppted: false, accepted: false }));
    const unavailable = reason === "directory_unavailable";
    log("refused", { ...this.logFields(attachment), reason, ...(unavailable ? { level: "error" as const } : {}) });
    if (unavailable) this.drop(ws, CLOSE.internalError, "directory unavailable");
    else this.drop(ws, CLOSE.refused, "identification refused");
  }

  protected receive(ws: WebSocket, attachment: CallAttachment, inbound: Inbound): void {
    const { envelope } = inbound;
    const userId = attachment.userId ?? "";
    if (envelope.type === "ping") {
      if (parseLastPing(inbound.data) === null) {
        return this.reject(ws, attachment, "error_invalid_data", envelope.id, "last_ping must be a number >= -1");
      }
      this.sendFrame(ws, frame("pong", envelope.id, "Pong to Client", -1));
      return;
    }
    if (envelope.type === "client_changed") return this.changeState(ws, attachment, userId, envelope.id, inbound.data);
    if (envelope.receiver_id === undefined) {
      // One frame in, one copy out per other member: its arrival paid for one copy, the
      // sender's byte bucket pays for the rest (SPEC §9 r2), so it cannot fan out unbounded.
      const copies = this.members.size - 1;
      if (copies > 1 && !this.spend(ws, attachment, (copies - 1) * this.sizeOf(inbound.text), envelope.id)) return;
      this.toOthers(userId, withSenderId(inbound, userId));
      return;
    }
    const receiverId = normalizeId(envelope.receiver_id);
    if (!receiverId || receiverId === OMIKRON_ID) {
      const why = receiverId ? `the Omikron does not answer ${envelope.type}` : "receiver_id must be a user id";
      return this.reject(ws, attachment, "error_invalid_data", envelope.id, why);
    }
    const receiver = this.members.get(receiverId);
    if (!receiver) {
      return this.reject(ws, attachment, "error_user_offline", envelope.id, "the receiver is not in this call", { receiver_id: receiverId });
    }
    this.sendFrame(receiver, withSenderId(inbound, userId));
  }

  /** Applies `client_changed` and tells the others only what changed (SPEC §7). */
  private changeState(ws: WebSocket, attachment: CallAttachment, userId: string, id: string | undefined, data: Record<string, unknown>): void {
    const change = StateChangeData.safeParse(data);
    if (!change.success) {
      return this.reject(ws, attachment, "error_invalid_data", id, "call_state or user_state is invalid");
    }
    const current = this.stateOf(userId);
    const changed: Partial<MemberState> = {};
    if (change.data.call_state !== undefined && change.data.call_state !== current.call_state) changed.call_state = change.data.call_state;
    if (change.data.user_state !== undefined && change.data.user_state !== current.user_state) changed.user_state = change.data.user_state;
    if (Object.keys(changed).length === 0) return;
    this.saveState(userId, { ...current, ...changed });
    this.toOthers(userId, frame("client_changed", undefined, "Client changed", 0, { user_id: userId, ...changed }));
  }

  protected leave(ws: WebSocket, attachment: CallAttachment, notify: boolean): void {
    const userId = attachment.userId;
    if (!userId) return;
    this.forgetCall(userId, attachment);
    // A replaced socket finds its successor here and leaves quietly.
    if (this.members.get(userId) !== ws) return;
    this.members.delete(userId);
    this.memberStates.delete(userId);
    if (notify) this.toOthers(userId, frame("client_disconnected", undefined, "Client disconnected", 0, { user_id: userId }));
    if (this.members.size > 0) {
      this.sql.exec("DELETE FROM members WHERE user_id = ?", userId);
      return;
    }
    // The last member left: nothing of the call is kept (SPEC §7), not even rows of members
    // whose sockets vanished without a close event.
    this.sql.exec("DROP TABLE IF EXISTS members");
    this.schemaReady = false;
    this.states = null;
  }

  /** Tells the user's record the user is no longer in this call, so revocations stop looking here. */
  private forgetCall(userId: string, attachment: CallAttachment): void {
    userRecordOf(this.env, userId)
      .leaveCall(attachment.callId, attachment.socketId)
      .catch(() => log("internal_error", { ...this.logFields(attachment), error: "leave_call_failed", level: "error" }));
  }

  private toOthers(userId: string, text: string): void {
    for (const [memberId, ws] of this.members) if (memberId !== userId) this.sendFrame(ws, text);
  }

  // ---- RPC from the admin API ------------------------------------------------------------

  /**
   * The members now in the call and their states (SPEC §8.2), from memory. An empty room
   * answers without touching storage, so asking about a call creates nothing (SPEC §4).
   */
  roster(): Record<string, MemberState> {
    const roster: Record<string, MemberState> = {};
    for (const userId of [...this.members.keys()].sort()) roster[userId] = this.stateOf(userId);
    return roster;
  }

  // ---- RPC from user records -----------------------------------------------------------

  /**
   * Closes a revoked member's socket (SPEC §8.2) before returning, if it is one of the
   * sockets the user's record knew of: a socket that joined with the new credential stays.
   */
  revokeMember(userId: string, socketIds: string[]): void {
    this.noteRevocation();
    const ws = this.members.get(userId);
    if (ws && socketIds.includes(this.attachment(ws).socketId)) this.drop(ws, CLOSE.refused, "credential revoked");
  }

  /** Which of these sockets of the user are still in the room, for a user record at its call limit. */
  heldSockets(userId: string, socketIds: string[]): string[] {
    const ws = this.members.get(userId);
    const socketId = ws ? this.attachment(ws).socketId : undefined;
    return socketId && socketIds.includes(socketId) ? [socketId] : [];
  }
}
