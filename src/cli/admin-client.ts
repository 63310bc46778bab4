/**
 * The admin API (SPEC §8.2) from Node: one request per call, every reply checked against its
 * schema, and every failure turned into the exit code a script can act on (`exit.ts`).
 */
import type { z } from "zod";
import { ErrorBodySchema } from "../admin/schemas.ts";
import { CliError, EXIT } from "./exit.ts";

/** An admin call that waits longer than this is reported as unreachable. */
const REQUEST_TIMEOUT_MS = 30_000;

export interface Reply<T> {
  status: number;
  body: T;
}

export class AdminClient {
  readonly baseUrl: string;
  readonly #token: string;

  constructor(baseUrl: string, token: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#token = token;
  }

  /**
   * Sends one admin request and answers its reply when the status is 2xx and the body fits
   * `schema` (no schema: a 204 with no body). Anything else is thrown as a CliError.
   */
  async request<S extends z.ZodType>(
    method: "GET" | "PUT" | "DELETE",
    path: string,
    schema: S | null,
    body?: unknown,
  ): Promise<Reply<z.infer<S>>> {
    const url = `${this.baseUrl}/admin${path}`;
    const headers: Record<string, string> = { Authorization: `Bearer ${this.#token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      throw new CliError(EXIT.unreachable, "unreachable", `cannot reach ${this.baseUrl}: ${describe(error)}`);
    }
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON (a proxy's page, say): reported below as an unexpected reply.
    }
    if (!response.ok) throw failure(response, json, `${method} /admin${path}`);
    if (schema === null) return { status: response.status, body: undefined as z.infer<S> };
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new CliError(EXIT.failed, "unexpected_reply", `${method} ${path} answered ${response.status} with an unexpected body: ${text.slice(0, 200)}`);
    }
    return { status: response.status, body: parsed.data };
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === "TimeoutError") return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
    const cause = error.cause instanceof Error ? error.cause.message : undefined;
    return cause ?? error.message;
  }
  return String(error);
}

/** Maps an error reply to its exit code: can the caller not use the API at all, or did it say no? */
function failure(response: Response, json: unknown, what: string): CliError {
  const body = ErrorBodySchema.safeParse(json);
  const error = body.success ? body.data.error : `http_${response.status}`;
  const detail = body.success ? (body.data.message ?? body.data.error) : `HTTP ${response.status}`;
  const message = `${what}: ${response.status} ${error}${detail === error ? "" : ` (${detail})`}`;
  if (response.status === 401) return new CliError(EXIT.unreachable, error, `${message}; check --token or $OMIKRON_ADMIN_TOKEN`);
  if (response.status === 429) return new CliError(EXIT.unreachable, error, message);
  if (response.status === 503 && error === "propagation_pending") {
    const retry = response.headers.get("Retry-After");
    return new CliError(EXIT.pending, error, `${message}; the change stands and the relay keeps applying it${retry ? ` (Retry-After: ${retry} s)` : ""}`);
  }
  if (response.status === 503) return new CliError(EXIT.unreachable, error, message);
  return new CliError(EXIT.failed, error, message);
}
