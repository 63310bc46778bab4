/**
 * What outside consumers and browsers load (`omikron/peer`, .ci/build-peer.mjs): one module
 * built for a neutral platform, so a Node built-in anywhere in the library fails the build, and
 * without zod, which only the separate schemas entry carries.
 */
import { describe, expect, it } from "vitest";
import { bundlePeer } from "../../.ci/build-peer.mjs";

describe("the peer bundle", () => {
  it("builds for a neutral platform, with no Node built-in and no zod", async () => {
    const code = await bundlePeer({ minify: true });
    expect(code).toContain("keep-alive not answered");
    expect(code).not.toMatch(/["']node:/);
    // zod's error map names its issue codes; none of it may reach the bundle.
    expect(code).not.toContain("invalid_union");
    expect(code.length).toBeLessThan(16_000);
  });
});
