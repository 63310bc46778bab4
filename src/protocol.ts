/**
 * The wire protocol (SPEC §2, §6, §9): parsing and validating envelopes, id and id-list
 * rules, and every frame the Omikron writes. Pure: no Durable Object, no I/O.
 */
import { z } from "zod";

export const OMIKRON_ID = "22222222-2222-2222-2222-222222222222";

const UUID_PATTERN = /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/i;

/** SPEC §2: any UUID-shaped string, no version check (so OMIKRON_ID is one). */
export function isUuid(value: unknown): value is string {
  return typeof value === "string" && UUID_PATTERN.test(value);
}

/** Lower-cases a UUID-shaped id, or answers null: ids are compared case-insensitively. */
export function normalizeId(value: unknown): string | null {
  return isUuid(value) ? value.toLowerCase() : null;
}

export const uuidSchema = z
  .string()
  .regex(UUID_PATTERN, "must be a UUID")
  .transform((id) => id.toLowerCase());

/** A credential as presented: 64 hex characters, any case. */
export const keyHashSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/i, "must be 64 hex characters")
  .transform((hash) => hash.toLowerCase());

/** Types only the Omikron writes; a peer sending one gets error_invalid_data (SPEC §2). */
const RESERVED_TYPES: ReadonlySet<string> = new Set([
  "identification_response",
  "pong",
  "client_connected",
  "client_disconnected",
  "iota_connected",
  "iota_disconnected",
]);

export function isReservedType(type: string): boolean {
  return RESERVED_TYPES.has(type);
}

/**
 * A loose object: unknown keys are allowed (and the relay forwards the original text, so they
 * are never lost), while the fields the Omikron reads are typed.
 */
const EnvelopeSchema = z.looseObject({
  type: z.string(),
  id: z.string().max(128).optional(),
  data: z.looseObject({}).optional(),
  receiver_id: z.string().optional(),
  sender_id: z.string().optional(),
});

export type Envelope = z.infer<typeof EnvelopeSchema>;

export type Decoded =
  /** `raw` is the frame as parsed, kept for relaying so nothing the sender wrote is lost. */
  | { ok: true; envelope: Envelope; data: Record<string, unknown>; raw: Record<string, unknown> }
  /** `object` is set when the frame was a JSON object, so identification attempts are recognised. */
  | { ok: false; id: string | undefined; object: Record<string, unknown> | null };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A request id worth echoing: a string of at most 128 characters. */
function echoableId(value: unknown): string | undefined {
  return typeof value === "string" && value.length <= 128 ? value : undefined;
}

/** Parses one text frame. Never throws: anything malformed comes back as `ok: false`. */
export function decode(text: string): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, id: undefined, object: null };
  }
  if (!isPlainObject(value)) return { ok: false, id: undefined, object: null };
  const result = EnvelopeSchema.safeParse(value);
  if (!result.success) return { ok: false, id: echoableId(value.id), object: value };
  return { ok: true, envelope: result.data, data: result.data.data ?? {}, raw: value };
}

/**
 * Parses an id list (SPEC §2): a comma-separated string, leniently trimmed, or a JSON array of
 * strings. Answers null when the value is neither.
 */
export function parseIdList(value: unknown): string[] | null {
  let items: unknown[];
  if (typeof value === "string") items = value.split(",");
  else if (Array.isArray(value)) items = value;
  else return null;
  const ids: string[] = [];
  for (const item of items) {
    if (typeof item !== "string") return null;
    const trimmed = item.trim();
    if (trimmed) ids.push(trimmed);
  }
  return ids;
}

/** Writes an id list as the protocol shows it: every item followed by a comma; empty is "". */
export function writeIdList(ids: Iterable<string>): string {
  let out = "";
  for (const id of ids) out += `${id},`;
  return out;
}

/**
 * SPEC §6: `last_ping` is optional; when present it is a finite number >= -1 or a
 * one-element array holding one. Answers the number, `undefined` when absent, or null when invalid.
 */
export function parseLastPing(data: Record<string, unknown>): number | undefined | null {
  if (!("last_ping" in data) || data.last_ping === undefined) return undefined;
  let value = data.last_ping;
  if (Array.isArray(value)) {
    if (value.length !== 1) return null;
    value = value[0];
  }
  return typeof value === "number" && Number.isFinite(value) && value >= -1 ? value : null;
}

export type LogLevel = -1 | 0 | 1 | 2;

/** A frame the Omikron writes: always id, type, log, data, and OMIKRON_ID as sender. */
export function frame(
  type: string,
  id: string | undefined,
  message: string,
  logLevel: LogLevel,
  data: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    id: id ?? crypto.randomUUID(),
    type,
    log: { message, log_level: logLevel },
    data,
    sender_id: OMIKRON_ID,
  });
}

/** The §9 error vocabulary with each error's log level. */
export const ERRORS = {
  error_not_authenticated: 2,
  error_invalid_data: 2,
  error_no_iota: 1,
  error_user_offline: 1,
  error_invalid_user_id: 2,
  error_too_many_connections: 2,
  error_call_full: 2,
  error_rate_limited: 1,
  error_too_large: 2,
} as const satisfies Record<string, LogLevel>;

export type ErrorType = keyof typeof ERRORS;

/** An error reply (SPEC §9), echoing the request id where there is one. */
export function errorFrame(
  type: ErrorType,
  id: string | undefined,
  message: string,
  data: Record<string, unknown> = {},
): string {
  return frame(type, id, message, ERRORS[type], data);
}

/**
 * The relayed form of a frame (SPEC §2): the sender's text with only `sender_id` added or
 * overwritten, so key order (integer-like keys included), unknown fields, whitespace and
 * numbers beyond double precision all pass byte for byte. `raw` is the parsed frame, used only
 * to know whether the sender wrote a `sender_id`.
 */
export function withSenderId(text: string, raw: Record<string, unknown>, senderId: string): string {
  const value = JSON.stringify(senderId);
  if (Object.hasOwn(raw, "sender_id")) return replaceTopLevelSenderId(text, value);
  const body = text.slice(0, text.lastIndexOf("}")).trimEnd();
  return `${body}${body.endsWith("{") ? "" : ","}"sender_id":${value}}`;
}

/** Index just past the string literal that opens at `start`. */
function endOfString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\") i++;
    else if (ch === '"') return i + 1;
  }
  return text.length;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && /\s/.test(text[i] ?? "")) i++;
  return i;
}

/**
 * Rewrites the value of every top-level `sender_id` member of valid JSON text. Every one,
 * because duplicate keys are legal and a parser keeps the last; a non-string duplicate is
 * left alone, since a valid envelope's last `sender_id` is a string and that one is rewritten.
 */
function replaceTopLevelSenderId(text: string, value: string): string {
  let out = "";
  let copied = 0;
  let depth = 0;
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      const end = endOfString(text, i);
      if (depth === 1 && keyNext) {
        keyNext = false;
        const valueStart = skipSpace(text, skipSpace(text, end) + 1);
        if (JSON.parse(text.slice(i, end)) === "sender_id" && text[valueStart] === '"') {
          const valueEnd = endOfString(text, valueStart);
          out += text.slice(copied, valueStart) + value;
          copied = valueEnd;
          i = valueEnd - 1;
          continue;
        }
      }
      i = end - 1;
    } else if (ch === "{" || ch === "[") {
      depth++;
      keyNext = ch === "{" && depth === 1;
    } else if (ch === "}" || ch === "]") {
      depth--;
    } else if (ch === "," && depth === 1) {
      keyNext = true;
    }
  }
  return out + text.slice(copied);
}
