/**
 * A throw-away local Omikron for the demo and the CLI's tests: wrangler's dev server in this
 * process, offline, on a free port of 127.0.0.1, with its own persistence directory (removed
 * on stop), and every var of wrangler.toml and a fresh admin token passed as bindings, so a
 * fresh clone needs no .dev.vars and a developer's .dev.vars changes nothing.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { applyOfflineEnv } from "../../.ci/offline-env.mjs";
import { wranglerVars } from "../../.ci/wrangler-vars.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface LocalRelay {
  /** The base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  adminToken: string;
  /** The relay's own structured log lines, in order (the last 10,000). */
  logs: string[];
  stop(): Promise<void>;
}

export async function startLocalRelay(): Promise<LocalRelay> {
  // A 64-character token: the relay refuses tokens shorter than 32 (SPEC §8.2 r2).
  const adminToken = randomBytes(32).toString("hex");
  // Must precede the import: wrangler reads these when its modules load.
  applyOfflineEnv();
  const { unstable_startWorker } = await import("wrangler");
  const persist = await mkdtemp(join(tmpdir(), "omikron-local-"));
  const logs: string[] = [];
  const bindings: Record<string, { type: "plain_text" | "secret_text"; value: string }> = {};
  for (const [name, value] of Object.entries(await wranglerVars())) bindings[name] = { type: "plain_text", value };
  bindings.ADMIN_TOKEN = { type: "secret_text", value: adminToken };
  let worker: Awaited<ReturnType<typeof unstable_startWorker>> | undefined;
  try {
    worker = await unstable_startWorker({
      config: join(ROOT, "wrangler.toml"),
      bindings,
      dev: {
        server: { hostname: "127.0.0.1", port: 0 },
        inspector: false,
        watch: false,
        liveReload: false,
        persist,
        logLevel: "warn",
        structuredLogsHandler: (log: { message: string }) => {
          if (logs.length >= 10_000) logs.shift();
          logs.push(log.message);
        },
      },
    });
    await worker.ready;
    const started = worker;
    const url = new URL("/", await worker.url).href.replace(/\/$/, "");
    return {
      url,
      adminToken,
      logs,
      async stop() {
        try {
          await started.dispose();
        } finally {
          await rm(persist, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    await worker?.dispose().catch(() => {});
    await rm(persist, { recursive: true, force: true });
    throw error;
  }
}
