#!/usr/bin/env node
/**
 * Runs the project's wrangler with the offline environment (offline-env.mjs) and the given
 * arguments, portably (no shell syntax), so `npm run build` and `npm run cf-typegen` behave
 * the same on a laptop, in CI and on a machine without internet access.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { OFFLINE_ENV } from "./offline-env.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// The package exports only package.json, so find its bin through that.
const wrangler = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin", "wrangler.js");
const child = spawn(process.execPath, [wrangler, ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, ...OFFLINE_ENV },
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
