#!/usr/bin/env node
/** The CLI as a process: `node src/cli/bin.ts <command> ...` (what `npm run omikron` runs). */
import { once } from "node:events";
import { type Interface, createInterface } from "node:readline";
import { main } from "./index.ts";

let stdin: Interface | undefined;

process.exitCode = await main(process.argv.slice(2), {
  env: process.env,
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
  stdin: () => (stdin ??= createInterface({ input: process.stdin, terminal: false })),
  interrupted: () => once(process, "SIGINT").then(() => undefined),
});
// A session the relay ended leaves standard input open; it must not keep the process alive.
if (stdin) {
  stdin.close();
  process.stdin.destroy();
}
