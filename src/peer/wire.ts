/**
 * The few protocol facts the peer library needs at run time, without zod (SPEC §2): the
 * Omikron's own id, the id-list format, and which types are pushes. test/peer/wire.test.ts
 * holds them to the Worker's codec and schemas so the two cannot drift.
 */
import type { Pushes } from "./schemas.ts";

export const OMIKRON_ID = "22222222-2222-2222-2222-222222222222";

/** Pushes the Omikron starts on its own; each is emitted as its own event. */
export const PUSH_TYPES: ReadonlySet<keyof Pushes> = new Set([
  "iota_connected",
  "iota_disconnected",
  "client_connected",
  "client_disconnected",
  "client_changed",
]);

/** Writes an id list as the protocol does: every item followed by a comma; empty is "". */
export function writeIdList(ids: Iterable<string>): string {
  let out = "";
  for (const id of ids) out += `${id},`;
  return out;
}

/** Reads an id list leniently: trimmed items, empty ones dropped. */
export function readIdList(list: string): string[] {
  return list
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

/** A received frame: a JSON object whose `type` is a string, or null. */
export function parseFrame(text: string): Record<string, unknown> & { type: string } | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const frame = value as Record<string, unknown>;
  return typeof frame.type === "string" ? (frame as Record<string, unknown> & { type: string }) : null;
}
