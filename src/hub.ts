/**
 * The hub (SPEC §4, §5, §6): one Durable Object per Iota, holding the Iota's socket and its
 * users' client sockets, relaying between them, and forwarding to other hubs (§5.3).
 */
import { credentialMatches } from "./credentials";
import { type Applied, HubStore, type HubRecords, NO_CREDENTIAL, type Owner, controlOf, userRecordOf } from "./directory";
import type { Env } from "./env";
import { jsonError } from "./http-error";
import { type RateSettings, iotaRateSettings, peerRateSettings } from "./limits";
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
import { ClientIdentificationData, IotaIdentificationData } from "./protocol-schemas";
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

/** Why an identification was refused, for the operator's log only (SPEC §11 r2). */
type RefusalReason = "bad_credential" | "unknown_id" | "id_mismatch" | "ill_typed";

/** A bound on remembered owners of other hubs' users; a hint is verified by the receiving hub. */
const MAX_OWNER_HINTS = 10_000;
/** How long an "unknown user" answer is remembered (SPEC §5.2 r2), and a bound on how many. */
const UNKNOWN_FOR_MS = 60_000;
const MAX_UNKNOWN = 10_000;
/**
 * The one message of every error_invalid_user_id (SPEC §5.3 r2), whichever check failed, so
 * an Iota cannot learn from the replies whether a user id exists.
 */
const INVALID_USER_MESSAGE = "the receiver or sender is not a user this Iota may address";

