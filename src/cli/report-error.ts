import { type Command, CommanderError } from 'commander';
import { CliError, ExitCode, systemFailure } from '../errors.js';
import { scrubKnownSecrets } from '../util/env-ref.js';
import { PipeClosed } from './output.js';

/** The subcommand named on the command line (`export`, `jobs list`), for a help hint. */
function commandPath(program: Command, argv: string[]): string {
  const names: string[] = [];
  let cmd: Command = program;
  for (const a of argv.slice(2)) {
    if (a.startsWith('-')) continue;
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!sub) break;
    names.push(sub.name());
    cmd = sub;
  }
  return ['bifrost-logs', ...names].join(' ');
}

export interface PrintOptions {
  verbose: boolean;
  /** Names what failed (an export of `run`), between "bifrost-logs:" and the message. */
  label?: string;
  /** The error line alone: no hint, detail or causes. */
  brief?: boolean;
}

/** A CliError as its line(s) on stderr: the message, its problems or detail, its hint, and with --verbose its causes. */
export function printError(err: CliError, o: PrintOptions): void {
  const head = o.label ? `bifrost-logs: ${o.label}: ` : 'bifrost-logs: ';
  const problems = (err as { problems?: string[] }).problems;
  if (problems && problems.length > 1) {
    process.stderr.write(scrubKnownSecrets(`${head}could not ${err.action}: ${problems.length} problems\n${problems.map((p) => `  ${p}`).join('\n')}\n`));
  } else process.stderr.write(scrubKnownSecrets(`${head}${err.message}\n`));
  if (o.brief) return;
  if (err.detail) process.stderr.write(scrubKnownSecrets(err.detail.replace(/\n?$/, '\n')));
  if (err.hint) process.stderr.write(scrubKnownSecrets(`hint: ${err.hint}\n`));
  if (o.verbose) printCauses(err);
}

/** The one top-level handler's translation: any error becomes a line, a hint and an exit code. */
export function reportError(err: unknown, verbose: boolean, program?: Command, argv: string[] = []): number {
  if (err instanceof PipeClosed) return ExitCode.ok;
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
    // One line: the suggestion stays on it, in our words.
    const msg = err.message.replace(/^error: /, '').replace(/\s*\(Did you mean (.+?)\?\)\s*$/s, ' (did you mean $1?)').replace(/\s*\n\s*/g, ' ').trim();
    process.stderr.write(`bifrost-logs: could not parse the command line: ${msg}\n`);
    const where = program ? commandPath(program, argv) : 'bifrost-logs';
    if (err.code !== 'commander.executeSubCommandAsync') process.stderr.write(`hint: see ${where} --help\n`);
    return ExitCode.usage;
  }
  if (err instanceof CliError) {
    printError(err, { verbose });
    return err.exitCode;
  }
  const sys = systemFailure(err);
  if (sys) {
    process.stderr.write(scrubKnownSecrets(`bifrost-logs: could not finish: ${sys.why}: ${(err as Error)?.message ?? String(err)}\n`));
    process.stderr.write(`hint: ${sys.hint}\n`);
    if (verbose) printCauses(err as Error);
    return sys.exitCode;
  }
  const e = err as Error;
  process.stderr.write(scrubKnownSecrets(`bifrost-logs: could not finish: internal error: ${e?.message ?? String(err)}\n`));
  process.stderr.write('hint: this is a bug; run again with --verbose and report the output\n');
  if (verbose && e?.stack) process.stderr.write(scrubKnownSecrets(e.stack) + '\n');
  return ExitCode.software;
}

function printCauses(err: Error): void {
  let c: unknown = err.cause;
  let depth = 0;
  while (c && depth++ < 8) {
    const e = c as Error;
    process.stderr.write(scrubKnownSecrets(`  caused by: ${e?.message ?? String(c)}\n`));
    c = e?.cause;
  }
}
