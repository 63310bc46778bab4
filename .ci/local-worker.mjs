// @ts-check
/**
 * This Worker on wrangler's dev server in the calling process: offline, on 127.0.0.1, with no
 * inspector, watcher or reload, and every var of wrangler.toml plus the admin token passed as
 * explicit bindings (so a developer's .dev.vars changes nothing). The one start-up shared by
 * the end-to-end harness, the benchmarks and the CLI's throw-away relay.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { applyOfflineEnv } from "./offline-env.mjs";
import { wranglerVars } from "./wrangler-vars.mjs";

const CONFIG = join(dirname(fileURLToPath(import.meta.url)), "..", "wrangler.toml");

/**
 * Starts the Worker and waits until it is ready; if it never gets ready, it is disposed.
 * `logs` receives the relay's structured log lines, keeping the last 10,000. `inspectorPort`
 * turns the devtools inspector on, for `bench/relay.mjs --profile` only: it doubles the
 * runtime's CPU per message, so nothing that measures runs with it.
 * @param {{ adminToken: string, persist: string, logs: string[], port?: number, vars?: Record<string, string>, entrypoint?: string, inspectorPort?: number }} options
 */
export async function startLocalWorker(options) {
  // Must precede the import: wrangler reads these when its modules load.
  applyOfflineEnv();
  const { unstable_startWorker } = await import("wrangler");
  /** @type {Record<string, { type: "plain_text" | "secret_text", value: string }>} */
  const bindings = {};
  for (const [name, value] of Object.entries({ ...(await wranglerVars()), ...options.vars })) bindings[name] = { type: "plain_text", value };
  bindings.ADMIN_TOKEN = { type: "secret_text", value: options.adminToken };
  const { logs } = options;
  const worker = await unstable_startWorker({
    config: CONFIG,
    ...(options.entrypoint ? { entrypoint: options.entrypoint } : {}),
    bindings,
    dev: {
      server: { hostname: "127.0.0.1", port: options.port ?? 0 },
      inspector: options.inspectorPort ? { port: options.inspectorPort } : false,
      watch: false,
      liveReload: false,
      persist: options.persist,
      logLevel: "warn",
      // The relay logs one JSON line per connection event; kept for the caller (a failing
      // test's report, the CLI's tests) instead of flooding the output.
      structuredLogsHandler: (/** @type {{ message: string }} */ log) => {
        if (logs.length >= 10_000) logs.shift();
        logs.push(log.message);
      },
    },
  });
  try {
    await worker.ready;
  } catch (error) {
    await worker.dispose().catch(() => {});
    throw error;
  }
  return worker;
}
