/**
 * Configuration (SPEC §9 r2): every var is validated on the first request; a bad value makes
 * every request, /health included, answer 500 config_invalid naming the var, never its value.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { ADMIN_TOKEN, uuid } from "./support";

/** Calls the Worker module with some vars replaced; a fresh env object is parsed afresh. */
async function fetchWith(vars: Record<string, unknown>, path: string, init: RequestInit = {}) {
  const response = await worker.fetch(new Request(`http://omikron.test${path}`, init), { ...env, ...vars }, createExecutionContext());
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) as Record<string, unknown> };
}

const PATHS: [string, RequestInit][] = [
  ["/health", {}],
  ["/", {}],
  [`/ws/client/${uuid()}`, { headers: { Upgrade: "websocket" } }],
  [`/admin/iotas/${uuid()}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } }],
  ["/nothing/here", {}],
];

describe("invalid configuration (SPEC §9 r2)", () => {
  it.each([
    ["an ADMIN_TOKEN of 31 characters", "ADMIN_TOKEN", "x".repeat(31)],
    ["an ADMIN_TOKEN of one character", "ADMIN_TOKEN", "Q"],
    ["a rate that is not a number", "RATE_LIMIT_PER_SEC", "fast-please"],
    ["a byte budget of zero", "RATE_LIMIT_BYTES_PER_SEC", "000"],
    ["a negative idle timeout", "IDLE_TIMEOUT_MS", "-5"],
    ["a calls-per-user limit that is not an integer", "MAX_CALLS_PER_USER", "2.5"],
    ["a CORS origin with a path", "CORS_ORIGINS", "https://admin.example/app"],
    ["a CORS wildcard", "CORS_ORIGINS", "*"],
    ["an unknown IOTA_AUTH mode", "IOTA_AUTH", "sometimes-secret"],
  ])("answers every request 500 config_invalid for %s, naming the var but not its value", async (_name, variable, value) => {
    for (const [path, init] of PATHS) {
      const reply = await fetchWith({ [variable]: value }, path, init);
      expect(reply.status).toBe(500);
      expect(reply.body).toEqual({ error: "config_invalid", message: expect.stringContaining(variable), var: variable });
      expect(reply.text).not.toContain(value);
    }
  });

  it("accepts an ADMIN_TOKEN of exactly 32 characters", async () => {
    const token = "t".repeat(32);
    const reply = await fetchWith({ ADMIN_TOKEN: token }, `/admin/iotas/${uuid()}`, { headers: { Authorization: `Bearer ${token}` } });
    expect(reply.status).toBe(404);
    expect(reply.body).toMatchObject({ error: "not_found" });
  });

  it("counts a token's surrounding whitespace out of its length", async () => {
    const reply = await fetchWith({ ADMIN_TOKEN: ` ${"t".repeat(31)}\n` }, "/health");
    expect(reply.status).toBe(500);
    expect(reply.body).toMatchObject({ error: "config_invalid", var: "ADMIN_TOKEN" });
  });

  it("accepts the r2 vars at their documented values, 0 turning the idle timeout off", async () => {
    const reply = await fetchWith(
      {
        IDLE_TIMEOUT_MS: "0",
        CORS_ORIGINS: "https://admin.example, http://localhost:5173,",
        RATE_LIMIT_BYTES_BURST: 4_194_304,
        MAX_PENDING_LOOKUPS: "64",
      },
      "/health",
    );
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ ok: true });
  });
});
