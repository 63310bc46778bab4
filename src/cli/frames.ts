/**
 * One line per frame, for people: its type, who sent it to whom (ids replaced by names where
 * the caller knows them), and its data. Used by `connect` and the demo.
 */
import { type Frame, OMIKRON_ID } from "../peer/index.ts";

export type Names = ReadonlyMap<string, string>;

/** An id as a person reads it: its name, "omikron" for the relay, or the id itself. */
export function nameOf(id: string, names: Names = new Map()): string {
  const lower = id.toLowerCase();
  if (lower === OMIKRON_ID) return "omikron";
  return names.get(lower) ?? id;
}

export function describeFrame(frame: Frame, names?: Names): string {
  const parts = [frame.type];
  if (frame.sender_id !== undefined) parts.push(`from ${nameOf(frame.sender_id, names)}`);
  if (frame.receiver_id !== undefined) parts.push(`to ${nameOf(frame.receiver_id, names)}`);
  const data = frame.data && Object.keys(frame.data).length > 0 ? JSON.stringify(frame.data) : "";
  return data ? `${parts.join(" ")}  ${data}` : parts.join(" ");
}
