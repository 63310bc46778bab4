/**
 * Argument checks the record commands share, made with the Worker's own schemas before any
 * request, so a malformed id or hash is a usage error (exit 2) and never reaches the relay.
 */
import type { z } from "zod";
import { directoryIdSchema, listLimitSchema } from "../../admin/schemas.ts";
import { keyHashSchema, uuidSchema } from "../../protocol.ts";
import type { OptionDef } from "../command.ts";
import { usageError } from "../exit.ts";
import { newPrivateKey, privateKeyHash } from "../keys.ts";

function check<S extends z.ZodType>(schema: S, what: string, raw: string | undefined): z.infer<S> {
  if (raw === undefined && !schema.safeParse(undefined).success) throw usageError(`${what} is required`);
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  throw usageError(`${what}: ${result.error.issues[0]?.message ?? "invalid"} (got ${JSON.stringify(raw)})`);
}

/** A directory id (a UUID other than the Omikron's own), lower-cased. */
export function directoryId(what: string, raw: string | undefined): string {
  return check(directoryIdSchema, what, raw);
}

/** Any UUID, lower-cased: a call id (any UUID names a call, as on /ws/call/:call_id). */
export function anyId(what: string, raw: string | undefined): string {
  return check(uuidSchema, what, raw);
}

export function listLimit(raw: string | undefined): number {
  return check(listLimitSchema, "--limit", raw);
}

/**
 * A request body checked with the schema the Worker validates it with (`src/admin/schemas.ts`),
 * so the CLI refuses exactly what the relay would; `flags` names the option behind each field.
 */
export function requestBody<S extends z.ZodType>(schema: S, body: Record<string, string>, flags: Record<string, string>): z.infer<S> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = String(issue?.path[0] ?? "body");
  throw usageError(`${flags[field] ?? field}: ${issue?.message ?? "invalid"} (got ${JSON.stringify(body[field])})`);
}

export const CREDENTIAL_OPTIONS = {
  "key-hash": { type: "string", value: "<hex>", description: "the private_key_hash the peer will present (64 hex)" },
  "private-key": { type: "string", value: "<text>", description: "the peer's private key text; its private_key_hash is derived" },
} as const satisfies Record<string, OptionDef>;

export interface Credential {
  private_key_hash: string;
  /** Set when the CLI generated the key: the only time it is ever shown. */
  private_key?: string;
}

/** The credential named by --key-hash or --private-key, or a newly generated one. */
export async function credential(values: { "key-hash"?: string; "private-key"?: string }, generate: boolean): Promise<Credential> {
  if (values["key-hash"] !== undefined && values["private-key"] !== undefined) {
    throw usageError("give --key-hash or --private-key, not both");
  }
  if (values["key-hash"] !== undefined) return { private_key_hash: check(keyHashSchema, "--key-hash", values["key-hash"]) };
  if (values["private-key"] !== undefined) {
    if (values["private-key"] === "") throw usageError("--private-key: must not be empty");
    return { private_key_hash: await privateKeyHash(values["private-key"]) };
  }
  if (!generate) throw usageError("give --key-hash or --private-key");
  const privateKey = newPrivateKey();
  return { private_key_hash: await privateKeyHash(privateKey), private_key: privateKey };
}
