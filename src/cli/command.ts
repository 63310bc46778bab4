/**
 * What a command is (its arguments, options and help) and how its command line is parsed,
 * with `node:util` parseArgs: strict, so a mistyped option is a usage error, not ignored.
 */
import { parseArgs } from "node:util";
import type { AdminClient } from "./admin-client.ts";
import { usageError } from "./exit.ts";
import type { Io } from "./io.ts";
import type { Output } from "./output.ts";

export interface OptionDef {
  type: "string" | "boolean";
  description: string;
  /** The placeholder shown in help for a string option, e.g. `<hex>`. */
  value?: string;
  short?: string;
}

export interface ArgDef {
  name: string;
  description: string;
  optional?: boolean;
}

export type Options = Record<string, OptionDef>;

export type Values<O extends Options> = {
  [K in keyof O]?: O[K]["type"] extends "boolean" ? boolean : string;
};

/** The options every command takes. */
export const COMMON_OPTIONS = {
  json: { type: "boolean", description: "print machine-readable JSON on stdout" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const satisfies Options;

/** The option of every command that talks to a relay. */
export const URL_OPTIONS = {
  url: {
    type: "string",
    value: "<url>",
    description: "the relay's base URL (default: $OMIKRON_URL, else http://localhost:8787)",
  },
} as const satisfies Options;

/** The options of every command that uses the admin API. */
export const ADMIN_OPTIONS = {
  ...URL_OPTIONS,
  token: {
    type: "string",
    value: "<token>",
    description: "the admin token (default: $OMIKRON_ADMIN_TOKEN; prefer the variable, a flag shows in `ps`)",
  },
} as const satisfies Options;

export interface Context<O extends Options> {
  values: Values<O> & Values<typeof COMMON_OPTIONS> & Values<typeof ADMIN_OPTIONS>;
  /** Positional arguments by name; optional ones may be undefined. */
  args: Record<string, string | undefined>;
  io: Io;
  out: Output;
  /** The relay's base URL, from --url, $OMIKRON_URL or the local default. */
  url(): string;
  /** An admin API client; a usage error when no token was given. */
  admin(): AdminClient;
}

export interface Command<O extends Options = Options> {
  /** The words that name it, e.g. ["iota", "add"]. */
  path: readonly string[];
  summary: string;
  /** More help text, shown below the usage line. */
  details?: string;
  args: readonly ArgDef[];
  options: O;
  /** What the command talks to: the admin API (--url, --token), a relay's sockets (--url), nothing. */
  relay: "admin" | "socket" | "none";
  run(context: Context<O>): Promise<number>;
}

/** Keeps the option types of a command literal, so `run` sees typed values. */
export function defineCommand<const O extends Options>(command: Command<O>): Command {
  return command as unknown as Command;
}

function allOptions(command: Command): Options {
  const relay = { admin: ADMIN_OPTIONS, socket: URL_OPTIONS, none: {} }[command.relay];
  return { ...command.options, ...relay, ...COMMON_OPTIONS };
}

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  args: Record<string, string | undefined>;
}

/** Parses the words after the command's name; throws a usage error naming what is wrong. */
export function parseCommandLine(command: Command, argv: string[]): Parsed {
  const options = allOptions(command);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw usageError(error instanceof Error ? error.message : String(error));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) return { values, args: {} };
  const required = command.args.filter((arg) => !arg.optional).length;
  if (parsed.positionals.length < required) {
    throw usageError(`missing <${command.args[parsed.positionals.length]?.name}>`);
  }
  if (parsed.positionals.length > command.args.length) {
    throw usageError(`unexpected argument ${JSON.stringify(parsed.positionals[command.args.length])}`);
  }
  const args: Record<string, string | undefined> = {};
  command.args.forEach((arg, index) => {
    args[arg.name] = parsed.positionals[index];
  });
  return { values, args };
}

export function usageLine(command: Command): string {
  const args = command.args.map((arg) => (arg.optional ? `[<${arg.name}>]` : `<${arg.name}>`));
  return ["omikron", ...command.path, ...args, "[options]"].join(" ");
}

export function helpText(command: Command): string {
  const lines = [`Usage: ${usageLine(command)}`, "", command.summary];
  if (command.details) lines.push("", command.details);
  if (command.args.length > 0) {
    lines.push("", "Arguments:");
    for (const arg of command.args) lines.push(`  ${`<${arg.name}>`.padEnd(26)}${arg.description}`);
  }
  lines.push("", "Options:");
  for (const [name, option] of Object.entries(allOptions(command))) {
    const flag = `${option.short ? `-${option.short}, ` : ""}--${name}${option.value ? ` ${option.value}` : ""}`;
    lines.push(`  ${flag.padEnd(26)}${option.description}`);
  }
  return lines.join("\n");
}
