/**
 * The Worker's HTTP surface (SPEC §3): the info and health routes, JSON errors for everything
 * else, and the WebSocket routes' checks before a socket is handed to its Durable Object.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { version } from "../../package.json";
import worker from "../../src/index";
import {
  OMIKRON_ID,
  Peer,
  clientIdentification,
  connect,
  createIota,
  createUser,
  fetchWorker,
  iotaIdentification,
  upgrade,
  uuid,
} from "./support";

const anyMessage = expect.any(String);
const WS_KINDS = ["iota", "client", "call"] as const;
const WITH_AND_WITHOUT_UPGRADE: Record<string, string>[] = [{ Upgrade: "websocket" }, {}];
const NOT_AN_UPGRADE: Record<string, string>[] = [{}, { Upgrade: "h2c" }, { Connection: "Upgrade" }];

interface Reply {
  status: number;
  contentType: string | null;
  body: unknown;
}

async function read(response: Response): Promise<Reply> {
  const text = await response.text();
  return { status: response.status, contentType: response.headers.get("Content-Type"), body: JSON.parse(text) };
}

/** Calls the Worker module with an env holding no bindings at all: any Durable Object access fails. */
function fetchWithoutBindings(path: string, init?: RequestInit): Promise<Response> {
  return Promise.resolve(worker.fetch(new Request(`http://omikron.test${path}`, init), {}, createExecutionContext()));
}

describe("info and health (SPEC §3)", () => {
  it("answers GET / with the Omikron's name, version, id and endpoints", async () => {
    const reply = await read(await fetchWorker("/"));
    expect(reply.status).toBe(200);
    expect(reply.contentType).toMatch(/^application\/json/);
    expect(reply.body).toEqual({
      name: "omikron",
      version,
      omikron_id: OMIKRON_ID,
      endpoints: [
        "/health",
        "/ws/iota/:iota_id",
        "/ws/client/:iota_id",
        "/ws/call/:call_id",
        "/admin/iotas/:iota_id",
        "/admin/users/:user_id",
        "/admin/iotas/:iota_id/presence",
        "/admin/calls/:call_id",
      ],
    });
  });

  it("answers GET /health with 200 {ok: true}", async () => {
    const reply = await read(await fetchWorker("/health"));
    expect(reply.status).toBe(200);
    expect(reply.contentType).toMatch(/^application\/json/);
    expect(reply.body).toEqual({ ok: true });
  });

  it("answers GET / and GET /health without touching any binding", async () => {
    const info = await read(await fetchWithoutBindings("/"));
    expect(info.status).toBe(200);
    expect(info.body).toMatchObject({ name: "omikron", omikron_id: OMIKRON_ID });
    const health = await read(await fetchWithoutBindings("/health"));
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ ok: true });
  });
});

describe("unknown paths and methods (SPEC §3)", () => {
  it.each([
    ["an unknown path", "GET", "/nope"],
    ["a path below /health", "GET", "/health/more"],
    ["/ws itself", "GET", "/ws"],
    ["an unknown socket kind", "GET", `/ws/omega/${uuid()}`],
    ["a socket path without an id", "GET", "/ws/iota/"],
    ["a socket path with an extra segment", "GET", `/ws/iota/${uuid()}/more`],
    ["POST /health", "POST", "/health"],
    ["PUT /health", "PUT", "/health"],
    ["DELETE /", "DELETE", "/"],
    ["POST to an Iota socket path", "POST", `/ws/iota/${uuid()}`],
    ["PUT to a client socket path", "PUT", `/ws/client/${uuid()}`],
    ["DELETE to a call socket path", "DELETE", `/ws/call/${uuid()}`],
    ["POST to a socket path with a bad id", "POST", "/ws/iota/not-a-uuid"],
  ])("answers %s with a JSON 404", async (_name, method, path) => {
    const reply = await read(await fetchWorker(path, { method }));
    expect(reply.status).toBe(404);
    expect(reply.contentType).toMatch(/^application\/json/);
    expect(reply.body).toEqual({ error: "not_found", message: anyMessage });
  });

  // The test runtime's own fetch turns any request carrying `Upgrade: websocket` into a GET, so
  // these requests go to the Worker module directly, as the edge would deliver them.
  it.each(["POST", "PUT", "DELETE", "PATCH"])("answers %s with Upgrade: websocket on the socket paths with a JSON 404", async (method) => {
    for (const path of [`/ws/iota/${uuid()}`, `/ws/client/${uuid()}`, `/ws/call/${uuid()}`, "/ws/iota/not-a-uuid"]) {
      const request = new Request(`http://omikron.test${path}`, { method, headers: { Upgrade: "websocket" } });
      const reply = await read(await worker.fetch(request, env, createExecutionContext()));
      expect(reply.status).toBe(404);
      expect(reply.body).toEqual({ error: "not_found", message: anyMessage });
    }
  });
});

describe("HEAD requests", () => {
  it("answers HEAD /health like GET, without a body", async () => {
    const response = await fetchWorker("/health", { method: "HEAD" });
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(await response.text()).toBe("");
  });

  it("never opens a WebSocket for a HEAD request to a socket path", async () => {
    for (const kind of WS_KINDS) {
      const request = new Request(`http://omikron.test/ws/${kind}/${uuid()}`, { method: "HEAD", headers: { Upgrade: "websocket" } });
      const response = await worker.fetch(request, env, createExecutionContext());
      expect(response.status).toBe(404);
      expect(response.webSocket).toBeNull();
      expect(await response.text()).toBe("");
    }
  });
});

