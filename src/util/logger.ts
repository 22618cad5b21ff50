/** Log lines for people (stderr in the CLI): stdout carries data only. */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  verbose(msg: string): void;
  readonly isVerbose: boolean;
  readonly isQuiet: boolean;
}
