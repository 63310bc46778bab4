/**
 * The peer library (`omikron/peer`): what an Iota, a client or a call member needs to talk to
 * the Omikron, on nothing but the standard WebSocket and Web Crypto (browsers, Node ≥ 22,
 * Workers, Deno). The protocol it speaks is docs/protocol.md.
 *
 * How to import it:
 * - Inside this repository (CLI, demo, bench, tests), import this file by path,
 *   `import { connectClient } from "../src/peer/index.ts"`: Node 24 runs it by type stripping
 *   (every specifier below ends in `.ts`, syntax is erasable only), wrangler and esbuild bundle it.
 * - Outside consumers import `omikron/peer`. Node refuses to strip types under node_modules, so
 *   that export points at `dist/peer/index.js`, one ES module built by `npm run build:peer`
 *   (esbuild; run by `prepare`, so installing from git builds it) with declarations in
 *   dist/peer/types. The zod schemas of every frame are a separate entry,
 *   `omikron/peer/schemas` (src/peer/schemas.ts), so a peer that does not validate never loads zod.
 *
 * It never imports Node-only code and the Worker never imports it.
 */
export { connectIota, connectClient, joinCall, IotaPeer, ClientPeer, CallPeer } from "./roles.ts";
export type { IotaOptions, ClientOptions, CallOptions, MemberState } from "./roles.ts";
export { Peer } from "./socket.ts";
export type { Frame, OutboundFrame, PeerOptions, PeerEvents, PeerState, Disconnected, Closed, SocketLike, SocketConstructor } from "./socket.ts";
export { PeerError, RefusedError, ConnectionClosedError, RequestTimeoutError, NotConnectedError } from "./errors.ts";
export { shouldReconnect, backoffDelay, DEFAULT_BACKOFF } from "./backoff.ts";
export type { BackoffOptions } from "./backoff.ts";
export { privateKeyHash } from "./credential.ts";
export { OMIKRON_ID, writeIdList, readIdList } from "./wire.ts";
export type {
  CallJoined,
  CallState,
  ClientChanged,
  ClientConnected,
  ClientDisconnected,
  ClientIdentified,
  ErrorFrame,
  ErrorType,
  IotaConnected,
  IotaDisconnected,
  IotaIdentified,
  Pushes,
} from "./schemas.ts";
