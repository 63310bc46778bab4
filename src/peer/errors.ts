/** The typed errors of the peer library; `instanceof` tells them apart. */
import type { Frame } from "./socket.ts";

export class PeerError extends Error {
  override name = "PeerError";
}

/**
 * The Omikron refused the identification (SPEC §4, §7): `frame` is its refusal
 * (`error_not_authenticated`, an `identification_response` with `accepted: false`,
 * `error_too_many_connections`, `error_call_full`), `code` the close code that followed
 * (4003, or 1011 when the directory was unavailable and retries ran out).
 */
export class RefusedError extends PeerError {
  override name = "RefusedError";
  readonly frame: Frame;
  readonly code: number;
  readonly reason: string;
  constructor(frame: Frame, code: number, reason: string) {
    super(`identification refused: ${frame.type} (close ${code}${reason ? ` ${reason}` : ""})`);
    this.frame = frame;
    this.code = code;
    this.reason = reason;
  }
}

/**
 * The socket closed before the identification was answered, or while a request waited for its
 * reply; `code` is the close code (1006 when the upgrade itself was refused over HTTP, e.g. 429,
 * which a WebSocket API cannot see).
 */
export class ConnectionClosedError extends PeerError {
  override name = "ConnectionClosedError";
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, what = "connection closed") {
    super(`${what} (close ${code}${reason ? ` ${reason}` : ""})`);
    this.code = code;
    this.reason = reason;
  }
}

/** No reply with the request's `id` arrived in time. */
export class RequestTimeoutError extends PeerError {
  override name = "RequestTimeoutError";
  readonly id: string;
  constructor(id: string, timeoutMs: number) {
    super(`no reply to ${id} within ${timeoutMs} ms`);
    this.id = id;
  }
}

/** `send()` or `request()` while the peer is not identified (connecting, reconnecting or closed). */
export class NotConnectedError extends PeerError {
  override name = "NotConnectedError";
}
