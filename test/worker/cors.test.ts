/**
 * CORS is opt-in (SPEC §3 r2): a listed origin gets CORS headers on GET /, GET /health and
 * /admin, and its preflight is answered 204 before any token check; other origins get none,
 * and upgrade responses never carry them.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { ADMIN_TOKEN, uuid } from "./support";

const LISTED = "https://admin.example";
const vars = { CORS_ORIGINS: `${LISTED}, http://localhost:5173` };

function fetchWith(path: string, init: RequestInit = {}, overrides: Record<string, unknown> = vars): Promise<Response> {
  return Promise.resolve(worker.fetch(new Request(`http://omikron.test${path}`, init), { ...env, ...overrides }, createExecutionContext()));
}

function corsHeaders(response: Response): [string, string][] {
  return [...response.headers].filter(([name]) => name.startsWith("access-control-"));
}

describe("CORS for listed origins (SPEC §3 r2)", () => {
  it.each(["/", "/health"])("adds the CORS headers to GET %s for a listed origin", async (path) => {
    const response = await fetchWith(path, { headers: { Origin: LISTED } });
    expect(response.status).toBe(200);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe(LISTED);
  });

  it("adds them to admin answers too, a 401 included, so the page can read why", async () => {
    const ok = await fetchWith(`/admin/iotas/${uuid()}`, { headers: { Origin: LISTED, Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(ok.status).toBe(404);
    expect(ok.headers.get("Access-Control-Allow-Origin")).toBe(LISTED);
    const refused = await fetchWith(`/admin/iotas/${uuid()}`, { headers: { Origin: LISTED } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("Access-Control-Allow-Origin")).toBe(LISTED);
    expect(refused.headers.get("Access-Control-Expose-Headers")).toContain("WWW-Authenticate");
  });

  it("answers a listed origin's preflight 204 before any token check", async () => {
    const response = await fetchWith(`/admin/users/${uuid()}`, {
      method: "OPTIONS",
      headers: { Origin: LISTED, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization, content-type" },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe(LISTED);
    expect(response.headers.get("Access-Control-Allow-Methods")).toContain("PUT");
    expect(response.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toContain("authorization");
  });

  it("gives an unlisted origin no CORS headers and no preflight answer", async () => {
    const info = await fetchWith("/", { headers: { Origin: "https://evil.example" } });
    expect(info.status).toBe(200);
    expect(corsHeaders(info)).toEqual([]);
    const preflight = await fetchWith(`/admin/iotas/${uuid()}`, { method: "OPTIONS", headers: { Origin: "https://evil.example", "Access-Control-Request-Method": "DELETE" } });
    expect(preflight.status).toBe(401);
    expect(corsHeaders(preflight)).toEqual([]);
  });

  it("adds nothing for anyone when CORS_ORIGINS is empty, the default", async () => {
    const response = await fetchWith("/health", { headers: { Origin: LISTED } }, {});
    expect(response.status).toBe(200);
    expect(corsHeaders(response)).toEqual([]);
  });

  it("never adds CORS headers to a WebSocket upgrade, even for a listed origin", async () => {
    const response = await fetchWith(`/ws/client/${uuid()}`, { headers: { Origin: LISTED, Upgrade: "websocket" } });
    expect(response.status).toBe(101);
    expect(corsHeaders(response)).toEqual([]);
    response.webSocket?.accept();
    response.webSocket?.close(1000);
  });
});
