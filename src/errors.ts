/** Exit codes, after sysexits.h, as documented in the README. */
export const ExitCode = {
  ok: 0,
  partial: 1,
  usage: 64,
  dataErr: 65,
  noInput: 66,
  unavailable: 69,
  software: 70,
  tempFail: 75,
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

export function errorMessage(err: unknown): string {
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
