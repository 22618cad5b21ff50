import { CliError, ExitCode, isUnreachable } from '../../errors.js';

/** Maps a ClickHouse or transport error to the exit-code table. */
export function chError(action: string, err: unknown, where: string): CliError {
  if (err instanceof CliError) return err;
  const e = err as { code?: string; type?: string; message?: string };
  const msg = (e.message ?? String(err)).split('\n')[0]!.trim();
  const why = `${where}: ${msg}`;
  const code = Number(e.code);
  if (code === 516 || code === 192 || code === 194 || e.type === 'AUTHENTICATION_FAILED') {
    return new CliError(action, why, { exitCode: ExitCode.config, hint: 'check the user name and password', cause: err });
  }
  if (code === 497 || e.type === 'ACCESS_DENIED') return new CliError(action, why, { exitCode: ExitCode.config, hint: 'the user needs SELECT on the log tables', cause: err });
  if (code === 81 || e.type === 'UNKNOWN_DATABASE') return new CliError(action, why, { exitCode: ExitCode.noInput, hint: 'check the database name', cause: err });
  if (code === 60 || e.type === 'UNKNOWN_TABLE') return new CliError(action, why, { exitCode: ExitCode.noInput, cause: err });
  if (isUnreachable(err) || /timeout|socket hang up|ECONN/i.test(msg)) return new CliError(action, why, { exitCode: ExitCode.unavailable, hint: 'is the server running and reachable from here?', cause: err });
  if (Number.isFinite(code) && code > 0) return new CliError(action, why, { exitCode: ExitCode.software, cause: err });
  return new CliError(action, why, { exitCode: ExitCode.unavailable, cause: err });
}
