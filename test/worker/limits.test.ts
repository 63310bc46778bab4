/**
 * The frame and byte buckets and their episodes (SPEC §9), driven with explicit clocks.
 */
import { describe, expect, it } from "vitest";
import { RateLimiter, type RateSettings } from "../../src/limits";

const BYTES = { bytesPerSecond: 1_000_000, bytesBurst: 1_000_000 };

function limiter(settings: Partial<RateSettings> & Pick<RateSettings, "perSecond" | "burst" | "closeAfterMs">): RateLimiter {
  return new RateLimiter({ ...BYTES, ...settings }, 0);
}

const frame = "x";

describe("frame bucket and episodes (SPEC §9)", () => {
  it("passes the burst at once and rejects the next message", () => {
    const bucket = limiter({ perSecond: 2, burst: 3, closeAfterMs: 10_000 });
    expect([0, 0, 0, 0].map((t) => bucket.take(t, frame))).toEqual(["pass", "pass", "pass", "reject"]);
  });

  it("refills at the sustained rate and never beyond the burst", () => {
    const bucket = limiter({ perSecond: 2, burst: 3, closeAfterMs: 10_000 });
    for (let i = 0; i < 3; i++) expect(bucket.take(0, frame)).toBe("pass");
    expect(bucket.take(500, frame)).toBe("pass");
    expect(bucket.take(500, frame)).toBe("reject");
    // An hour later the bucket holds the burst again, and the next rejection starts a new episode.
    expect([0, 1, 2, 3].map(() => bucket.take(3_600_000, frame))).toEqual(["pass", "pass", "pass", "reject"]);
  });

  it("answers only an episode's first rejection and drops the rest, even across passes", () => {
    const bucket = limiter({ perSecond: 1, burst: 4, closeAfterMs: 10_000 });
    const verdicts = [0, 0, 0, 0, 0, 500, 999, 1_000, 1_000, 1_999].map((t) => bucket.take(t, frame));
    expect(verdicts).toEqual(["pass", "pass", "pass", "pass", "reject", "drop", "drop", "pass", "drop", "drop"]);
  });

  it("closes once an episode has lasted closeAfterMs, with fewer drops than the burst", () => {
    const bucket = limiter({ perSecond: 1, burst: 5, closeAfterMs: 2_500 });
    for (let i = 0; i < 5; i++) bucket.take(0, frame);
    const verdicts = [0, 900, 1_000, 1_800, 2_000, 2_499, 2_500].map((t) => bucket.take(t, frame));
    expect(verdicts).toEqual(["reject", "drop", "pass", "drop", "pass", "drop", "close"]);
  });

  it("starts a new episode after one second without a rejection", () => {
    const bucket = limiter({ perSecond: 1, burst: 3, closeAfterMs: 1_500 });
    for (let i = 0; i < 3; i++) bucket.take(0, frame);
    expect(bucket.take(0, frame)).toBe("reject");
    expect([bucket.take(1_000, frame), bucket.take(1_000, frame)]).toEqual(["pass", "reject"]);
    // The new episode began at 1 000, so 2 499 is not yet 1 500 ms into it, and 2 500 is.
    expect([bucket.take(1_500, frame), bucket.take(2_000, frame), bucket.take(2_000, frame), bucket.take(2_499, frame)]).toEqual([
      "drop",
      "pass",
      "drop",
      "drop",
    ]);
    expect(bucket.take(2_500, frame)).toBe("close");
  });

  it("closes at once when an episode has dropped more frames than the burst (SPEC §9 r2)", () => {
    const bucket = limiter({ perSecond: 100, burst: 200, closeAfterMs: 10_000 });
    const verdicts = Array.from({ length: 402 }, () => bucket.take(0, frame));
    expect(verdicts.slice(0, 200).every((v) => v === "pass")).toBe(true);
    expect(verdicts[200]).toBe("reject");
    // 200 drops are the burst; the 201st drop is more than it.
    expect(verdicts.slice(201, 401).every((v) => v === "drop")).toBe(true);
    expect(verdicts[401]).toBe("close");
  });

  it("does not carry drops over into a new episode", () => {
    const bucket = limiter({ perSecond: 1, burst: 2, closeAfterMs: 10_000 });
    const first = [0, 0, 0, 0, 0].map((t) => bucket.take(t, frame));
    expect(first).toEqual(["pass", "pass", "reject", "drop", "drop"]);
    const second = [5_000, 5_000, 5_000, 5_000, 5_000].map((t) => bucket.take(t, frame));
    expect(second).toEqual(["pass", "pass", "reject", "drop", "drop"]);
  });
});

describe("byte bucket (SPEC §9 r2)", () => {
  it("counts text frames in UTF-8 bytes and binary frames in bytes", () => {
    const bucket = new RateLimiter({ perSecond: 1_000, burst: 1_000, bytesPerSecond: 1, bytesBurst: 9, closeAfterMs: 10_000 }, 0);
    expect(bucket.take(0, "é€")).toBe("pass");
    expect(bucket.take(0, new ArrayBuffer(4))).toBe("pass");
    expect(bucket.take(0, "é")).toBe("reject");
  });

  it("rejects a frame the byte bucket cannot hold though the frame bucket has tokens", () => {
    const bucket = new RateLimiter({ perSecond: 100, burst: 100, bytesPerSecond: 100, bytesBurst: 300, closeAfterMs: 10_000 }, 0);
    const big = "b".repeat(200);
    expect([bucket.take(0, big), bucket.take(0, big)]).toEqual(["pass", "reject"]);
    // A smaller frame still fits what is left, and a second later the bucket has refilled.
    expect(bucket.take(0, "b".repeat(100))).toBe("pass");
    expect(bucket.take(999, big)).toBe("drop");
    expect(bucket.take(2_100, big)).toBe("pass");
  });

  it("charges a broadcast's further receivers, rejecting what it cannot afford without charging it", () => {
    const bucket = new RateLimiter({ perSecond: 100, burst: 100, bytesPerSecond: 1, bytesBurst: 1_000, closeAfterMs: 10_000 }, 0);
    expect(bucket.take(0, "c".repeat(300))).toBe("pass");
    expect(bucket.spend(0, 600)).toBe("pass");
    expect(bucket.spend(0, 600)).toBe("reject");
    expect(bucket.spend(0, 100)).toBe("pass");
  });

  it("shares one episode between the two buckets", () => {
    const bucket = new RateLimiter({ perSecond: 1, burst: 2, bytesPerSecond: 1, bytesBurst: 10, closeAfterMs: 10_000 }, 0);
    expect(bucket.take(0, "d".repeat(10))).toBe("pass");
    expect(bucket.take(0, "d")).toBe("reject");
    expect(bucket.spend(0, 5)).toBe("drop");
    expect(bucket.take(0, "d")).toBe("drop");
    expect(bucket.take(0, "d")).toBe("close");
  });
});
