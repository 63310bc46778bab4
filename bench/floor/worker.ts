/**
 * The benchmark's floor: what relaying costs the runtime itself. One hibernating Durable
 * Object per Iota, as in the Omikron, that forwards a client's frame to the Iota with
 * `sender_id` spliced in and an Iota's frame to the client named by its `receiver_id`, with
 * no parsing, validation, identification or limits. The client's user id comes from the
 * upgrade URL (`/ws/client/<iota_id>?user=<user_id>`), since there is no identification.
 */
import { DurableObject } from "cloudflare:workers";
import { receiverOf, spliced } from "./forward";

interface Env {
  FLOOR: DurableObjectNamespace<Floor>;
}

export class Floor extends DurableObject<Env> {
  private iota: WebSocket | null = null;
  private readonly clients = new Map<string, WebSocket>();
  private readonly users = new WeakMap<WebSocket, string>();
  private indexed = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  /** Sockets survive hibernation; the index is rebuilt from their tags on wake. */
  private index(): void {
    if (this.indexed) return;
    this.indexed = true;
    for (const ws of this.ctx.getWebSockets()) this.remember(ws, this.ctx.getTags(ws)[0] ?? "");
  }

  private remember(ws: WebSocket, tag: string): void {
    if (tag === "iota") this.iota = ws;
    else {
      this.clients.set(tag, ws);
      this.users.set(ws, tag);
    }
  }

  override async fetch(request: Request): Promise<Response> {
    this.index();
    const url = new URL(request.url);
    const tag = url.pathname.startsWith("/ws/iota/") ? "iota" : (url.searchParams.get("user") ?? "");
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server, [tag]);
    this.remember(server, tag);
    return new Response(null, { status: 101, webSocket: client });
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    if (typeof message !== "string") return;
    this.index();
    const user = this.users.get(ws);
    if (user !== undefined) {
      this.iota?.send(spliced(message, user));
      return;
    }
    const receiver = receiverOf(message);
    if (receiver !== undefined) this.clients.get(receiver)?.send(message);
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    if (code !== 1005 && code !== 1006 && code !== 1015) ws.close(code, reason);
    this.forget(ws);
  }

  override webSocketError(ws: WebSocket): void {
    this.forget(ws);
  }

  private forget(ws: WebSocket): void {
    const user = this.users.get(ws);
    if (user !== undefined && this.clients.get(user) === ws) this.clients.delete(user);
    if (this.iota === ws) this.iota = null;
  }
}

export default {
  fetch(request: Request, env: Env): Promise<Response> | Response {
    const iotaId = new URL(request.url).pathname.split("/")[3];
    if (!iotaId || request.headers.get("Upgrade") !== "websocket") return new Response("not found", { status: 404 });
    return env.FLOOR.get(env.FLOOR.idFromName(iotaId)).fetch(request);
  },
} satisfies ExportedHandler<Env>;
