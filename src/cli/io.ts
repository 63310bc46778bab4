/**
 * Everything the CLI touches outside itself, passed in, so the tests run it in-process with
 * captured output and the real entry point (`bin.ts`) wires it to the process.
 */
export interface Io {
  env: Readonly<Record<string, string | undefined>>;
  /** Writes one line (no trailing newline needed) to standard output. */
  stdout(line: string): void;
  /** Writes one line to standard error. */
  stderr(line: string): void;
  /** The lines typed (or piped) on standard input, for `connect`. */
  stdin(): AsyncIterable<string>;
  /**
   * Resolves when the user interrupts (Ctrl-C), for the sessions that run until then. Only
   * a command that calls it catches the interrupt; any other is ended by it as usual.
   */
  interrupted(): Promise<void>;
}
