import { CliError, ExitCode, destinationError, scrubMessage, type ExitCodeValue } from '../../errors.js';

type ApiErr = Error & { code?: number | string; errors?: Array<{ message?: string; reason?: string }>; response?: { status?: number; statusCode?: number }; statusCode?: number };

export function statusOf(err: unknown): number | undefined {
  const e = err as ApiErr;
  if (!e || typeof e !== 'object') return undefined;
  if (typeof e.code === 'number') return e.code;
  return e.response?.status ?? e.response?.statusCode ?? e.statusCode;
}

/** Exposes the HTTP status where withRetry()/destinationError() look for it. */
export function normalize(err: unknown): unknown {
  const e = err as ApiErr;
  if (!e || typeof e !== 'object') return err;
  let status = statusOf(e);
  // BigQuery answers throttling with 403 rateLimitExceeded: retried like a 429.
  if (status === 403 && e.errors?.some((x) => x.reason === 'rateLimitExceeded')) status = 429;
  if (status !== undefined && e.statusCode === undefined) {
    try { e.statusCode = status; } catch { /* frozen */ }
  }
  return err;
}

/** Job failures worth running the job again for (a failed job changed nothing). */
export const TRANSIENT_JOB_REASONS = new Set(['backendError', 'internalError', 'jobInternalError', 'rateLimitExceeded', 'jobBackendError']);

export class JobFailure extends Error {
  constructor(readonly reason: string, readonly error: CliError) { super(error.message); }
}

export interface JobError { reason?: string; message?: string; location?: string }

/** A failed job as one line, with the exit code its reason calls for. */
export function jobError(action: string, errorResult: JobError, errors: readonly JobError[] = []): CliError {
  const reason = errorResult.reason ?? 'error';
  const details = errors.filter((x) => x.message && x.message !== errorResult.message).slice(0, 2).map((x) => x.message);
  const why = scrubMessage([`${errorResult.message ?? reason}`, ...details].join('; ').replace(/\s+/g, ' '));
  let exitCode: ExitCodeValue = ExitCode.unavailable;
  let hint: string | undefined;
  switch (reason) {
    case 'invalidQuery': exitCode = ExitCode.software; hint = 'the load query the product wrote is wrong: this is a bug; run again with --verbose and report the output'; break;
    case 'invalid': exitCode = ExitCode.dataErr; hint = 'a value does not fit its column; run again with --verbose to see which, and report it (values are adapted to fit their columns)'; break;
    case 'accessDenied': exitCode = ExitCode.config; hint = 'the service account needs BigQuery Data Editor on the dataset and Job User on the project'; break;
    case 'notFound': exitCode = ExitCode.config; hint = 'check project_id, dataset and location'; break;
    case 'quotaExceeded': case 'rateLimitExceeded': exitCode = ExitCode.tempFail; break;
    default: break;
  }
  return new CliError(action, `${why} (${reason})`, { exitCode, hint });
}

/** An SDK error as "could not <action> (<where>): <why>", with its exit code. */
export function bigqueryError(action: string, where: string, err: unknown): CliError {
  if (err instanceof CliError) return err;
  const e = err as ApiErr;
  const msg = e?.message ?? '';
  if (/Could not load the default credentials|Could not refresh access token|Unable to detect a Project Id|invalid_grant/i.test(msg)) {
    return new CliError(action, msg.split('\n')[0]!, { exitCode: ExitCode.config, cause: err, hint: 'set credentials.service_account_key, or GOOGLE_APPLICATION_CREDENTIALS / gcloud auth application-default login' });
  }
  let n = normalize(err) as ApiErr;
  // ApiError's message for several errors says only "see the errors array": show the first instead.
  const first = n?.errors?.find((x) => x.message)?.message;
  if (first && /^Multiple errors occurred/i.test(n.message ?? '')) n = Object.assign(new Error(first, { cause: err }), { statusCode: statusOf(err), code: n.code });
  return destinationError(`${action} (${where})`, n, statusOf(err) === 404 ? 'check project_id, dataset (it must exist) and location' : undefined);
}
