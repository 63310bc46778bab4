/**
 * The three kinds of peer (SPEC §4.1, §4.2, §7): how each identifies and what its accepted
 * identification looks like. `connectIota`, `connectClient` and `joinCall` resolve once the
 * Omikron has accepted, and reject with RefusedError (or ConnectionClosedError) otherwise.
 */
import type { CallJoined, CallState, ClientIdentified, IotaIdentified } from "./schemas.ts";
import { type Frame, type OutboundFrame, Peer, type PeerOptions } from "./socket.ts";
import { readIdList, writeIdList } from "./wire.ts";

export interface IotaOptions extends PeerOptions {
  iotaId: string;
  /** The users this Iota hosts (SPEC §4.1); each is accepted or denied by the Omikron. */
  userIds: readonly string[];
  /** The Iota's credential: 64 hex characters (see `privateKeyHash`). */
  privateKeyHash: string;
}

export interface ClientOptions extends PeerOptions {
  iotaId: string;
  userId: string;
  privateKeyHash: string;
}

export interface CallOptions extends PeerOptions {
  callId: string;
  userId: string;
  privateKeyHash: string;
  callState?: CallState;
  userState?: string;
}

export interface MemberState {
  call_state: CallState;
  user_state: string;
}

/**
 * The answer to an identification accepts it when it is an identification_response that is
 * not a refusal (SPEC §4: refusals are error frames, or both flags false). The full shapes are
 * in schemas.ts; the runtime checks only what tells acceptance from refusal.
 */
function isResponse(frame: Frame): frame is Frame & { data: Record<string, unknown> } {
  return frame.type === "identification_response" && typeof frame.data === "object";
}

export class IotaPeer extends Peer<IotaIdentified & Frame> {
  readonly #options: IotaOptions;

  constructor(options: IotaOptions) {
    super(`/ws/iota/${options.iotaId}`, options);
    this.#options = options;
  }

  /** The users the Omikron accepted at the latest identification. */
  get acceptedUserIds(): string[] {
    return readIdList(this.identification?.data.accepted_profiles ?? "");
  }

  /** The users it denied (unknown, another Iota's, or not a UUID). */
  get deniedUserIds(): string[] {
    return readIdList(this.identification?.data.denied_profiles ?? "");
  }

  protected identificationFrame(id: string): OutboundFrame {
    const { iotaId, userIds, privateKeyHash } = this.#options;
    return {
      id,
      type: "identification",
      log: { message: "Iota identifying", log_level: 0 },
      data: { iota_id: iotaId, user_ids: writeIdList(userIds), private_key_hash: privateKeyHash },
    };
  }

  protected accepted(frame: Frame): (IotaIdentified & Frame) | null {
    return isResponse(frame) && typeof frame.data.accepted_profiles === "string" ? (frame as IotaIdentified & Frame) : null;
  }
}

export class ClientPeer extends Peer<ClientIdentified & Frame> {
  readonly #options: ClientOptions;

  constructor(options: ClientOptions) {
    super(`/ws/client/${options.iotaId}`, options);
    this.#options = options;
  }

  /** Whether the Iota was connected when this client (last) identified. */
  get iotaOnlineAtIdentification(): boolean {
    return this.identification?.data.iota_online ?? false;
  }

  protected identificationFrame(id: string): OutboundFrame {
    const { iotaId, userId, privateKeyHash } = this.#options;
    return {
      id,
      type: "identification",
      log: { message: "Client identifying", log_level: 0 },
      data: { iota_id: iotaId, user_id: userId, private_key_hash: privateKeyHash },
    };
  }

  protected accepted(frame: Frame): (ClientIdentified & Frame) | null {
    return isResponse(frame) && frame.data.accepted === true ? (frame as ClientIdentified & Frame) : null;
  }
}

export class CallPeer extends Peer<CallJoined & Frame> {
  readonly #options: CallOptions;
  /** Every member now in the call (this one included), kept current from the pushes. */
  readonly members = new Map<string, MemberState>();

  constructor(options: CallOptions) {
    super(`/ws/call/${options.callId}`, options);
    this.#options = { ...options };
  }

  /**
   * Changes this member's states (SPEC §7 `client_changed`); the others are told, the sender
   * gets no reply. Remembered, so a rejoin after a reconnect presents the current states.
   */
  change(states: { call_state?: CallState; user_state?: string }): void {
    this.send({ type: "client_changed", data: states });
    if (states.call_state) this.#options.callState = states.call_state;
    if (states.user_state) this.#options.userState = states.user_state;
    const own = this.members.get(this.#options.userId.toLowerCase());
    if (own) Object.assign(own, states);
  }

  protected identificationFrame(id: string): OutboundFrame {
    const { callId, userId, privateKeyHash, callState, userState } = this.#options;
    const data: Record<string, unknown> = { call_id: callId, user_id: userId, private_key_hash: privateKeyHash };
    if (callState) data.call_state = callState;
    if (userState) data.user_state = userState;
    return { id, type: "identification", log: { message: "Client identifying", log_level: 0 }, data };
  }

  protected accepted(frame: Frame): (CallJoined & Frame) | null {
    const joined = isResponse(frame) && frame.data.accepted === true ? (frame as CallJoined & Frame) : null;
    if (joined) {
      this.members.clear();
      for (const [userId, callState] of Object.entries(joined.data.user_ids)) {
        this.members.set(userId, { call_state: callState, user_state: joined.data.user_states[userId] ?? "online" });
      }
    }
    return joined;
  }

  protected override observe(frame: Frame): void {
    const userId = typeof frame.data?.user_id === "string" ? frame.data.user_id : null;
    if (!userId) return;
    if (frame.type === "client_disconnected") this.members.delete(userId);
    else if (frame.type === "client_connected" || frame.type === "client_changed") {
      const { call_state, user_state } = frame.data as Partial<MemberState>;
      const member = this.members.get(userId) ?? { call_state: "active", user_state: "online" };
      if (call_state) member.call_state = call_state;
      if (user_state) member.user_state = user_state;
      this.members.set(userId, member);
    }
  }
}

/** Connects and identifies an Iota; resolves once the Omikron accepted it. */
export function connectIota(options: IotaOptions): Promise<IotaPeer> {
  return new IotaPeer(options).start();
}

/** Connects and identifies a client (one device of a user). */
export function connectClient(options: ClientOptions): Promise<ClientPeer> {
  return new ClientPeer(options).start();
}

/** Joins a call room as a member. */
export function joinCall(options: CallOptions): Promise<CallPeer> {
  return new CallPeer(options).start();
}
