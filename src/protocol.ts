/**
 * The wire protocol (SPEC §2, §6, §9): parsing and validating envelopes, id and id-list
 * rules, and every frame the Omikron writes. Pure: no Durable Object, no I/O.
 */
import { z } from "zod";
import { type ScannedEnvelope, scanEnvelope } from "./envelope-scan.ts";

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

/** A UUID-shaped string as written, any case; `uuidSchema` also normalizes it. */
export const uuidStringSchema = z.string().regex(UUID_PATTERN, "must be a UUID");
export const uuidSchema = uuidStringSchema.transform((id) => id.toLowerCase());

/** A credential as presented: 64 hex characters, any case; `keyHashSchema` also normalizes it. */
export const keyHashStringSchema = z.string().regex(/^[0-9a-f]{64}$/i, "must be 64 hex characters");
export const keyHashSchema = keyHashStringSchema.transform((hash) => hash.toLowerCase());

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
 * The schema of record for an inbound envelope (SPEC §2): a loose object, so unknown keys are
 * allowed, while the fields the Omikron reads are typed. The relay checks frames with
 * `scanEnvelope`, which the property test holds to `JSON.parse` + this schema (plus the r2
 * rule against repeated top-level keys, which no parse result can show).
 */
export const EnvelopeSchema = z.looseObject({
  type: z.string(),
  id: z.string().max(128).optional(),
  data: z.looseObject({}).optional(),
  receiver_id: z.string().optional(),
  sender_id: z.string().optional(),
});

/** The top-level fields the Omikron reads from an inbound envelope. */
export interface Envelope {
  type: string;
  id: string | undefined;
  receiver_id: string | undefined;
  sender_id: string | undefined;
}

/**
 * A valid inbound frame: its text, the fields read from it, and where the relay splices it.
 * `data` is parsed only when read (a ping, a state change, an identification), never for a
 * frame that is only relayed.
 */
export class InboundFrame {
  readonly ok = true;
  readonly text: string;
  readonly envelope: Envelope;
  readonly scan: ScannedEnvelope;
  private parsedData: Record<string, unknown> | null = null;

  constructor(text: string, scan: ScannedEnvelope) {
    this.text = text;
    this.scan = scan;
    this.envelope = { type: scan.type, id: scan.id, receiver_id: scan.receiverId, sender_id: scan.senderId };
  }

  /** The envelope's `data` (SPEC §2: missing means `{}`). */
  get data(): Record<string, unknown> {
    this.parsedData ??=
      this.scan.dataStart < 0 ? {} : (JSON.parse(this.text.slice(this.scan.dataStart, this.scan.dataEnd)) as Record<string, unknown>);
    return this.parsedData;
  }
}

export type Decoded =
  | InboundFrame
  /** `identification` marks an attempt that is not a valid envelope (SPEC §4: refused as ill-typed). */
  | { ok: false; id: string | undefined; identification: boolean };

/** Checks one text frame (SPEC §2). Never throws: anything malformed comes back as `ok: false`. */
export function decode(text: string): Decoded {
  const scan = scanEnvelope(text);
  return scan.ok ? new InboundFrame(text, scan) : scan;
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
 * numbers beyond double precision all pass byte for byte. The scan says where the value sits
 * (a valid envelope has at most one top-level `sender_id`) or where the member goes.
 * `senderId` is always an id this Omikron checked and lower-cased, a UUID, so it is written
 * between quotes as it is: a UUID has nothing JSON escapes (this runs on every relayed frame).
 */
export function withSenderId(frame: InboundFrame, senderId: string): string {
  const { text, scan } = frame;
  if (scan.senderStart >= 0) return `${text.slice(0, scan.senderStart)}"${senderId}"${text.slice(scan.senderEnd)}`;
  return `${text.slice(0, scan.insertAt)},"sender_id":"${senderId}"${text.slice(scan.insertAt)}`;
}
