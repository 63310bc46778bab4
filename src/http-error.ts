/** The one shape of every HTTP error the Omikron answers (SPEC §3): JSON, never HTML or a stack. */
export function jsonError(status: number, error: string, message: string, extra: Record<string, string> = {}): Response {
  return Response.json({ error, message, ...extra }, { status });
}
