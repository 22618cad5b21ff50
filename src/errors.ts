/** Exit codes, after sysexits.h, as documented in the README. */
export const ExitCode = {
  ok: 0,
  partial: 1,
  usage: 64,
  dataErr: 65,
  noInput: 66,
  unavailable: 69,
  software: 70,
  cantCreate: 73,
  ioErr: 74,
  tempFail: 75,
  noPerm: 77,
  config: 78,
  sigint: 130,
  sigterm: 143,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export interface CliErrorOptions {
  exitCode?: ExitCodeValue;
  hint?: string;
  detail?: string;
  cause?: unknown;
}

/**
 * The one error type the top-level handler understands. Its message reads
 * "could not <action>: <why>", which the handler prints after "bifrost-logs: ".
 */
export class CliError extends Error {
  readonly exitCode: ExitCodeValue;
  readonly hint?: string;
  readonly action: string;
  readonly why: string;
  /** Lines printed under the error line (e.g. a caret excerpt of a config file). */
  readonly detail?: string;

  constructor(action: string, why: string, opts: CliErrorOptions = {}) {
    super(`could not ${action}: ${why}`, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'CliError';
    this.action = action;
    this.why = why;
    this.exitCode = opts.exitCode ?? ExitCode.software;
    this.hint = opts.hint;
    this.detail = opts.detail;
  }
}

export const usageError = (action: string, why: string, hint?: string) =>
  new CliError(action, why, { exitCode: ExitCode.usage, hint });
export const configError = (action: string, why: string, hint?: string) =>
  new CliError(action, why, { exitCode: ExitCode.config, hint });

/** A list of config problems, reported together (one per line) with exit 78. */
export class ConfigProblems extends CliError {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super(`load the config ${source}`, problems.length === 1 ? problems[0]! : `${problems.length} problems`, {
      exitCode: ExitCode.config,
    });
    this.problems = problems;
  }
}

/** Marks errors that are worth retrying (network, throttling, 5xx). */
export function isTransient(err: unknown): boolean {
  const e = err as { code?: string; name?: string; $metadata?: { httpStatusCode?: number }; statusCode?: number; status?: number };
  if (!e || typeof e !== 'object') return false;
  const code = e.code ?? '';
  if (['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET', 'ECONNABORTED'].includes(code)) return true;
  const status = e.$metadata?.httpStatusCode ?? e.statusCode ?? (typeof e.status === 'number' ? e.status : undefined);
  if (status === 429 || (status !== undefined && status >= 500)) return true;
  if (e.name === 'TimeoutError' || e.name === 'RequestTimeout' || e.name === 'SlowDown') return true;
  return false;
}

/** Network-level failures mean "unreachable" (69) rather than "internal error". */
export function isUnreachable(err: unknown): boolean {
  const e = err as { code?: string; name?: string; cause?: unknown; errors?: unknown[] };
  if (!e || typeof e !== 'object') return false;
  const code = e.code ?? '';
  if (['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT'].includes(code)) return true;
  if (e.name === 'TimeoutError') return true;
  if (Array.isArray(e.errors) && e.errors.some(isUnreachable)) return true;
  if (e.cause && e.cause !== err) return isUnreachable(e.cause);
  return false;
}

/** The exit code a failure ends a command with (a network failure: unavailable; an unknown one: a bug). */
export function exitCodeOf(err: unknown): ExitCodeValue {
  if (err instanceof CliError) return err.exitCode;
  const f = systemFailure(err);
  if (f) return f.exitCode;
  if (isUnreachable(err)) return ExitCode.unavailable;
  return ExitCode.software;
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

const SIGNED_URL_PARAMS = /([?&](X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|sig|se|sv|sp|signature|GoogleAccessId|Signature|Expires|access_token|upload_id|uploadId)=)[^&\s"']+/gi;

/** Removes signed-URL parameters and credentials from a message an SDK produced. */
export function scrubMessage(msg: string): string {
  return msg
    .replace(SIGNED_URL_PARAMS, '$1***')
    .replace(/(AccountKey|SharedAccessSignature|password|secret|token)=([^;&\s"']+)/gi, '$1=***')
    .replace(/:\/\/([^:@/\s]+):[^@/\s]+@/g, '://$1:***@')
    .replace(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, '***');
}

/**
 * Wraps an SDK failure as "could not <action>: <why>" with the right exit
 * code: 69 when the service is unreachable or failing, 75 when throttled,
 * 78 for access/config problems. The message is scrubbed of secrets.
 */
export function destinationError(action: string, err: unknown, hint?: string): CliError {
  if (err instanceof CliError) return err;
  // A local failure on the way (a full disk while spooling, a permission) keeps its own class.
  const local = systemFailure(err);
  if (local && local.exitCode !== ExitCode.noInput) return new CliError(action, `${local.why}: ${scrubMessage(errorMessage(err).split('\n')[0] ?? '')}`, { exitCode: local.exitCode, hint: hint ?? local.hint, cause: err });
  const e = err as { message?: string; name?: string; code?: string | number; $metadata?: { httpStatusCode?: number }; statusCode?: number; status?: number };
  const status = e?.$metadata?.httpStatusCode ?? e?.statusCode ?? (typeof e?.status === 'number' ? e.status : undefined) ?? (typeof e?.code === 'number' ? e.code : undefined);
  let why = scrubMessage(String(e?.message ?? err).split('\n')[0] || e?.name || 'unknown error');
  if (status && !why.includes(String(status))) why += ` (HTTP ${status})`;
  let exitCode: ExitCodeValue = ExitCode.unavailable;
  if (status === 401 || status === 403) { exitCode = ExitCode.config; hint ??= 'check the credentials and their permissions'; }
  else if (status === 404) { exitCode = ExitCode.config; hint ??= 'check the bucket/container/table name'; }
  else if (status === 429 || status === 503) exitCode = ExitCode.tempFail;
  else if (isUnreachable(err)) hint ??= 'is the endpoint reachable from this machine?';
  return new CliError(action, why, { exitCode, hint, cause: err });
}

export interface SystemFailure { exitCode: ExitCodeValue; why: string; hint: string }

/**
 * Classifies an operating-system or SQLite failure (by its `code`, looking down
 * the cause chain): busy 75, disk full 75, I/O error 74, a damaged DB 66,
 * permission 77, a path that cannot be created 73. Null for anything else.
 */
export function systemFailure(err: unknown): SystemFailure | null {
  for (let e = err as { code?: unknown; path?: string; cause?: unknown } | undefined, d = 0; e && typeof e === 'object' && d < 8; e = e.cause as typeof e, d++) {
    const code = typeof e.code === 'string' ? e.code : '';
    const at = e.path ? ` (${e.path})` : '';
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return { exitCode: ExitCode.tempFail, why: `no space left on the device${at}`, hint: 'free some space, then run again: nothing partial was delivered' };
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return { exitCode: ExitCode.tempFail, why: 'the database is busy (locked by another process)', hint: 'try again later' };
    if (code.startsWith('SQLITE_IOERR') || code === 'EIO') return { exitCode: ExitCode.ioErr, why: `an I/O error${at}`, hint: 'check the disk and its file system; run again once it is healthy' };
    if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return { exitCode: ExitCode.noInput, why: 'the database file is damaged or is not a SQLite database', hint: 'check the path; restore the file from a backup if it is damaged' };
    if (code === 'EACCES' || code === 'EPERM' || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_AUTH')) return { exitCode: ExitCode.noPerm, why: `permission denied${at}`, hint: 'give this user write access there, or choose another directory' };
    if (code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EROFS' || code === 'ENOTSUP' || code === 'ENAMETOOLONG' || code === 'ELOOP') return { exitCode: ExitCode.cantCreate, why: `${code === 'EROFS' ? 'read-only file system' : code === 'ENOTDIR' ? 'a part of the path is not a directory' : code === 'EISDIR' ? 'a directory is in the way' : code === 'EEXIST' ? 'a file is in the way' : 'the path cannot be created'}${at}`, hint: 'choose a directory this user can create and write' };
  }
  return null;
}

/** Any failure as a CliError: system failures by their class; everything else as given or as a bug (70). */
export function asCliError(action: string, err: unknown): CliError {
  if (err instanceof CliError) return err;
  const f = systemFailure(err);
  if (f) return new CliError(action, `${f.why}: ${scrubMessage(errorMessage(err).split('\n')[0] ?? '')}`, { exitCode: f.exitCode, hint: f.hint, cause: err });
  if (isUnreachable(err)) return new CliError(action, scrubMessage(errorMessage(err)), { exitCode: ExitCode.unavailable, hint: 'is the endpoint reachable from this machine?', cause: err });
  return new CliError(action, `internal error: ${errorMessage(err)}`, { exitCode: ExitCode.software, hint: 'this is a bug; run again with --verbose and report the output', cause: err });
}

/** An error as plain data, to cross a thread boundary with its class, exit code and hint. */
export interface SerializedError { message: string; name?: string; code?: string; path?: string; action?: string; why?: string; exitCode?: number; hint?: string }

export function serializeError(err: unknown): SerializedError {
  const e = err as { message?: string; name?: string; code?: unknown; path?: unknown };
  const out: SerializedError = { message: errorMessage(err), name: e?.name };
  if (typeof e?.code === 'string') out.code = e.code;
  if (typeof e?.path === 'string') out.path = e.path;
  if (err instanceof CliError) { out.action = err.action; out.why = err.why; out.exitCode = err.exitCode; out.hint = err.hint; }
  else {
    // A CliError further down the chain keeps its class too.
    let c = (err as { cause?: unknown })?.cause;
    for (let d = 0; c && d < 8; c = (c as { cause?: unknown }).cause, d++) {
      if (c instanceof CliError) { out.action = c.action; out.why = c.why; out.exitCode = c.exitCode; out.hint = c.hint; break; }
    }
  }
  return out;
}

export function deserializeError(s: SerializedError | string): Error {
  if (typeof s === 'string') return new Error(s);
  if (s.action !== undefined && s.why !== undefined) return new CliError(s.action, s.why, { exitCode: (s.exitCode ?? ExitCode.software) as ExitCodeValue, hint: s.hint });
  const e = new Error(s.message) as NodeJS.ErrnoException;
  if (s.name) e.name = s.name;
  if (s.code) e.code = s.code;
  if (s.path) e.path = s.path;
  return e;
}
