/**
 * A throw-away local Omikron for the demo and the CLI's tests: wrangler's dev server in this
 * process, offline, on a free port of 127.0.0.1, with its own persistence directory (removed
 * on stop), and every var of wrangler.toml and a fresh admin token passed as bindings, so a
 * fresh clone needs no .dev.vars and a developer's .dev.vars changes nothing.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalWorker } from "../../.ci/local-worker.mjs";

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
  const persist = await mkdtemp(join(tmpdir(), "omikron-local-"));
  const logs: string[] = [];
  try {
    const worker = await startLocalWorker({ adminToken, persist, logs });
    const url = new URL("/", await worker.url).href.replace(/\/$/, "");
    return {
      url,
      adminToken,
      logs,
      async stop() {
        try {
          await worker.dispose();
        } finally {
          await rm(persist, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    await rm(persist, { recursive: true, force: true });
    throw error;
  }
}
