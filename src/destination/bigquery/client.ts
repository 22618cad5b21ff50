import { BigQuery, type BigQueryOptions } from '@google-cloud/bigquery';
import { keyCredentials, keyUniverse, readServiceAccountKey as readGoogleKey, type ServiceAccountKey } from '../google-key.js';
import { normalize } from './errors.js';
import type { BigQueryConfig } from './schema.js';

/** `service_account_key` is the key's JSON text, or the path of a key file. */
export const readServiceAccountKey = (value: string): Promise<ServiceAccountKey> => readGoogleKey(value, 'BigQuery');

/** Every API request must be answered within request_timeout_secs (default 60). */
export const requestTimeoutMs = (cfg: BigQueryConfig) => Math.round((cfg.request_timeout_secs ?? 60) * 1000);
/** An upload (a load job's file, sent whole) may take ten times as long before its answer. */
export const uploadTimeoutMs = (cfg: BigQueryConfig) => 10 * requestTimeoutMs(cfg);

/**
 * The client options from the config: the SDK's defaults, except that
 * retries are ours. `api_endpoint` (an emulator, a test server, a private
 * endpoint) replaces https://bigquery.googleapis.com. With a service-account
 * key the SDK signs in as that account (in the key's universe); without one,
 * application-default credentials are used when available, and requests go
 * unauthenticated otherwise (what local emulators expect).
 */
export function bigqueryOptions(cfg: BigQueryConfig, key: ServiceAccountKey | undefined): BigQueryOptions {
  // Retries are ours (withRetry, and whole jobs again): the SDK's own would multiply them.
  const o: BigQueryOptions = { projectId: cfg.project_id, autoRetry: false, maxRetries: 0, userAgent: 'bifrost-logs' };
  // The service's request deadline (passed through to every API request; not in the SDK's option type).
  (o as { timeout?: number }).timeout = requestTimeoutMs(cfg);
  if (cfg.location) o.location = cfg.location;
  if (key) o.credentials = keyCredentials(key);
  const universe = keyUniverse(key);
  if (universe) o.universeDomain = universe;
  if (cfg.api_endpoint) o.apiEndpoint = cfg.api_endpoint.replace(/\/+$/, '');
  return o;
}

export function createBigQueryClient(cfg: BigQueryConfig, key: ServiceAccountKey | undefined): BigQuery {
  return new BigQuery(bigqueryOptions(cfg, key));
}

/**
 * One API call with its deadline: the SDK's HTTP layer does not enforce its
 * `timeout`, so a call whose answer does not come within `ms` fails here
 * (ETIMEDOUT, which is retried like any network failure). Errors come out
 * with their HTTP status exposed.
 */
export async function withDeadline<T>(ms: number, call: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer from BigQuery within ${ms / 1000}s`), { name: 'TimeoutError', code: 'ETIMEDOUT' })), ms);
    timer.unref();
  });
  try {
    return await Promise.race([call(), late]);
  } catch (err) {
    throw normalize(err);
  } finally {
    clearTimeout(timer);
  }
}
