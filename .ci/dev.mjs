#!/usr/bin/env node
/**
 * `npm run dev`: the Omikron on localhost with the built-in directory. On a fresh clone it
 * creates .dev.vars from .dev.vars.example with a random admin token (SPEC §9 r2 wants at
 * least 32 characters, so no fixed example token could be safe to copy), sets the offline
 * variables portably (no shell syntax), prints the token, and runs `wrangler dev` with any
 * extra arguments.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { OFFLINE_ENV } from "./offline-env.mjs";

const MIN_TOKEN_LENGTH = 32;
/** The fixed token .dev.vars.example carried before tokens had a minimum length. */
const OLD_EXAMPLE_TOKEN = "dev-admin-token";
const TOKEN_LINE = /^ADMIN_TOKEN=(.*)$/m;

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const devVars = join(root, ".dev.vars");
const freshToken = () => randomBytes(32).toString("hex");

if (!existsSync(devVars)) {
  const example = readFileSync(join(root, ".dev.vars.example"), "utf8");
  const line = `ADMIN_TOKEN=${freshToken()}`;
  writeFileSync(devVars, TOKEN_LINE.test(example) ? example.replace(TOKEN_LINE, line) : `${example}${line}\n`, { mode: 0o600 });
  console.log("Created .dev.vars with a random ADMIN_TOKEN");
} else if (TOKEN_LINE.exec(readFileSync(devVars, "utf8"))?.[1]?.trim() === OLD_EXAMPLE_TOKEN) {
  // A clone from before the minimum length would otherwise start a server that answers
  // every request 500 config_invalid; that token was never a secret, so replace it.
  writeFileSync(devVars, readFileSync(devVars, "utf8").replace(TOKEN_LINE, `ADMIN_TOKEN=${freshToken()}`));
  console.log(`Replaced the old example token in .dev.vars (${OLD_EXAMPLE_TOKEN}) with a random one`);
}
const token = TOKEN_LINE.exec(readFileSync(devVars, "utf8"))?.[1]?.trim();
if (!token) {
  console.log("No ADMIN_TOKEN in .dev.vars: the admin API answers 503 until you set one.");
} else if (token.length < MIN_TOKEN_LENGTH) {
  console.log(`ADMIN_TOKEN in .dev.vars is shorter than ${MIN_TOKEN_LENGTH} characters: every request will answer 500 config_invalid until you lengthen it.`);
} else {
  console.log(`Admin token for this dev server: ${token}  (curl -H "Authorization: Bearer ${token}" ...)`);
}

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