describe("WebSocket routes (SPEC §3)", () => {
  it.each(WS_KINDS)("answers a bad id on /ws/%s/:id with a JSON 400, with or without Upgrade", async (kind) => {
    for (const id of ["not-a-uuid", "0b6f3a5e-1c2d-4e5f-8a9b-0c1d2e3f4a5", "0b6f3a5e1c2d4e5f8a9b0c1d2e3f4a5b", "%20"]) {
      for (const headers of WITH_AND_WITHOUT_UPGRADE) {
        const reply = await read(await fetchWorker(`/ws/${kind}/${id}`, { headers }));
        expect(reply.status).toBe(400);
        expect(reply.contentType).toMatch(/^application\/json/);
        expect(reply.body).toEqual({ error: "invalid_id", message: anyMessage });
      }
    }
  });

  it.each(WS_KINDS)("answers /ws/%s/:id without Upgrade: websocket with a JSON 426", async (kind) => {
    for (const headers of NOT_AN_UPGRADE) {
      const reply = await read(await fetchWorker(`/ws/${kind}/${uuid()}`, { headers }));
      expect(reply.status).toBe(426);
      expect(reply.contentType).toMatch(/^application\/json/);
      expect(reply.body).toEqual({ error: "upgrade_required", message: anyMessage });
    }
  });

  it("refuses bad ids and missing upgrades before any Durable Object is touched", async () => {
    const badId = await read(await fetchWithoutBindings("/ws/iota/not-a-uuid", { headers: { Upgrade: "websocket" } }));
    expect(badId.status).toBe(400);
    expect(badId.body).toEqual({ error: "invalid_id", message: anyMessage });
    const noUpgrade = await read(await fetchWithoutBindings(`/ws/call/${uuid()}`));
    expect(noUpgrade.status).toBe(426);
    expect(noUpgrade.body).toEqual({ error: "upgrade_required", message: anyMessage });
  });

  it.each(WS_KINDS)("upgrades /ws/%s/:id to a WebSocket with 101 and no CORS headers", async (kind) => {
    const response = await upgrade(`/ws/${kind}/${uuid()}`);
    expect(response.status).toBe(101);
    expect(response.webSocket).not.toBeNull();
    expect(response.headers.get("Access-Control-Allow-Origin")).toBeNull();
    const peer = new Peer(response.webSocket as WebSocket);
    peer.close();
    expect(await peer.closed).toEqual({ code: 1000, reason: "bye" });
  });

  it("accepts the Upgrade header in any case", async () => {
    const response = await fetchWorker(`/ws/call/${uuid()}`, { headers: { Upgrade: "WebSocket" } });
    expect(response.status).toBe(101);
    const peer = new Peer(response.webSocket as WebSocket);
    peer.close();
    await peer.closed;
  });

  it("routes an upper-case Iota path to the same hub as its lower-case form", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const iotaPeer = await connect(`/ws/iota/${iota.id.toUpperCase()}`);
    const identified = await iotaPeer.request(iotaIdentification(iota, [user.id], "upper-iota"));
    expect(identified).toEqual({
      id: "upper-iota",
      type: "identification_response",
      log: { message: expect.any(String), log_level: 0 },
      sender_id: OMIKRON_ID,
      data: { accepted_profiles: `${user.id},`, denid_profiles: "", denied_profiles: "" },
    });

    const client = await connect(`/ws/client/${iota.id}`);
    const reply = await client.request(clientIdentification(iota, user, "lower-client"));
    expect(reply).toEqual({
      id: "lower-client",
      type: "identification_response",
      log: { message: expect.any(String), log_level: 0 },
      sender_id: OMIKRON_ID,
      data: { acceppted: true, accepted: true, iota_online: true },
    });
    expect(await iotaPeer.next()).toMatchObject({ type: "client_connected", data: { user_id: user.id } });

    client.send({ id: "via-lower", type: "get_chats", data: {} });
    expect(await iotaPeer.next()).toEqual({ id: "via-lower", type: "get_chats", data: {}, sender_id: user.id });
    client.close();
    iotaPeer.close();
  });

  it("routes an upper-case client path to the same hub as its lower-case form", async () => {
    const iota = await createIota();
    const user = await createUser(iota);
    const iotaPeer = await connect(`/ws/iota/${iota.id}`);
    expect((await iotaPeer.request(iotaIdentification(iota, [user.id]))).type).toBe("identification_response");
    const client = await connect(`/ws/client/${iota.id.toUpperCase()}`);
    const reply = await client.request(clientIdentification(iota, user, "upper-client"));
    expect(reply).toMatchObject({ id: "upper-client", data: { acceppted: true, accepted: true, iota_online: true } });
    expect(await iotaPeer.next()).toMatchObject({ type: "client_connected", data: { user_id: user.id } });
    client.close();
    iotaPeer.close();
  });
});

describe("server errors (SPEC §3)", () => {
  it("answers an invalid configuration with a JSON 500 naming the variable", async () => {
    const response = await worker.fetch(
      new Request(`http://omikron.test/ws/iota/${uuid()}`, { headers: { Upgrade: "websocket" } }),
      { ...env, RATE_LIMIT_PER_SEC: "0" },
      createExecutionContext(),
    );
    const reply = await read(response);
    expect(reply.status).toBe(500);
    expect(reply.body).toEqual({ error: "config_invalid", message: expect.stringContaining("RATE_LIMIT_PER_SEC"), var: "RATE_LIMIT_PER_SEC" });
  });

  it("answers a failure inside the Worker with a JSON 500 and no stack", async () => {
    const response = await fetchWithoutBindings(`/ws/iota/${uuid()}`, { headers: { Upgrade: "websocket" } });
    const text = await response.text();
    expect(response.status).toBe(500);
    expect(JSON.parse(text)).toEqual({ error: "internal_error", message: anyMessage });
    expect(text).not.toMatch(/\bat\b.*\.(ts|js)/);
  });
});
