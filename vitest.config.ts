import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { wranglerVars } from "./.ci/wrangler-vars.mjs";

const workerConfig = { configPath: "./wrangler.toml" };

/**
 * The admin token of the test projects: at least 32 characters, or the configuration is
 * invalid (SPEC §9 r2). Tests set it here and never read the developer's .dev.vars.
 */
const ADMIN_TOKEN = "test-admin-token-0123456789abcdef";

/**
 * Every binding the Worker reads is passed explicitly (wrangler.toml's vars, then the token),
 * so nothing comes from the developer's .dev.vars or environment (`.ci/wrangler-vars.mjs`).
 */
const defaults = { ...(await wranglerVars()), ADMIN_TOKEN };

/**
 * The per-address limits (SPEC §3, §8.2 r2) raised out of the way: in these projects every
 * request comes from one address (no CF-Connecting-IP), and the suites open hundreds of
 * sockets and try many wrong tokens. `worker-abuse` keeps wrangler.toml's limits and tests them.
 */
const UNLIMITED_ADDRESSES = {
  UPGRADE_LIMITER: { namespace_id: "7301", simple: { limit: 1_000_000, period: 60 as const } },
  ADMIN_FAILURE_LIMITER: { namespace_id: "7302", simple: { limit: 1_000_000, period: 60 as const } },
};

/**
 * Projects: `worker` runs inside the Workers runtime with the wrangler.toml defaults;
 * `worker-limits` is the same runtime with tiny limits and IOTA_AUTH=off, for the rules that
 * only show at a limit; `worker-abuse` keeps the production limits (per-address limiters,
 * buckets, caps) and holds the attack tests, with a short idle timeout so dead peers show;
 * `worker-faults` runs the real classes behind a test-only entry that injects directory faults;
 * `node` runs the runtime-free codec's property tests and the check that the production bundle
 * holds no test module; `cli`, `e2e` and `peer` run in Node against a real local server
 * (`e2e` through the peer library, with a raw `ws` socket only for frames the library never
 * sends); `browser` runs the peer library in headless Chromium against that server.
 */
export default defineConfig({
  test: {
    // The relay logs a JSON line per connection event; show them only for failing tests.
    silent: "passed-only",
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: workerConfig,
            miniflare: { bindings: defaults, ratelimits: UNLIMITED_ADDRESSES },
          }),
        ],
        test: { name: "worker", include: ["test/worker/**/*.test.ts"] },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: workerConfig,
            miniflare: { bindings: { ...defaults, IDLE_TIMEOUT_MS: "1200" } },
          }),
        ],
        test: { name: "worker-abuse", include: ["test/worker-abuse/**/*.test.ts"] },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: workerConfig,
            miniflare: {
              bindings: {
                ...defaults,
                IOTA_AUTH: "off",
                MAX_DEVICES_PER_USER: "2",
                CALL_MAX_MEMBERS: "3",
                RATE_LIMIT_PER_SEC: "2",
                RATE_LIMIT_BURST: "3",
                IOTA_RATE_LIMIT_PER_SEC: "2",
                IOTA_RATE_LIMIT_BURST: "3",
                RATE_LIMIT_CLOSE_AFTER_MS: "600",
                IDENTIFY_TIMEOUT_MS: "1500",
                MAX_UNIDENTIFIED_PER_OBJECT: "3",
                MAX_MESSAGE_BYTES: "1024",
              },
              ratelimits: UNLIMITED_ADDRESSES,
            },
          }),
        ],
        test: { name: "worker-limits", include: ["test/worker-limits/**/*.test.ts"] },
      },
      {
        // The real Worker behind a test-only entry whose fault switch production cannot reach:
        // directory objects unreachable from hubs, stalled lookups, a push that fails once.
        plugins: [
          cloudflareTest({
            main: "./test/worker-faults/entry.ts",
            wrangler: workerConfig,
            miniflare: { bindings: defaults, ratelimits: UNLIMITED_ADDRESSES },
          }),
        ],
        test: { name: "worker-faults", include: ["test/worker-faults/**/*.test.ts"] },
      },
      {
        // Runtime-free code (the codec) with its property tests, cheapest in Node; and the
        // production bundle's contents, which only a Node-side bundler can show.
        test: { name: "node", include: ["test/node/**/*.test.ts"], environment: "node" },
      },
      {
        // The operator CLI and the demo (src/cli), run in-process against a real local server.
        test: {
          name: "cli",
          include: ["test/cli/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The peer library (src/peer) in Node: its reconnect policy against a scripted server,
        // everything else against the real local server.
        test: {
          name: "peer",
          include: ["test/peer/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The peer library in headless Chromium (playwright-core), against the real server.
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
