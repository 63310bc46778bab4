#!/usr/bin/env node
/**
 * `npm run dev`: the Omikron on localhost with the built-in directory. Creates .dev.vars from
 * .dev.vars.example on a fresh clone, sets the offline variables portably (no shell syntax),
 * prints the development admin token, and runs `wrangler dev` with any extra arguments.
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { OFFLINE_ENV } from "./offline-env.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const devVars = join(root, ".dev.vars");
if (!existsSync(devVars)) {
  copyFileSync(join(root, ".dev.vars.example"), devVars);
  console.log("Created .dev.vars from .dev.vars.example");
}
const token = /^ADMIN_TOKEN=(.*)$/m.exec(readFileSync(devVars, "utf8"))?.[1]?.trim();
console.log(
  token
    ? `Admin token for this dev server: ${token}  (curl -H "Authorization: Bearer ${token}" ...)`
    : "No ADMIN_TOKEN in .dev.vars: the admin API answers 503 until you set one.",
);

// The package exports only package.json, so find its bin through that.
const wranglerPackage = createRequire(import.meta.url).resolve("wrangler/package.json");
const wrangler = join(dirname(wranglerPackage), "bin", "wrangler.js");
const child = spawn(process.execPath, [wrangler, "dev", ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, ...OFFLINE_ENV },
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
