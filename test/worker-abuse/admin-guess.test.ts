/**
 * Attacks: online admin-token guessing and admin bodies of any size (issue 10). Defended by a
 * budget of wrong tokens per address (SPEC §8.2 r2: 10 per 60 s, then 429 before the token is
 * compared), a 32-character minimum token (§9 r2, see test/worker/config.test.ts) and 413
 * for bodies over 64 KiB.
 */
import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, keyHash, uuid } from "../worker/support";
import { adminFrom, freshAddress, inOneWindow } from "./attack";

const FAILURES_PER_ADDRESS = 10;
const LIMIT = 64 * 1024;

describe("wrong admin tokens per address (SPEC §8.2 r2)", () => {
  it("answers 10 wrong tokens 401, then 429 even for the right token, while other addresses go on", async () => {
    await inOneWindow(async () => {
      const guesser = freshAddress();
      const path = `/iotas/${uuid()}`;
      for (let i = 0; i < FAILURES_PER_ADDRESS; i++) {
        const reply = await adminFrom(guesser, path, `guess-${i}-${"x".repeat(32)}`);
        expect(reply.status).toBe(401);
      }
      const over = await adminFrom(guesser, path, "one-guess-too-many-xxxxxxxxxxxxxxxxxxxxx");
      expect(over.status).toBe(429);
      expect(over.headers.get("Retry-After")).toMatch(/^\d+$/);
      expect(await over.json()).toEqual({ error: "too_many_failures", message: expect.any(String) });
      // Over the budget the token is not even compared: the right one is refused too.
      const right = await adminFrom(guesser, path, ADMIN_TOKEN);
      expect(right.status).toBe(429);
      // The budget is the guesser's alone.
      const admin = await adminFrom(freshAddress(), path, ADMIN_TOKEN);
      expect(admin.status).toBe(404);
    });
  });

  it("spends nothing of the budget on the right token", async () => {
    await inOneWindow(async () => {
      const address = freshAddress();
      for (let i = 0; i < FAILURES_PER_ADDRESS + 5; i++) expect((await adminFrom(address, `/iotas/${uuid()}`, ADMIN_TOKEN)).status).toBe(404);
      expect((await adminFrom(address, `/iotas/${uuid()}`, "wrong-but-long-enough-xxxxxxxxxxxxxxxx")).status).toBe(401);
    });
  });
});

describe("admin body size (SPEC §8.2 r2)", () => {
  /** A valid Iota body padded with spaces to exactly `size` bytes. */
  function bodyOf(size: number): string {
    const body = JSON.stringify({ private_key_hash: keyHash() });
    return body.slice(0, -1) + " ".repeat(size - body.length) + "}";
  }

  it("accepts a body of exactly 64 KiB", async () => {
    const reply = await adminFrom(freshAddress(), `/iotas/${uuid()}`, ADMIN_TOKEN, { method: "PUT", body: bodyOf(LIMIT) });
    expect(reply.status).toBe(201);
  });

  it("answers 413 for one byte more, and creates nothing", async () => {
    const id = uuid();
    const reply = await adminFrom(freshAddress(), `/iotas/${id}`, ADMIN_TOKEN, { method: "PUT", body: bodyOf(LIMIT + 1) });
    expect(reply.status).toBe(413);
    expect(await reply.json()).toEqual({ error: "body_too_large", message: expect.any(String) });
    expect((await adminFrom(freshAddress(), `/iotas/${id}`, ADMIN_TOKEN)).status).toBe(404);
  });

  it("answers 413 for a body sent without a length that runs past 64 KiB", async () => {
    const chunk = new TextEncoder().encode(" ".repeat(16 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Far more than the limit, as an attacker would: the reader must stop early.
        if (sent++ < 1_000) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const reply = await adminFrom(freshAddress(), `/iotas/${uuid()}`, ADMIN_TOKEN, { method: "PUT", body: stream });
    expect(reply.status).toBe(413);
    expect(sent).toBeLessThan(20);
  });

  it("reads a body sent without a length that fits", async () => {
    const id = uuid();
    const bytes = new TextEncoder().encode(bodyOf(1_000));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
    const reply = await adminFrom(freshAddress(), `/iotas/${id}`, ADMIN_TOKEN, { method: "PUT", body: stream });
    expect(reply.status).toBe(201);
    expect(await reply.json()).toEqual({ iota_id: id, users: [] });
  });

  it("answers a stranger 401, not 413, whatever the body's size", async () => {
    const reply = await adminFrom(freshAddress(), `/iotas/${uuid()}`, "not-the-token-xxxxxxxxxxxxxxxxxxxxxxxx", { method: "PUT", body: bodyOf(LIMIT * 2) });
    expect(reply.status).toBe(401);
  });
});
