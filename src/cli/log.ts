import { scrubKnownSecrets } from '../util/env-ref.js';
import type { Logger } from '../util/logger.js';

export type { Logger };

/** stderr logging: stdout carries data only. Every line is scrubbed of known secrets. */
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
