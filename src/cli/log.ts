import { scrubKnownSecrets } from '../util/env-ref.js';

/** stderr logging: stdout carries data only. Every line is scrubbed of known secrets. */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  verbose(msg: string): void;
  readonly isVerbose: boolean;
  readonly isQuiet: boolean;
}

export function createLogger(opts: { quiet?: boolean; verbose?: boolean }, stream: NodeJS.WriteStream = process.stderr): Logger {
  const out = (line: string) => stream.write(`${scrubKnownSecrets(line)}\n`);
  return {
    info: (m) => { if (!opts.quiet) out(m); },
    warn: (m) => out(`bifrost-logs: warning: ${m}`),
    verbose: (m) => { if (opts.verbose) out(m); },
    isVerbose: !!opts.verbose,
    isQuiet: !!opts.quiet,
  };
}
