/**
 * The schemas of record for what a peer sends the Omikron itself (SPEC §4, §7): the
 * identification `data` of each role, call and user states, and a state change. Runtime-free,
 * so the Worker (hub, call room), the admin API and the peer library (under Node type
 * stripping too) validate with these very schemas.
 *
 * They are as lenient as the Worker is: ids and credentials are typed as strings only, because
 * the Worker checks them afterwards, where which check fails names the refusal (`ill_typed` or
 * `id_mismatch`, SPEC §11 r2) and IOTA_AUTH decides whether an Iota's credential counts.
 */
import { z } from "zod";

/** SPEC §7: a member's call state; absent at join means `active`. */
export const CallStateSchema = z.enum(["active", "streaming", "muted", "deafed"]);
export type CallState = z.infer<typeof CallStateSchema>;
/** SPEC §7: a member's free-form user state; absent at join means `online`. */
export const UserStateSchema = z.string().min(1).max(64);

/** SPEC §2: an id list is a comma-separated string (each item followed by a comma) or an array. */
export const IdListSchema = z.union([z.string(), z.array(z.string())]);

/** SPEC §4.1, on /ws/iota/:iota_id. */
export const IotaIdentificationData = z.looseObject({
  iota_id: z.string(),
  user_ids: IdListSchema,
  private_key_hash: z.string().optional(),
});

/** SPEC §4.2, on /ws/client/:iota_id. */
export const ClientIdentificationData = z.looseObject({
  iota_id: z.string(),
  user_id: z.string(),
  private_key_hash: z.string(),
});

/** SPEC §7, on /ws/call/:call_id; an invalid state refuses the join. */
export const CallIdentificationData = z.looseObject({
  call_id: z.string(),
  user_id: z.string(),
  private_key_hash: z.string(),
  call_state: CallStateSchema.default("active"),
  user_state: UserStateSchema.default("online"),
});

/** SPEC §7: a call member's `client_changed`; either field may be left out. */
export const StateChangeData = z.looseObject({
  call_state: CallStateSchema.optional(),
  user_state: UserStateSchema.optional(),
});
