/**
 * Structured logs (SPEC §11): one JSON line per event, with ids and codes only. Callers never
 * pass credentials or message contents; keeping the field list explicit makes that reviewable.
 */
export interface LogFields {
  /** The socket's connection id, drawn at upgrade (SPEC §11 r2), so one socket's story can be followed. */
  conn?: string;
  iota_id?: string;
  user_id?: string;
  call_id?: string;
  role?: string;
  code?: number;
  reason?: string;
  error?: string;
  request_id?: string;
  receiver_id?: string;
  /** Admin writes (SPEC §8.2): the HTTP method, the record kind and id, the answered status. */
  method?: string;
  kind?: string;
  id?: string;
  status?: number;
  level?: "info" | "warn" | "error";
}

export function log(event: string, fields: LogFields = {}): void {
  const { level = "info", ...rest } = fields;
  const line = JSON.stringify({ ts: new Date().toISOString(), event, ...rest });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
