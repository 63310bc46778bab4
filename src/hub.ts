/**
 * The hub (SPEC §4, §5, §6): one Durable Object per Iota, holding the Iota's socket and its
 * users' client sockets, relaying between them, and forwarding to other hubs (§5.3).
 */
import { z } from "zod";
import { directoryOf } from "./directory";
import type { Env } from "./env";
import { jsonError } from "./http-error";
import type { RateSettings } from "./limits";
import { type LogFields, log } from "./log";
import {
  OMIKRON_ID,
  errorFrame,
  frame,
  keyHashSchema,
  normalizeId,
  parseIdList,
  parseLastPing,
  withSenderId,
  writeIdList,
} from "./protocol";
import { type BaseAttachment, CLOSE, type Inbound, SocketHost } from "./socket-host";

interface HubAttachment extends BaseAttachment {
  role: "iota" | "client";
  /** The Iota this hub serves, from the upgrade path. */
  iotaId: string;
  /** Set once a client has identified. */
  userId?: string;
  /** The last round trip the peer reported, and when, for pongs (SPEC §6). */
  lastPing?: number;
  pingAt?: number;
}

/** Who is connected, rebuilt from the sockets' attachments whenever the object wakes. */
interface HubIndex {
  iota: WebSocket | null;
  clients: Map<string, Set<WebSocket>>;
}

/** Who is connected to a hub now (SPEC §8.2 presence). */
export interface Presence {
  iota_online: boolean;
  /** Users with at least one identified client socket, in id order. */
  users_online: string[];
  client_sockets: number;
}

/** What a hub answers when another hub hands it a message (SPEC §5.3). */
export type Delivery = "delivered" | "no_iota" | "not_owner";

export interface Revocation {
  /** Close the Iota's socket. */
  iota: boolean;
  /** Close every client socket (the Iota was removed). */
  allClients: boolean;
  /** Close these users' client sockets and forget them as this Iota's users. */
  users: string[];
}

const IotaIdentification = z.object({
  iota_id: z.string(),
  user_ids: z.union([z.string(), z.array(z.string())]),
  private_key_hash: z.string().optional(),
});

const ClientIdentification = z.object({
  iota_id: z.string(),
  user_id: z.string(),
  private_key_hash: z.string(),
});

/** A bound on remembered owners of other hubs' users; a hint is verified by the receiving hub. */
const MAX_OWNER_HINTS = 10_000;

