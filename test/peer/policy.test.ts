/**
 * The reconnect policy (SPEC §9 r2) against a scripted WebSocket server, since the real
 * Omikron closes 1011 only when its directory cannot be reached: after 1011 the library
 * reconnects and identifies again; after 4003 it stops. The same decisions against the real
 * server (4001, 4003) are in peer.test.ts.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket as ServerSocket } from "ws";
import { DEFAULT_BACKOFF, OMIKRON_ID, RefusedError, backoffDelay, connectClient, shouldReconnect } from "../../src/peer/index.ts";

interface Connection {
  socket: ServerSocket;
  identification: Promise<Record<string, unknown>>;
}

/** A server that hands every connection and its first frame to the test. */
async function scriptedServer() {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const connections: Connection[] = [];
  const waiting: ((connection: Connection) => void)[] = [];
  server.on("connection", (socket) => {
    const identification = new Promise<Record<string, unknown>>((resolve) =>
      socket.once("message", (data) => resolve(JSON.parse(String(data)) as Record<string, unknown>)),
    );
    const connection = { socket, identification };
    connections.push(connection);
    waiting.shift()?.(connection);
  });
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("server has no address");
  return {
    url: `ws://127.0.0.1:${address.port}`,
    connections,
    /** The next connection to arrive after this call. */
    next(): Promise<Connection> {
      return new Promise((resolve) => waiting.push(resolve));
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const servers: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
});

function accept(connection: Connection, id: unknown): void {
  connection.socket.send(
    JSON.stringify({
      id,
      type: "identification_response",
      log: { message: "Client identified", log_level: 0 },
      data: { acceppted: true, accepted: true, iota_online: false },
      sender_id: OMIKRON_ID,
    }),
  );
}

function refuse(connection: Connection, id: unknown): void {
  connection.socket.send(
    JSON.stringify({
      id,
      type: "identification_response",
      log: { message: "identification refused", log_level: 2 },
      data: { acceppted: false, accepted: false },
      sender_id: OMIKRON_ID,
    }),
  );
}

const client = { iotaId: randomUUID(), userId: randomUUID(), privateKeyHash: "ab".repeat(32) };
const fast = { initialDelayMs: 5, maxDelayMs: 20 };

describe("reconnect policy", () => {
  it("reconnects after 1011 and identifies again with a fresh id", async () => {
    const server = await scriptedServer();
    servers.push(server);
    const first = server.next();
    const connecting = connectClient({ url: server.url, ...client, reconnect: fast, keepAliveMs: 0 });
    const one = await first;
    const firstAttempt = await one.identification;
    accept(one, firstAttempt.id);
    const peer = await connecting;

    const second = server.next();
    const disconnected = peer.once("disconnected");
    const identified = peer.once("identified");
    one.socket.close(1011, "directory unavailable");
    expect(await disconnected).toMatchObject({ code: 1011, reconnectInMs: expect.any(Number) });
    const two = await second;
    const secondAttempt = await two.identification;
    expect(secondAttempt).toEqual({ ...firstAttempt, id: expect.any(String) });
    expect(secondAttempt.id).not.toBe(firstAttempt.id);
    accept(two, secondAttempt.id);
    expect((await identified).id).toBe(secondAttempt.id);
    expect(peer.state).toBe("identified");
    await peer.close();
  });

  it("retries a first identification refused with 1011, and resolves once accepted", async () => {
    const server = await scriptedServer();
    servers.push(server);
    const first = server.next();
    const connecting = connectClient({ url: server.url, ...client, reconnect: fast, keepAliveMs: 0 });
    const one = await first;
    const second = server.next();
    refuse(one, (await one.identification).id);
    one.socket.close(1011, "directory unavailable");
    const two = await second;
    accept(two, (await two.identification).id);
    const peer = await connecting;
    expect(peer.state).toBe("identified");
    await peer.close();
  });

  it("does not reconnect after 4003, and rejects a refused identification with the frame and code", async () => {
    const server = await scriptedServer();
    servers.push(server);
    const first = server.next();
    const connecting = connectClient({ url: server.url, ...client, reconnect: fast, keepAliveMs: 0 });
    const one = await first;
    accept(one, (await one.identification).id);
    const peer = await connecting;

    const disconnected = peer.once("disconnected");
    one.socket.close(4003, "credential revoked");
    expect(await disconnected).toEqual({ code: 4003, reason: "credential revoked", reconnectInMs: null });
    expect(await peer.closed).toEqual({ code: 4003, reason: "credential revoked" });
    expect(peer.state).toBe("closed");
    expect(server.connections).toHaveLength(1);

    const refusedOnce = server.next();
    const refused = connectClient({ url: server.url, ...client, reconnect: fast, keepAliveMs: 0 });
    const two = await refusedOnce;
    const attempt = await two.identification;
    refuse(two, attempt.id);
    two.socket.close(4003, "identification refused");
    const error = await refused.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RefusedError);
    expect(error).toMatchObject({ code: 4003, frame: { id: attempt.id, data: { accepted: false } } });
    expect(server.connections).toHaveLength(2);
  });

  it("holds the pushes that follow the identification until the caller can listen", async () => {
    const server = await scriptedServer();
    servers.push(server);
    const first = server.next();
    const connecting = connectClient({ url: server.url, ...client, reconnect: false, keepAliveMs: 0 });
    const one = await first;
    // One write, so both frames arrive in one network read.
    const push = { id: randomUUID(), type: "iota_connected", log: { message: "Iota connected", log_level: 0 }, data: { iota_id: client.iotaId }, sender_id: OMIKRON_ID };
    const response = {
      id: (await one.identification).id,
      type: "identification_response",
      log: { message: "Client identified", log_level: 0 },
      data: { acceppted: true, accepted: true, iota_online: false },
      sender_id: OMIKRON_ID,
    };
    one.socket.send(JSON.stringify(response));
    one.socket.send(JSON.stringify(push));
    const peer = await connecting;
    expect(await peer.once("iota_connected")).toEqual(push);
    await peer.close();
  });

  it("keeps the socket alive with literal ping frames, and reconnects when a pong does not come", async () => {
    const server = await scriptedServer();
    servers.push(server);
    const first = server.next();
    const connecting = connectClient({ url: server.url, ...client, reconnect: fast, keepAliveMs: 40 });
    const one = await first;
    accept(one, (await one.identification).id);
    const peer = await connecting;

    // Answered keep-alives keep the connection: three rounds on the same socket.
    const pings: string[] = [];
    await new Promise<void>((resolve) => {
      one.socket.on("message", (data) => {
        pings.push(String(data));
        if (pings.length < 3) one.socket.send("pong");
        else resolve();
      });
    });
    expect(pings).toEqual(["ping", "ping", "ping"]);
    expect(server.connections).toHaveLength(1);

    // The third went unanswered: by the next interval the peer gives up on the socket.
    const second = server.next();
    expect(await peer.once("disconnected")).toMatchObject({ code: 1006, reason: "keep-alive not answered", reconnectInMs: expect.any(Number) });
    const two = await second;
    accept(two, (await two.identification).id);
    await peer.once("identified");
    expect(peer.state).toBe("identified");
    await peer.close();
  });

  it("names 1001, 1006, 1011 and 4008 as the codes to reconnect after", () => {
    const codes = [1000, 1001, 1005, 1006, 1008, 1009, 1011, 4001, 4003, 4008];
    expect(codes.filter(shouldReconnect)).toEqual([1001, 1006, 1011, 4008]);
  });

  it("draws each delay between half and all of a doubling, capped ceiling", () => {
    const at = (attempt: number, random: number) => backoffDelay(attempt, DEFAULT_BACKOFF, () => random);
    expect([0, 1, 2, 3].map((n) => at(n, 1))).toEqual([500, 1000, 2000, 4000]);
    expect([0, 1, 2, 3].map((n) => at(n, 0))).toEqual([250, 500, 1000, 2000]);
    expect(at(20, 1)).toBe(30_000);
    expect(at(1000, 0)).toBe(15_000);
  });
});
