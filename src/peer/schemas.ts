/**
 * Every frame a peer exchanges with the Omikron, as zod schemas and the types inferred from
 * them: what a peer sends (identifications, pings) and what the Omikron writes (identification
 * responses, pongs, pushes, errors). The peer library takes its types from here; its runtime
 * does not load zod (a browser bundle would grow by ~450 kB), so the schemas are a separate
 * entry, `omikron/peer/schemas`, for peers that validate, and for the test that holds
 * docs/protocol.md to them. The envelope rules themselves are the Worker's codec
 * (`src/protocol.ts`); these schemas name the fields of each type.
 */
import { z } from "zod";
import { ERRORS, OMIKRON_ID, keyHashStringSchema as keyHash, uuidStringSchema as uuid } from "../protocol.ts";
import {
  CallIdentificationData,
  CallStateSchema,
  ClientIdentificationData,
  IotaIdentificationData,
  StateChangeData,
} from "../protocol-schemas.ts";

export { CallStateSchema, type CallState, UserStateSchema } from "../protocol-schemas.ts";

const logField = z.object({ message: z.string(), log_level: z.union([z.literal(-1), z.literal(0), z.literal(1), z.literal(2)]) });
/** SPEC §6: `last_ping` is a number >= -1 or a one-element array of one. */
const lastPing = z.union([z.number().min(-1), z.tuple([z.number().min(-1)])]);

/**
 * Any frame a peer receives: the envelope fields typed, every other field kept (a relayed
 * frame is the sender's object, SPEC §2, so even `id` may be missing).
 */
export const FrameSchema = z.looseObject({
  type: z.string(),
  id: z.string().optional(),
  log: z.looseObject({ message: z.string(), log_level: z.number() }).optional(),
  data: z.looseObject({}).optional(),
  receiver_id: z.string().optional(),
  sender_id: z.string().optional(),
});
export type Frame = z.infer<typeof FrameSchema>;

/** What a peer sends: the request fields around a typed `data`. */
function request<T extends z.ZodType>(type: string, data: T) {
  return z.looseObject({
    id: z.string().max(128).optional(),
    type: z.literal(type),
    log: logField.optional(),
    data,
    receiver_id: uuid.optional(),
  });
}

/** What the Omikron writes (SPEC §2): always id, type, log, data and OMIKRON_ID as sender. */
function written<T extends z.ZodType>(type: string, data: T) {
  return z.strictObject({
    id: z.string(),
    type: z.literal(type),
    log: logField,
    data,
    sender_id: z.literal(OMIKRON_ID),
  });
}

// ---- peer → Omikron ------------------------------------------------------------------------
// The Worker's own identification schemas (src/protocol-schemas.ts), with the ids and the
// credential a well-formed peer sends checked here too: the Worker checks those after parsing,
// where the failing check names its refusal.

/** SPEC §4.1, on /ws/iota/:iota_id. */
export const IotaIdentificationSchema = request(
  "identification",
  IotaIdentificationData.extend({ iota_id: uuid, private_key_hash: keyHash.optional() }),
);
/** SPEC §4.2, on /ws/client/:iota_id. */
export const ClientIdentificationSchema = request(
  "identification",
  ClientIdentificationData.extend({ iota_id: uuid, user_id: uuid, private_key_hash: keyHash }),
);
/** SPEC §7, on /ws/call/:call_id. */
export const CallIdentificationSchema = request(
  "identification",
  CallIdentificationData.extend({ call_id: uuid, user_id: uuid, private_key_hash: keyHash }),
);
/** SPEC §6: a JSON ping, on any identified socket. */
export const PingSchema = request("ping", z.looseObject({ last_ping: lastPing.optional() }).optional());
/** SPEC §7: a call member's state change (no reply). */
export const ClientChangedRequestSchema = request("client_changed", StateChangeData);

// ---- Omikron → peer ------------------------------------------------------------------------

