/**
 * The CLI's exit codes, a contract with the scripts that call it (README "Operator CLI"),
 * and the one error type that carries one.
 */
export const EXIT = {
  /** The command did what it was asked. */
  ok: 0,
  /** The relay answered and said no: not found, refused, invalid, a server error. */
  failed: 1,
  /** The command line is wrong: unknown command or option, a missing or malformed argument. Nothing was sent. */
  usage: 2,
  /** The admin API could not be used at all: unreachable, timed out, wrong token, admin disabled, rate limited. */
  unreachable: 3,
  /** The change stands but has not reached every object yet (503 propagation_pending); the relay keeps pushing it. */
  pending: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  readonly exitCode: ExitCode;
  /** The relay's error code (e.g. `not_found`), for --json output. */
  readonly error: string;

  constructor(exitCode: ExitCode, error: string, message: string) {
    super(message);
    this.exitCode = exitCode;
    this.error = error;
  }
}

export const usageError = (message: string) => new CliError(EXIT.usage, "usage", message);
