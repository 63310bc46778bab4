#!/usr/bin/env node
// @ts-check
/**
 * The benchmark's third column: what a self-hoster might run instead of the Omikron, a plain
 * Node `ws` server doing the floor's forwarding (bench/floor/worker.ts): a client's frame to
 * the Iota with `sender_id` spliced in, an Iota's frame to the client named by `receiver_id`,
 * no parsing. Run as its own process so its CPU can be read from /proc; prints its port.
 */
import { WebSocketServer } from "ws";

const RECEIVER = '"receiver_id":"';
/** @type {Map<string, { iota: import("ws").WebSocket | null, clients: Map<string, import("ws").WebSocket> }>} */
const hubs = new Map();

const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
server.on("connection", (ws, request) => {
  const url = new URL(request.url ?? "/", "http://relay");
  const [, , role, iotaId = ""] = url.pathname.split("/");
  let hub = hubs.get(iotaId);
  if (!hub) hubs.set(iotaId, (hub = { iota: null, clients: new Map() }));
  const current = hub;
  if (role === "iota") {
    current.iota = ws;
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      const text = data.toString();
      const at = text.indexOf(RECEIVER);
      if (at < 0) return;
      const start = at + RECEIVER.length;
      current.clients.get(text.slice(start, text.indexOf('"', start)))?.send(text);
    });
    ws.on("close", () => {
      if (current.iota === ws) current.iota = null;
    });
    return;
  }
  const user = url.searchParams.get("user") ?? "";
  current.clients.set(user, ws);
  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    const text = data.toString();
    current.iota?.send(`${text.slice(0, text.lastIndexOf("}"))},"sender_id":"${user}"}`);
  });
  ws.on("close", () => {
    if (current.clients.get(user) === ws) current.clients.delete(user);
  });
});
server.on("listening", () => {
  const address = server.address();
  if (address && typeof address === "object") console.log(String(address.port));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
