/**
 * How results and errors are printed: readable lines for a person, or with --json one JSON
 * document on stdout (errors as JSON on stderr), so a script never parses prose.
 */
import type { CliError } from "./exit.ts";
import type { Io } from "./io.ts";

export class Output {
  readonly json: boolean;
  readonly #io: Io;

  constructor(io: Io, json: boolean) {
    this.#io = io;
    this.json = json;
  }

  /** A command's result: `value` with --json, else `human` (lines, or a function building them). */
  result(value: unknown, human: string[] | (() => string[])): void {
    if (this.json) {
      this.#io.stdout(JSON.stringify(value));
      return;
    }
    for (const line of typeof human === "function" ? human() : human) this.#io.stdout(line);
  }

  /** A line of a stream (a session's frames): printed as soon as it happens. */
  event(value: unknown, human: string): void {
    this.#io.stdout(this.json ? JSON.stringify(value) : human);
  }

  /** A note for a person; with --json it goes to stderr, so stdout stays one document. */
  note(line: string): void {
    if (this.json) this.#io.stderr(line);
    else this.#io.stdout(line);
  }

  error(error: CliError): void {
    this.#io.stderr(this.json ? JSON.stringify({ error: error.error, message: error.message }) : `omikron: ${error.message}`);
  }
}
