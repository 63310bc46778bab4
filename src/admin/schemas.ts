/**
 * The admin API's shapes (SPEC §8.2) as zod schemas, runtime-free so the Worker (which
 * validates requests with them) and the Node-side operator CLI (which validates its input
 * before sending, and the replies it reads) share one definition.
 */
import { z } from "zod";
import { OMIKRON_ID, keyHashSchema, uuidSchema } from "../protocol.ts";
import { CallStateSchema } from "../protocol-schemas.ts";

/** A directory id: a UUID other than the Omikron's own. */
export const directoryIdSchema = uuidSchema.refine((id) => id !== OMIKRON_ID, "is reserved for the Omikron");

export const IotaBody = z.object({ private_key_hash: keyHashSchema });
export const UserBody = z.object({ iota_id: directoryIdSchema, private_key_hash: keyHashSchema });

/** `limit` of a listing (SPEC §8.2 r2): 1–1000 in decimal digits; absent means 100. */
export const listLimitSchema = z
  .string()
  .regex(/^[1-9][0-9]{0,3}$/, "must be an integer from 1 to 1000")
  .transform(Number)
  .refine((limit) => limit <= 1000, "must be an integer from 1 to 1000")
  .default(100);

/** Replies, as a client reads them. */
export const IotaRecordSchema = z.object({ iota_id: z.string(), users: z.array(z.string()) });
export const UserRecordSchema = z.object({ user_id: z.string(), iota_id: z.string().nullable() });
export const IotaPageSchema = z.object({
  iotas: z.array(z.object({ iota_id: z.string(), users: z.number() })),
  next_cursor: z.string().nullable(),
});
export const UserPageSchema = z.object({ users: z.array(UserRecordSchema), next_cursor: z.string().nullable() });
export const PresenceSchema = z.object({
  iota_id: z.string(),
  iota_online: z.boolean(),
  users_online: z.array(z.string()),
  client_sockets: z.number(),
});
export const CallMembersSchema = z.object({
  call_id: z.string(),
  members: z.record(z.string(), z.object({ call_state: CallStateSchema, user_state: z.string() })),
});
/** Every HTTP error body (SPEC §3). */
export const ErrorBodySchema = z.looseObject({ error: z.string(), message: z.string().optional(), field: z.string().optional() });

export type IotaRecord = z.infer<typeof IotaRecordSchema>;
export type UserRecord = z.infer<typeof UserRecordSchema>;
export type IotaPage = z.infer<typeof IotaPageSchema>;
export type UserPage = z.infer<typeof UserPageSchema>;
export type Presence = z.infer<typeof PresenceSchema>;
export type CallMembers = z.infer<typeof CallMembersSchema>;
