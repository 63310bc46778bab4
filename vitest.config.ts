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
 * Four projects: `worker` runs inside the Workers runtime with the wrangler.toml defaults;
 * `worker-limits` is the same runtime with tiny limits and IOTA_AUTH=off, for the rules that
 * only show at a limit; `node` runs the runtime-free codec's property tests in Node; `e2e` runs
 * in Node against a real local server with the `ws` client.
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
            miniflare: { bindings: defaults },
          }),
        ],
        test: { name: "worker", include: ["test/worker/**/*.test.ts"] },
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
            miniflare: { bindings: { ADMIN_TOKEN } },
          }),
        ],
        test: { name: "worker-faults", include: ["test/worker-faults/**/*.test.ts"] },
      },
      {
        // Runtime-free code (the codec) with its property tests: cheapest in Node.
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
    ],
  },
});