export const IotaIdentifiedSchema = written(
  "identification_response",
  z.strictObject({ accepted_profiles: z.string(), denid_profiles: z.string(), denied_profiles: z.string() }),
);
export const ClientIdentifiedSchema = written(
  "identification_response",
  z.strictObject({ acceppted: z.literal(true), accepted: z.literal(true), iota_online: z.boolean() }),
);
export const CallJoinedSchema = written(
  "identification_response",
  z.strictObject({
    acceppted: z.literal(true),
    accepted: z.literal(true),
    user_ids: z.record(z.string(), CallStateSchema),
    user_states: z.record(z.string(), z.string()),
  }),
);
/** A client's or call member's refusal (SPEC §4.2, §7): both flags false, then close 4003 (or 1011). */
export const IdentificationRefusedSchema = written(
  "identification_response",
  z.strictObject({ acceppted: z.literal(false), accepted: z.literal(false) }),
);
export const ClientPongSchema = written("pong", z.strictObject({ last_ping: z.number() }));
export const IotaPongSchema = written("pong", z.strictObject({ user_ping: z.record(z.string(), z.number()) }));
export const CallPongSchema = written("pong", z.strictObject({}));
export const IotaConnectedSchema = written("iota_connected", z.strictObject({ iota_id: z.string() }));
export const IotaDisconnectedSchema = written("iota_disconnected", z.strictObject({ iota_id: z.string() }));
/** To an Iota: `{user_id}`; to a call member: with the joiner's states. */
export const ClientConnectedSchema = written(
  "client_connected",
  z.strictObject({ user_id: z.string(), call_state: CallStateSchema.optional(), user_state: z.string().optional() }),
);
export const ClientDisconnectedSchema = written("client_disconnected", z.strictObject({ user_id: z.string() }));
export const ClientChangedSchema = written(
  "client_changed",
  z.strictObject({ user_id: z.string(), call_state: CallStateSchema.optional(), user_state: z.string().optional() }),
);

export type ErrorType = keyof typeof ERRORS;
const errorTypes = Object.keys(ERRORS) as [ErrorType, ...ErrorType[]];
/** SPEC §9: an error reply; `data` carries useful fields (`receiver_id` of error_user_offline). */
export const ErrorFrameSchema = z.strictObject({
  id: z.string(),
  type: z.enum(errorTypes),
  log: logField,
  data: z.looseObject({}),
  sender_id: z.literal(OMIKRON_ID),
});

export type IotaIdentified = z.infer<typeof IotaIdentifiedSchema>;
export type ClientIdentified = z.infer<typeof ClientIdentifiedSchema>;
export type CallJoined = z.infer<typeof CallJoinedSchema>;
export type IotaConnected = z.infer<typeof IotaConnectedSchema>;
export type IotaDisconnected = z.infer<typeof IotaDisconnectedSchema>;
export type ClientConnected = z.infer<typeof ClientConnectedSchema>;
export type ClientDisconnected = z.infer<typeof ClientDisconnectedSchema>;
export type ClientChanged = z.infer<typeof ClientChangedSchema>;
export type ErrorFrame = z.infer<typeof ErrorFrameSchema>;

/** Pushes the Omikron starts on its own, by type: the peer library emits each as an event. */
export const PUSHES = {
  iota_connected: IotaConnectedSchema,
  iota_disconnected: IotaDisconnectedSchema,
  client_connected: ClientConnectedSchema,
  client_disconnected: ClientDisconnectedSchema,
  client_changed: ClientChangedSchema,
} as const;

/** The pushes by type, as the peer library emits them. */
export interface Pushes {
  iota_connected: IotaConnected;
  iota_disconnected: IotaDisconnected;
  client_connected: ClientConnected;
  client_disconnected: ClientDisconnected;
  client_changed: ClientChanged;
}

/** Every schema of a frame the Omikron writes, for checking an example of unknown type. */
export const OMIKRON_FRAMES = [
  IotaIdentifiedSchema,
  ClientIdentifiedSchema,
  CallJoinedSchema,
  IdentificationRefusedSchema,
  ClientPongSchema,
  IotaPongSchema,
  CallPongSchema,
  ...Object.values(PUSHES),
  ErrorFrameSchema,
] as const;

/** Every schema of a frame a peer sends to the Omikron itself (relayed frames are free-form). */
export const PEER_FRAMES = [
  IotaIdentificationSchema,
  ClientIdentificationSchema,
  CallIdentificationSchema,
  PingSchema,
  ClientChangedRequestSchema,
] as const;
