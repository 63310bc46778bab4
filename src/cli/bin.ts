#!/usr/bin/env node
/** The CLI as a process: `node src/cli/bin.ts <command> ...` (what `npm run omikron` runs). */
import { once } from "node:events";
import { createInterface } from "node:readline";
import { main } from "./index.ts";

process.exitCode = await main(process.argv.slice(2), {
  env: process.env,
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
  stdin: () => createInterface({ input: process.stdin, terminal: false }),
  interrupted: () => once(process, "SIGINT").then(() => undefined),
});