export class Hub extends SocketHost<HubAttachment> {
  private index: HubIndex | null = null;
  /** This hub's records (SPEC §8.1 r2): its Iota's and its users' credential digests. */
  private readonly records: HubStore;
  /** The one fetch of records by a hub from before records lived in hubs. */
  private fetchingRecords: Promise<void> | null = null;
  /** Owners of other hubs' users, as last looked up. */
  private readonly ownerHints = new Map<string, string>();
  /** Receivers the directory did not know, until when (SPEC §5.2 r2). */
  private readonly unknown = new Map<string, number>();
  /** Routes waiting on a lookup, per Iota socket (SPEC §5.2 r2 MAX_PENDING_LOOKUPS). */
  private readonly lookups = new WeakMap<WebSocket, number>();
  /**
   * Routes that need the directory or another hub, chained per receiver: one receiver's frames
   * keep their order, and no receiver waits for another's, nor does any cached route.
   */
  private readonly routes = new Map<string, Promise<void>>();
  private lastPingStamp = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Nothing is written here: a hub stores only what the control pushes and what identified sockets need (SPEC §4 r2).
    this.records = new HubStore(ctx.storage.sql);
  }

  // ---- state ---------------------------------------------------------------------------

  /** Who is connected; protected so the benchmark's shell (bench/shell-worker.ts) can route with it. */
  protected get connected(): HubIndex {
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

  /** The users this Iota may serve: those with a record in this hub. */
  private get ownUsers(): Set<string> {
    return this.records.users();
  }

  /**
   * A hub from before records lived in hubs fetches them from the control once (SPEC §8.1);
   * every other hub answers from its own storage, so this costs nothing after the first time.
   */
  private recordsReady(iotaId: string): Promise<void> | undefined {
    if (!this.records.needsFetch()) return undefined;
    this.fetchingRecords ??= controlOf(this.env)
      .recordsForHub(iotaId)
      .then((records) => {
        if (records.iota) this.closeRevoked(this.records.apply(records));
        this.records.dropLegacy();
      })
      .finally(() => {
        this.fetchingRecords = null;
      });
    return this.fetchingRecords;
  }

  // ---- SocketHost hooks ----------------------------------------------------------------

  protected admit(request: Request, deadline: number): Omit<HubAttachment, "conn"> | Response {
    const [, , role, id] = new URL(request.url).pathname.split("/");
    const iotaId = normalizeId(id);
    if ((role !== "iota" && role !== "client") || !iotaId) return jsonError(404, "not_found", "no such endpoint");
    return { phase: "pending", deadline, role, iotaId };
  }

  protected rateSettings(attachment: HubAttachment): RateSettings {
    return attachment.role === "iota" ? iotaRateSettings(this.config) : peerRateSettings(this.config);
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
    const request = IotaIdentificationData.safeParse(data);
    const required = this.config.IOTA_AUTH === "required";
    const keyHash = request.success ? keyHashSchema.safeParse(request.data.private_key_hash) : null;
    if (!request.success || (required && !keyHash?.success)) return this.refuseIota(ws, attachment, id, "ill_typed");
    if (normalizeId(request.data.iota_id) !== attachment.iotaId) return this.refuseIota(ws, attachment, id, "id_mismatch");
    const listed = parseIdList(request.data.user_ids) ?? [];
    if (!required) log("iota_auth_off", { ...this.logFields(attachment), level: "warn" });
    try {
      await this.recordsReady(attachment.iotaId);
    } catch {
      return this.directoryFailed(ws, attachment, errorFrame("error_not_authenticated", id, "identification failed"));
    }
    const checked = this.records.iota()?.digest ?? null;
    if (required && keyHash?.success) {
      const matches = await credentialMatches(keyHash.data, checked ?? NO_CREDENTIAL);
      if (!checked) return this.refuseIota(ws, attachment, id, "unknown_id");
      // Read again after the wait: a push that re-keyed or removed the Iota during it decides.
      if (!matches || this.records.iota()?.digest !== checked) return this.refuseIota(ws, attachment, id, "bad_credential");
    } else if (!checked) {
      return this.refuseIota(ws, attachment, id, "unknown_id");
    }
    if (ws.readyState !== WebSocket.OPEN) return;

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

  private refuseIota(ws: WebSocket, attachment: HubAttachment, id: string | undefined, reason: RefusalReason): void {
    this.sendFrame(ws, errorFrame("error_not_authenticated", id, "identification refused"));
    log("refused", { ...this.logFields(attachment), reason });
    this.drop(ws, CLOSE.refused, "identification refused");
  }

  private async identifyClient(ws: WebSocket, attachment: HubAttachment, id: string | undefined, data: unknown): Promise<void> {
    const request = ClientIdentificationData.safeParse(data);
    const userId = request.success ? normalizeId(request.data.user_id) : null;
    const keyHash = request.success ? keyHashSchema.safeParse(request.data.private_key_hash) : null;
    if (!request.success || !userId || !keyHash?.success) return this.refuseClient(ws, attachment, id, "ill_typed");
    if (normalizeId(request.data.iota_id) !== attachment.iotaId) return this.refuseClient(ws, attachment, id, "id_mismatch");
    try {
      await this.recordsReady(attachment.iotaId);
    } catch {
      return this.directoryFailed(ws, attachment, clientRefusal(id));
    }
    // A user's record counts only while its Iota exists (SPEC §8.2: its users are then owned by nobody).
    const current = () => (this.records.iota()?.digest ? this.records.userDigest(userId) : null);
    const checked = current();
    const matches = await credentialMatches(keyHash.data, checked ?? NO_CREDENTIAL);
    if (!checked) return this.refuseClient(ws, attachment, id, "unknown_id");
    // Read again after the wait: a push that revoked the credential during it decides.
    if (!matches || current() !== checked) return this.refuseClient(ws, attachment, id, "bad_credential");
    if (ws.readyState !== WebSocket.OPEN) return;

    // Checked after the wait: other devices may have identified meanwhile (SPEC §4).
    const index = this.connected;
    const devices = index.clients.get(userId);
    if (devices && devices.size >= this.config.MAX_DEVICES_PER_USER) {
      return this.refuseAtLimit(ws, attachment, userId, "error_too_many_connections", id, "too many devices for this user", "too many connections");
    }
    attachment.phase = "identified";
    attachment.userId = userId;
    this.store(ws, attachment);
    addTo(index.clients, userId, ws);
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

  private refuseClient(ws: WebSocket, attachment: HubAttachment, id: string | undefined, reason: RefusalReason): void {
    this.sendFrame(ws, clientRefusal(id));
    log("refused", { ...this.logFields(attachment), reason });
    this.drop(ws, CLOSE.refused, "identification refused");
  }

  /** The directory could not answer: refuse without blaming the credential, so the peer retries. */
  private directoryFailed(ws: WebSocket, attachment: HubAttachment, refusal: string): void {
    this.sendFrame(ws, refusal);
    log("refused", { ...this.logFields(attachment), reason: "directory_unavailable", level: "error" });
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
    if (!this.routes.has(receiverId)) {
      if (this.ownUsers.has(receiverId)) return this.toUser(ws, attachment, receiverId, inbound);
      if (this.isKnownUnknown(receiverId)) return this.invalidUser(ws, attachment, envelope.id, receiverId);
    }
    const pending = this.lookups.get(ws) ?? 0;
    if (pending >= this.config.MAX_PENDING_LOOKUPS) {
      return this.reject(ws, attachment, "error_rate_limited", envelope.id, "too many lookups in flight; message dropped");
    }
    this.lookups.set(ws, pending + 1);
    this.queueRoute(receiverId, () =>
      this.routeUncached(ws, attachment, receiverId, inbound).finally(() => this.lookups.set(ws, (this.lookups.get(ws) ?? 1) - 1)),
    );
  }

  private invalidUser(ws: WebSocket, attachment: HubAttachment, id: string | undefined, receiverId: string): void {
    this.reject(ws, attachment, "error_invalid_user_id", id, INVALID_USER_MESSAGE, { receiver_id: receiverId });
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
    const { envelope } = inbound;
    const senderId = normalizeId(envelope.sender_id);
    const hinted = this.ownerHints.has(receiverId);
    let owner = await this.ownerOf(receiverId, attachment.iotaId);
    for (let retried = false; ; retried = true) {
      if (owner === attachment.iotaId) return this.toUser(ws, attachment, receiverId, inbound);
      // The sender is checked against this hub's own records: no lookup (SPEC §5.3).
      const sender = owner && senderId && this.ownUsers.has(senderId) ? senderId : null;
      // The forward carries the sender_id that was checked, in lower case (SPEC §2, §5.3 r2).
      const delivery = owner && sender ? await this.forward(owner, receiverId, withSenderId(inbound, sender)) : null;
      if (delivery === "delivered") return;
      if (delivery === "no_iota") {
        return this.reject(ws, attachment, "error_no_iota", envelope.id, "the receiver's Iota is not connected", { receiver_id: receiverId });
      }
      // A refusal that rests on a remembered owner may be stale (the user moved, SPEC §5.2,
      // §5.3): drop the hint and decide once more on the user record's answer.
      if (retried || !(hinted || delivery === "not_owner")) return this.invalidUser(ws, attachment, envelope.id, receiverId);
      this.ownerHints.delete(receiverId);
      owner = await this.ownerOf(receiverId, attachment.iotaId);
    }
  }

  private isKnownUnknown(userId: string): boolean {
    const until = this.unknown.get(userId);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.unknown.delete(userId);
    return false;
  }

  /** Asks the receiver's own record (SPEC §8.1 r2): lookups spread over users, never one object. */
  private async ownerOf(userId: string, iotaId: string): Promise<Owner> {
    const hint = this.ownerHints.get(userId);
    if (hint) return hint;
    if (this.isKnownUnknown(userId)) return undefined;
    const owner = await this.verified(() => userRecordOf(this.env, userId).ownerOf(iotaId));
    if (owner) {
      if (this.ownerHints.size >= MAX_OWNER_HINTS) this.ownerHints.clear();
      this.ownerHints.set(userId, owner);
    } else if (owner === undefined) {
      if (this.unknown.size >= MAX_UNKNOWN) this.unknown.clear();
      this.unknown.set(userId, Date.now() + UNKNOWN_FOR_MS);
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
    await this.recordsReady(iotaId);
    if (!this.ownUsers.has(receiverId)) return "not_owner";
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
   * Stores records the control pushed (SPEC §8.1 r2) and closes what they revoked before
   * returning, so the admin reply follows the close frames (SPEC §8.2). A push that is not
   * newer than what the hub holds changes nothing.
   */
  async applyRecords(iotaId: string, records: HubRecords): Promise<void> {
    // A hub from before records lived in hubs takes all of its records first, so a push of
    // one record never makes it look complete.
    await this.recordsReady(iotaId);
    const applied = this.records.apply(records);
    for (const userId of applied.usersAdded) {
      this.unknown.delete(userId);
      this.ownerHints.delete(userId);
    }
    this.closeRevoked(applied);
  }

  /** The user record of a user this hub remembered as unknown says it exists now (SPEC §5.2 r2). */
  forgetUnknown(userId: string): void {
    this.unknown.delete(userId);
  }

  /** Closes what a change revoked; revoked sockets get no frame before their close. */
  private closeRevoked({ iotaRevoked, iotaRemoved, usersRevoked }: Applied): void {
    if (!iotaRevoked && usersRevoked.length === 0) return;
    this.noteRevocation();
    const index = this.connected;
    const closing = new Set<WebSocket>();
    if (iotaRemoved) {
      for (const devices of index.clients.values()) for (const device of devices) closing.add(device);
      // Hints may name this Iota as the owner of its former users; none of them is any more.
      this.ownerHints.clear();
    }
    for (const userId of usersRevoked) {
      for (const device of index.clients.get(userId) ?? []) closing.add(device);
      this.ownerHints.delete(userId);
    }
    const revokedIota = iotaRevoked ? index.iota : null;
    // Peers that stay learn who left; peers that are being closed are told nothing.
    if (revokedIota) this.drop(revokedIota, CLOSE.refused, "credential revoked", !iotaRemoved);
    for (const device of closing) this.drop(device, CLOSE.refused, "credential revoked", !iotaRemoved);
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

