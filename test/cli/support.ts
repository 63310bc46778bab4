/**
 * Runs the CLI in-process (its `main`, with captured output) against one real local relay
 * per test file, so every command is checked end to end without a process start per call.
 */
import { randomUUID } from "node:crypto";
import { type Io, main } from "../../src/cli/index.ts";
import { type LocalRelay, startLocalRelay } from "../../src/cli/local-relay.ts";

export interface Run {
  code: number;
  stdout: string[];
  stderr: string[];
  /** stdout parsed as the one JSON document --json promises. */
  json(): unknown;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Lines fed to the command's standard input: a list, or `Lines` the test feeds as it goes. */
  stdin?: Iterable<string> | AsyncIterable<string>;
  /** Called with every stdout line as it is written, for a test that reacts to a session. */
  onLine?: (line: string) => void;
}

/** Standard input a test writes to while the command runs; `end()` is the end of input. */
export class Lines implements AsyncIterable<string> {
  #queue: (string | null)[] = [];
  #wake: (() => void) | null = null;

  push(line: string): void {
    this.#queue.push(line);
    this.#wake?.();
  }

  end(): void {
    this.#queue.push(null);
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    for (;;) {
      const next = this.#queue.shift();
      if (next === null) return;
      if (next !== undefined) yield next;
      else await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}

/** Resolves with the first line `predicate` accepts; pass its `onLine` to `run`. */
export function awaitLine(predicate: (line: string) => boolean): { onLine: (line: string) => void; line: Promise<string> } {
  let resolve!: (line: string) => void;
  const line = new Promise<string>((settle) => (resolve = settle));
  return { line, onLine: (text) => predicate(text) && resolve(text) };
}

export async function run(argv: string[], options: RunOptions = {}): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: Io = {
    env: options.env ?? {},
    stdout: (line) => {
      stdout.push(line);
      options.onLine?.(line);
    },
    stderr: (line) => stderr.push(line),
    stdin: async function* () {
      yield* options.stdin ?? [];
    },
    interrupted: () => new Promise(() => {}),
  };
  const code = await main(argv, io);
  return {
    code,
    stdout,
    stderr,
    json() {
      if (stdout.length !== 1) throw new Error(`expected one JSON line on stdout, got ${JSON.stringify(stdout)}`);
      return JSON.parse(stdout[0] ?? "");
    },
  };
}

export { randomUUID as uuid };

/** The relay's URL and token as the CLI reads them from the environment. */
export function envOf(relay: LocalRelay): Record<string, string> {
  return { OMIKRON_URL: relay.url, OMIKRON_ADMIN_TOKEN: relay.adminToken };
}

export { startLocalRelay };
export type { LocalRelay };