export class Hub extends SocketHost<HubAttachment> {
  private index: HubIndex | null = null;
  /** Users the directory records under this Iota, mirrored in storage; revocations remove them. */
  private users: Set<string> | null = null;
  /** Owners of other hubs' users, as last looked up. */
  private readonly ownerHints = new Map<string, string>();
  /**
   * Routes that need the directory or another hub, chained per receiver: one receiver's frames
   * keep their order, and no receiver waits for another's, nor does any cached route.
   */
  private readonly routes = new Map<string, Promise<void>>();
  private lastPingStamp = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY)");
  }

  // ---- state ---------------------------------------------------------------------------

  private get connected(): HubIndex {
    if (!this.index) {
      const index: HubIndex = { iota: null, clients: new Map() };
      for (const [ws, attachment] of this.openSockets()) {
        if (attachment.phase !== "identified") continue;
        if (attachment.role === "iota") index.iota = ws;
        else if (attachment.userId) addTo(index.clients, attachment.userId, ws);
      }
      this.index = index;
    }
    return this.index;
  }

  private get ownUsers(): Set<string> {
    if (!this.users) {
      this.users = new Set(
        this.ctx.storage.sql
          .exec<{ user_id: string }>("SELECT user_id FROM users")
          .toArray()
          .map((row) => row.user_id),
      );
    }
    return this.users;
  }

  private addOwnUser(userId: string): void {
    if (this.ownUsers.has(userId)) return;
    this.ownUsers.add(userId);
    this.ctx.storage.sql.exec("INSERT OR IGNORE INTO users (user_id) VALUES (?)", userId);
  }

  private replaceOwnUsers(userIds: string[]): void {
    this.users = new Set(userIds);
    this.ctx.storage.sql.exec("DELETE FROM users");
    for (const userId of this.users) this.ctx.storage.sql.exec("INSERT INTO users (user_id) VALUES (?)", userId);
  }

  private forgetOwnUser(userId: string): void {
    this.ownUsers.delete(userId);
    this.ctx.storage.sql.exec("DELETE FROM users WHERE user_id = ?", userId);
  }

  // ---- SocketHost hooks ----------------------------------------------------------------

  protected admit(request: Request, deadline: number): Omit<HubAttachment, "conn"> | Response {
    const [, , role, id] = new URL(request.url).pathname.split("/");
    const iotaId = normalizeId(id);
    if ((role !== "iota" && role !== "client") || !iotaId) return jsonError(404, "not_found", "no such endpoint");
    return { phase: "pending", deadline, role, iotaId };
  }

  protected rateSettings(attachment: HubAttachment): RateSettings {
    const { config } = this;
    return attachment.role === "iota"
      ? { perSecond: config.IOTA_RATE_LIMIT_PER_SEC, burst: config.IOTA_RATE_LIMIT_BURST, closeAfterMs: config.RATE_LIMIT_CLOSE_AFTER_MS }
      : { perSecond: config.RATE_LIMIT_PER_SEC, burst: config.RATE_LIMIT_BURST, closeAfterMs: config.RATE_LIMIT_CLOSE_AFTER_MS };
  }

  protected logFields(attachment: HubAttachment): LogFields {
    return { conn: attachment.conn, role: attachment.role, iota_id: attachment.iotaId, user_id: attachment.userId };
  }

  protected identify(ws: WebSocket, attachment: HubAttachment, id: string | undefined, data: unknown): Promise<void> {
    return attachment.role === "iota"
      ? this.identifyIota(ws, attachment, id, data)
      : this.identifyClient(ws, attachment, id, data);
  }

  protected receive(ws: WebSocket, attachment: HubAttachment, inbound: Inbound): void {
    if (attachment.role === "iota") this.fromIota(ws, attachment, inbound);
    else this.fromClient(ws, attachment, inbound);
  }

  protected leave(ws: WebSocket, attachment: HubAttachment, notify: boolean): void {
    const index = this.connected;
    if (attachment.role === "iota") {
      if (index.iota !== ws) return;
      index.iota = null;
      if (notify) this.toClients(frame("iota_disconnected", undefined, "Iota disconnected", 0, { iota_id: attachment.iotaId }));
      return;
    }
    const userId = attachment.userId;
    const devices = userId ? index.clients.get(userId) : undefined;
    if (!userId || !devices?.delete(ws)) return;
    if (devices.size > 0) return;
    index.clients.delete(userId);
    if (notify && index.iota) {
      this.sendFrame(index.iota, frame("client_disconnected", undefined, "Client disconnected", 0, { user_id: userId }));
    }
  }

  // ---- identification (SPEC §4.1, §4.2) ------------------------------------------------

  private async identifyIota(ws: WebSocket, attachment: HubAttachment, id: string | undefined, data: unknown): Promise<void> {
    const request = IotaIdentification.safeParse(data);
    const required = this.config.IOTA_AUTH === "required";
    const keyHash = request.success ? keyHashSchema.safeParse(request.data.private_key_hash) : null;
    if (!request.success || normalizeId(request.data.iota_id) !== attachment.iotaId || (required && !keyHash?.success)) {
      return this.refuseIota(ws, attachment, id);
    }
    const listed = parseIdList(request.data.user_ids) ?? [];
    if (!required) log("iota_auth_off", { ...this.logFields(attachment), level: "warn" });
    let users: string[] | null;
    try {
      const presented = required && keyHash?.success ? keyHash.data : null;
      users = await this.verified(() => directoryOf(this.env).authenticateIota(attachment.iotaId, presented));
    } catch {
      return this.directoryFailed(ws, attachment, errorFrame("error_not_authenticated", id, "identification failed"));
    }
    if (!users) return this.refuseIota(ws, attachment, id);
    if (ws.readyState !== WebSocket.OPEN) return;

    this.replaceOwnUsers(users);
    const accepted = new Set<string>();
    const denied: string[] = [];
    for (const item of listed) {
      const userId = normalizeId(item);
      if (userId && this.ownUsers.has(userId)) accepted.add(userId);
      else denied.push(item);
    }

    const index = this.connected;
    const previous = index.iota;
    index.iota = ws;
    attachment.phase = "identified";
    this.store(ws, attachment);
    // The old socket is no longer the Iota when it closes, so its departure tells nobody.
    if (previous && previous !== ws) this.drop(previous, CLOSE.replaced, "replaced");
    log("identified", this.logFields(attachment));

    const deniedList = writeIdList(denied);
    this.sendFrame(
      ws,
      frame("identification_response", id, "Iota identified", 0, {
        accepted_profiles: writeIdList(accepted),
        denid_profiles: deniedList,
        denied_profiles: deniedList,
      }),
    );
    this.toClients(frame("iota_connected", undefined, "Iota connected", 0, { iota_id: attachment.iotaId }));
    for (const userId of index.clients.keys()) {
      this.sendFrame(ws, frame("client_connected", undefined, "Client connected", 0, { user_id: userId }));
    }
  }

  private refuseIota(ws: WebSocket, attachment: HubAttachment, id: string | undefined): void {
    this.sendFrame(ws, errorFrame("error_not_authenticated", id, "identification refused"));
    log("refused", this.logFields(attachment));
    this.drop(ws, CLOSE.refused, "identification refused");
  }

  private async identifyClient(ws: WebSocket, attachment: HubAttachment, id: string | undefined, data: unknown): Promise<void> {
    const request = ClientIdentification.safeParse(data);
    const userId = request.success ? normalizeId(request.data.user_id) : null;
    const keyHash = request.success ? keyHashSchema.safeParse(request.data.private_key_hash) : null;
    if (!request.success || !userId || !keyHash?.success || normalizeId(request.data.iota_id) !== attachment.iotaId) {
      return this.refuseClient(ws, attachment, id);
    }
    let owner: { iotaId: string | null } | undefined;
    try {
      owner = await this.verified(() => directoryOf(this.env).authenticateUser(userId, keyHash.data));
    } catch {
      return this.directoryFailed(ws, attachment, clientRefusal(id));
    }
    if (owner?.iotaId !== attachment.iotaId) return this.refuseClient(ws, attachment, id);
    if (ws.readyState !== WebSocket.OPEN) return;

    // Checked after the wait: other devices may have identified meanwhile (SPEC §4).
    const index = this.connected;
    const devices = index.clients.get(userId);
    if (devices && devices.size >= this.config.MAX_DEVICES_PER_USER) {
      this.reject(ws, attachment, "error_too_many_connections", id, "too many devices for this user");
      this.drop(ws, CLOSE.refused, "too many connections");
      return;
    }
    attachment.phase = "identified";
    attachment.userId = userId;
    this.store(ws, attachment);
    addTo(index.clients, userId, ws);
    this.addOwnUser(userId);
    log("identified", this.logFields(attachment));
    this.sendFrame(
      ws,
      frame("identification_response", id, "Client identified", 0, {
        acceppted: true,
        accepted: true,
        iota_online: index.iota !== null,
      }),
    );
    if (!devices && index.iota) {
      this.sendFrame(index.iota, frame("client_connected", undefined, "Client connected", 0, { user_id: userId }));
    }
  }

  private refuseClient(ws: WebSocket, attachment: HubAttachment, id: string | undefined): void {
    this.sendFrame(ws, clientRefusal(id));
    log("refused", this.logFields(attachment));
    this.drop(ws, CLOSE.refused, "identification refused");
  }

  /** The directory could not answer: refuse without blaming the credential, so the peer retries. */
  private directoryFailed(ws: WebSocket, attachment: HubAttachment, refusal: string): void {
    this.sendFrame(ws, refusal);
    log("refused", { ...this.logFields(attachment), reason: "directory unavailable", level: "error" });
    this.drop(ws, CLOSE.internalError, "directory unavailable");
  }

  // ---- relaying (SPEC §5, §6) ----------------------------------------------------------

  private fromClient(ws: WebSocket, attachment: HubAttachment, inbound: Inbound): void {
    const { envelope } = inbound;
    if (envelope.type === "ping") {
      const lastPing = parseLastPing(inbound.data);
      if (lastPing === null) return this.reject(ws, attachment, "error_invalid_data", envelope.id, "last_ping must be a number >= -1");
      if (lastPing !== undefined) this.recordPing(ws, attachment, lastPing);
      const iota = this.connected.iota;
      const iotaPing = iota ? (this.attachment(iota).lastPing ?? -1) : -1;
      this.sendFrame(ws, frame("pong", envelope.id, "Pong to Client", -1, { last_ping: iotaPing }));
      return;
    }
    if (normalizeId(envelope.receiver_id) === OMIKRON_ID) {
      return this.reject(ws, attachment, "error_invalid_data", envelope.id, `the Omikron does not answer ${envelope.type}`);
    }
    const iota = this.connected.iota;
    if (!iota || !this.sendFrame(iota, withSenderId(inbound, attachment.userId ?? ""))) {
      this.reject(ws, attachment, "error_no_iota", envelope.id, "the Iota is not connected");
    }
  }

  private fromIota(ws: WebSocket, attachment: HubAttachment, inbound: Inbound): void {
    const { envelope } = inbound;
    if (envelope.type === "ping") {
      const lastPing = parseLastPing(inbound.data);
      if (lastPing === null) return this.reject(ws, attachment, "error_invalid_data", envelope.id, "last_ping must be a number >= -1");
      if (lastPing !== undefined) this.recordPing(ws, attachment, lastPing);
      this.sendFrame(ws, frame("pong", envelope.id, "Pong to Iota", -1, { user_ping: this.userPings() }));
      return;
    }
    const receiverId = normalizeId(envelope.receiver_id);
    if (!receiverId || receiverId === OMIKRON_ID) {
      const why = receiverId ? `the Omikron does not answer ${envelope.type}` : "receiver_id must be a user id";
      return this.reject(ws, attachment, "error_invalid_data", envelope.id, why);
    }
    if (this.ownUsers.has(receiverId) && !this.routes.has(receiverId)) {
      this.toUser(ws, attachment, receiverId, inbound);
      return;
    }
    this.queueRoute(receiverId, () => this.routeUncached(ws, attachment, receiverId, inbound));
  }

  private recordPing(ws: WebSocket, attachment: HubAttachment, lastPing: number): void {
    attachment.lastPing = lastPing;
    // The clock stands still within one event, so two devices' pings may share a millisecond;
    // a stamp that always grows keeps "most recently reported" exact. It only runs ahead of the
    // clock by one per ping, far less than any hibernation lasts.
    this.lastPingStamp = Math.max(Date.now(), this.lastPingStamp + 1);
    attachment.pingAt = this.lastPingStamp;
    this.store(ws, attachment);
  }

  /** Each online user's most recently reported round trip, -1 for those who never reported. */
  private userPings(): Record<string, number> {
    const pings: Record<string, number> = {};
    for (const [userId, devices] of this.connected.clients) {
      let latest: HubAttachment | undefined;
      for (const device of devices) {
        const candidate = this.attachment(device);
        if (candidate.pingAt !== undefined && (latest?.pingAt === undefined || candidate.pingAt > latest.pingAt)) latest = candidate;
      }
      pings[userId] = latest?.lastPing ?? -1;
    }
    return pings;
  }

  /** Delivers an Iota's frame to every device of one of its users (SPEC §5.2). */
  private toUser(ws: WebSocket, attachment: HubAttachment, userId: string, inbound: Inbound): void {
    const { envelope } = inbound;
    const devices = this.connected.clients.get(userId);
    if (!devices) {
      this.reject(ws, attachment, "error_user_offline", envelope.id, "the receiver is not connected", { receiver_id: userId });
      return;
    }
    const relayed = withSenderId(inbound, attachment.iotaId);
    for (const device of devices) this.sendFrame(device, relayed);
  }

  private toClients(text: string): void {
    for (const devices of this.connected.clients.values()) for (const device of devices) this.sendFrame(device, text);
  }

  // ---- routes that need the directory (SPEC §5.2, §5.3) --------------------------------

  /** Queues a route behind earlier routes to the same receiver. */
  private queueRoute(receiverId: string, route: () => Promise<void>): void {
    const tail = (this.routes.get(receiverId) ?? Promise.resolve())
      .then(route)
      .catch(() => log("internal_error", { receiver_id: receiverId, error: "route_failed", level: "error" }))
      .finally(() => {
        if (this.routes.get(receiverId) === tail) this.routes.delete(receiverId);
      });
    this.routes.set(receiverId, tail);
  }

  private async routeUncached(ws: WebSocket, attachment: HubAttachment, receiverId: string, inbound: Inbound): Promise<void> {
    const { envelope, text } = inbound;
    const senderId = normalizeId(envelope.sender_id);
    const hinted = this.ownerHints.has(receiverId);
    let owner = await this.ownerOf(receiverId);
    for (let retried = false; ; retried = true) {
      if (owner === attachment.iotaId) {
        this.addOwnUser(receiverId);
        return this.toUser(ws, attachment, receiverId, inbound);
      }
      const senderOk = owner ? senderId !== null && (await this.isOwnUser(senderId, attachment.iotaId)) : false;
      const delivery = owner && senderOk ? await this.forward(owner, receiverId, text) : null;
      if (delivery === "delivered") return;
      if (delivery === "no_iota") {
        return this.reject(ws, attachment, "error_no_iota", envelope.id, "the receiver's Iota is not connected", { receiver_id: receiverId });
      }
      // A refusal that rests on a remembered owner may be stale (the user moved, SPEC §5.2,
      // §5.3): drop the hint and decide once more on the directory's answer.
      if (retried || !(hinted || delivery === "not_owner")) {
        const why = owner && !senderOk ? "sender_id must be one of this Iota's users" : "the receiver is not a known user";
        return this.reject(ws, attachment, "error_invalid_user_id", envelope.id, why, { receiver_id: receiverId });
      }
      this.ownerHints.delete(receiverId);
      owner = await this.ownerOf(receiverId);
    }
  }

  private async isOwnUser(userId: string, iotaId: string): Promise<boolean> {
    if (this.ownUsers.has(userId)) return true;
    if ((await this.verified(() => directoryOf(this.env).ownerOf(userId))) !== iotaId) return false;
    this.addOwnUser(userId);
    return true;
  }

  private async ownerOf(userId: string): Promise<string | null | undefined> {
    const hint = this.ownerHints.get(userId);
    if (hint) return hint;
    const owner = await this.verified(() => directoryOf(this.env).ownerOf(userId));
    if (owner) {
      if (this.ownerHints.size >= MAX_OWNER_HINTS) this.ownerHints.clear();
      this.ownerHints.set(userId, owner);
    }
    return owner;
  }

  private forward(iotaId: string, receiverId: string, text: string): Promise<Delivery> {
    return this.env.HUB.get(this.env.HUB.idFromName(iotaId)).deliver(iotaId, receiverId, text);
  }

  // ---- RPC from other objects ----------------------------------------------------------

  /**
   * Takes a frame another hub's Iota sent to one of this Iota's users (SPEC §5.3) and hands
   * it to this Iota, unchanged. A receiver this Iota does not own is refused, so a sender's
   * stale hint is corrected instead of followed.
   */
  async deliver(iotaId: string, receiverId: string, text: string): Promise<Delivery> {
    if (!this.ownUsers.has(receiverId)) {
      if ((await this.verified(() => directoryOf(this.env).ownerOf(receiverId))) !== iotaId) return "not_owner";
      this.addOwnUser(receiverId);
    }
    const iota = this.connected.iota;
    return iota && this.sendFrame(iota, text) ? "delivered" : "no_iota";
  }

  /**
   * Who is connected (SPEC §8.2), read from the in-memory index: no storage is read or
   * written (SPEC §4), and only the online users are visited, never every socket.
   */
  presence(): Presence {
    const { iota, clients } = this.connected;
    let sockets = 0;
    for (const devices of clients.values()) sockets += devices.size;
    return { iota_online: iota !== null, users_online: [...clients.keys()].sort(), client_sockets: sockets };
  }

  /**
   * Closes what a directory change revoked (SPEC §8.2) before returning, so the admin reply
   * follows the close frames. Revoked sockets get no frame before their close.
   */
  revoke({ iota, allClients, users }: Revocation): void {
    this.noteRevocation();
    const index = this.connected;
    const closing = new Set<WebSocket>();
    if (allClients) {
      for (const devices of index.clients.values()) for (const device of devices) closing.add(device);
      this.replaceOwnUsers([]);
      // Hints may name this Iota as the owner of its former users; none of them is any more.
      this.ownerHints.clear();
    }
    for (const userId of users) {
      for (const device of index.clients.get(userId) ?? []) closing.add(device);
      this.forgetOwnUser(userId);
      this.ownerHints.delete(userId);
    }
    const revokedIota = iota ? index.iota : null;
    // Peers that stay learn who left; peers that are being closed are told nothing.
    if (revokedIota) this.drop(revokedIota, CLOSE.refused, "credential revoked", !allClients);
    for (const device of closing) this.drop(device, CLOSE.refused, "credential revoked", !allClients);
  }
}

function addTo(map: Map<string, Set<WebSocket>>, key: string, ws: WebSocket): void {
  const set = map.get(key);
  if (set) set.add(ws);
  else map.set(key, new Set([ws]));
}

function clientRefusal(id: string | undefined): string {
  return frame("identification_response", id, "identification refused", 2, { acceppted: false, accepted: false });
}

