/**
 * The admin replies a healthy local relay does not give on demand (503s, 429, a body that is
 * not the API's), served by a stub, so each one's exit code is checked as a script sees it.
 */
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run, uuid } from "./support.ts";

let server: Server;
let url: string;
/** What the stub answers next: status, headers, body text. */
let reply: { status: number; headers?: Record<string, string>; body: string };

beforeAll(async () => {
  server = createServer((_request, response) => {
    response.writeHead(reply.status, { "Content-Type": "application/json", ...reply.headers });
    response.end(reply.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const env = () => ({ OMIKRON_URL: url, OMIKRON_ADMIN_TOKEN: "t".repeat(40) });

describe("exit codes of admin replies", () => {
  it("answers 4 for 503 propagation_pending and names Retry-After", async () => {
    reply = { status: 503, headers: { "Retry-After": "5" }, body: JSON.stringify({ error: "propagation_pending", message: "not yet applied" }) };
    const result = await run(["user", "rm", uuid(), "--json"], { env: env() });
    expect(result.code).toBe(4);
    expect(result.stdout).toEqual([]);
    const error = JSON.parse(result.stderr[0] ?? "") as { error: string; message: string };
    expect(error.error).toBe("propagation_pending");
    expect(error.message).toMatch(/Retry-After: 5 s/);
  });

  it("answers 3 for 503 admin_disabled and for 429", async () => {
    reply = { status: 503, body: JSON.stringify({ error: "admin_disabled", message: "no token" }) };
    expect((await run(["iota", "show", uuid()], { env: env() })).code).toBe(3);
    reply = { status: 429, body: JSON.stringify({ error: "rate_limited", message: "slow down" }) };
    expect((await run(["iota", "show", uuid()], { env: env() })).code).toBe(3);
  });

  it("answers 2 for a token with a line break in it, and trims one copied with spaces around it", async () => {
    reply = { status: 200, body: JSON.stringify({ iotas: [], next_cursor: null }) };
    const broken = await run(["iota", "ls", "--json"], { env: { ...env(), OMIKRON_ADMIN_TOKEN: `# a comment\n${"t".repeat(40)}` } });
    expect(broken.code).toBe(2);
    expect(JSON.parse(broken.stderr[0] ?? "")).toMatchObject({ error: "usage" });
    const spaced = await run(["iota", "ls", "--json"], { env: { ...env(), OMIKRON_ADMIN_TOKEN: ` ${"t".repeat(40)}\n` } });
    expect(spaced.code).toBe(0);
  });

  it("answers 1 for a 2xx body that is not the API's, and for a 500 that is not JSON", async () => {
    reply = { status: 200, body: JSON.stringify({ hello: "world" }) };
    const odd = await run(["iota", "show", uuid(), "--json"], { env: env() });
    expect(odd.code).toBe(1);
    expect(JSON.parse(odd.stderr[0] ?? "")).toMatchObject({ error: "unexpected_reply" });
    reply = { status: 500, body: "<html>oops</html>" };
    const broken = await run(["iota", "show", uuid(), "--json"], { env: env() });
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.stderr[0] ?? "")).toMatchObject({ error: "http_500" });
  });
});
