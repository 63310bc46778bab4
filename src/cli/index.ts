/**
 * The operator CLI, `npm run omikron -- <command>`: the admin API (SPEC §8.2), key
 * generation, and interactive peer sessions, for a person or a script (--json, exit codes
 * in `exit.ts`). Node-only; the Worker never imports it. `bin.ts` runs `main` as a process.
 */
import { AdminClient } from "./admin-client.ts";
import { type Command, type Context, type Options, helpText, parseCommandLine, usageLine } from "./command.ts";
import { COMMANDS } from "./commands/index.ts";
import { CliError, EXIT } from "./exit.ts";
import type { Io } from "./io.ts";
import { Output } from "./output.ts";

export { EXIT } from "./exit.ts";
export type { Io } from "./io.ts";

/** The local dev server (`npm run dev`). */
const DEFAULT_URL = "http://localhost:8787";

function overview(commands: readonly Command[], prefix: readonly string[]): string {
  const width = Math.max(...commands.map((command) => command.path.join(" ").length)) + 2;
  return [
    `Usage: omikron ${prefix.length > 0 ? `${prefix.join(" ")} ` : ""}<command> [options]   (npm run omikron -- ...)`,
    "",
    "Commands:",
    ...commands.map((command) => `  ${command.path.join(" ").padEnd(width)}${command.summary}`),
    "",
    "Every command takes --help, and --json for machine-readable output. Commands that talk to",
    "a relay take --url (or $OMIKRON_URL) and --token (or $OMIKRON_ADMIN_TOKEN).",
    "Exit codes: 0 ok, 1 the relay said no (not found, refused, invalid), 2 usage error,",
    "3 relay unreachable / token refused / admin disabled, 4 change stands but propagation pending.",
  ].join("\n");
}

/** The command named by the leading words of argv, and the words after them. */
function find(argv: readonly string[]): { command: Command; rest: string[] } | { group: Command[]; prefix: string[] } {
  let candidates = [...COMMANDS];
  const prefix: string[] = [];
  for (const word of argv) {
    if (word.startsWith("-")) break;
    const next = candidates.filter((command) => command.path[prefix.length] === word);
    if (next.length === 0) break;
    prefix.push(word);
    candidates = next;
    const exact = candidates.find((command) => command.path.length === prefix.length);
    if (exact) return { command: exact, rest: argv.slice(prefix.length) };
  }
  return { group: candidates, prefix };
}

/** Runs one command line; answers the exit code. Never throws. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const wantsJson = argv.includes("--json");
  const found = find(argv);
  if ("group" in found) {
    const { group, prefix } = found;
    const next = argv[prefix.length];
    if (next === undefined || next === "--help" || next === "-h") {
      io.stdout(overview(group, prefix));
      return next === undefined ? EXIT.usage : EXIT.ok;
    }
    const help = ["omikron", ...prefix, "--help"].join(" ");
    new Output(io, wantsJson).error(
      new CliError(EXIT.usage, "usage", `unknown command ${JSON.stringify([...prefix, next].join(" "))}; see ${help}`),
    );
    return EXIT.usage;
  }
  const { command, rest } = found;
  const out = new Output(io, wantsJson);
  try {
    const { values, args } = parseCommandLine(command, rest);
    if (values.help) {
      io.stdout(helpText(command));
      return EXIT.ok;
    }
    const url = () => {
      const raw = (values.url as string | undefined) ?? io.env.OMIKRON_URL ?? DEFAULT_URL;
      if (!URL.canParse(raw) || !/^https?:$/.test(new URL(raw).protocol)) {
        throw new CliError(EXIT.usage, "usage", `--url: not an http(s) URL: ${JSON.stringify(raw)}`);
      }
      return raw;
    };
    const context: Context<Options> = {
      values: values as Context<Options>["values"],
      args,
      io,
      out,
      url,
      admin() {
        // Trimmed as the Omikron trims its secret; what is left must fit in an HTTP header, so
        // a line copied along with the token (a comment of .dev.vars, say) is a usage error,
        // not an unreachable relay.
        const token = ((values.token as string | undefined) ?? io.env.OMIKRON_ADMIN_TOKEN)?.trim();
        if (!token) throw new CliError(EXIT.usage, "usage", "no admin token: give --token or set OMIKRON_ADMIN_TOKEN");
        if (/[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]/.test(token)) {
          throw new CliError(EXIT.usage, "usage", "the admin token holds a line break or another character an HTTP header cannot carry");
        }
        return new AdminClient(url(), token);
      },
    };
    return await command.run(context);
  } catch (error) {
    const failure =
      error instanceof CliError ? error : new CliError(EXIT.failed, "internal", error instanceof Error ? error.message : String(error));
    out.error(failure);
    if (failure.exitCode === EXIT.usage) io.stderr(`usage: ${usageLine(command)}  (see --help)`);
    return failure.exitCode;
  }
}
