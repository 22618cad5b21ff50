import { CliError, ExitCode, isUnreachable, type ExitCodeValue } from '../../errors.js';

type SfError = Error & { code?: number | string; sqlState?: string; isFatal?: boolean };

/** A driver error as "could not <action>: <why>" (why scrubbed of credentials), with its exit code. */
export function snowflakeError(full: string, err: unknown, scrub: (m: string) => string): CliError {
  if (err instanceof CliError) return err;
  const e = err as SfError;
  const code = String(e?.code ?? '');
  const state = String(e?.sqlState ?? '');
  const why = scrub(String(e?.message ?? err) || 'unknown error');
  const make = (exitCode: ExitCodeValue, hint?: string) => new CliError(full, why, { exitCode, hint, cause: err });
  if (['390100', '390101', '390102', '390144', '390318', '390422', '394304', '390190', '390432'].includes(code) || state === '28000' || /incorrect username or password|JWT token is invalid/i.test(why)) {
    return make(ExitCode.config, 'check credentials.username and the password or key pair (ALTER USER … SET RSA_PUBLIC_KEY)');
  }
  if (code === '000606' || /no active warehouse/i.test(why)) return make(ExitCode.config, 'set warehouse: (or a default warehouse for the user)');
  if (['002003', '002043', '003001', '002037', '390189', '390201'].includes(code) || state === '02000' || state === '42S02' || state === '42501' || /does not exist or not authorized|insufficient privileges/i.test(why)) {
    return make(ExitCode.config, 'check database, schema and table, and grant the role USAGE on them, CREATE TABLE on the schema and SELECT/INSERT/DELETE on the table');
  }
  if (state.startsWith('22') || ['100038', '100035', '100071', '100069'].includes(code)) {
    return make(ExitCode.dataErr, 'a value does not fit its column; run again with --verbose to see which, and report it (values are adapted to fit their columns)');
  }
  if (['401001', '402001', '401002', '402002', '401003', '405501', '405502', '405503'].includes(code) || isUnreachable(err) || /ECONN|ETIMEDOUT|ENOTFOUND|socket hang up|Network error/i.test(why)) {
    return make(ExitCode.unavailable, 'is the account URL (or access_url) reachable from this machine?');
  }
  if (/timeout|throttl|too many/i.test(why)) return make(ExitCode.tempFail);
  return make(ExitCode.unavailable);
}
