import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IdempotencyStrategy, Storage, type File, type StorageOptions } from '@google-cloud/storage';
import { CliError, ExitCode, destinationError } from '../../errors.js';
import { withRetry } from '../../util/retry.js';
import { abortError, checkProbeKey, objectStoreDestination, type ObjectStore, peek } from '../object-store.js';
import type { DestinationEnv, DestinationFactory } from '../types.js';
import { keyCredentials, keyUniverse, readServiceAccountKey, type ServiceAccountKey } from '../google-key.js';
import type { GcsConfig } from './schema.js';

/** Resumable chunk size (a multiple of 256 KiB): memory per upload, and the unit of retry. */
const CHUNK_SIZE = 8 * 1024 * 1024;
/** Bodies up to this size are one simple (all-or-nothing) upload, retried whole. */
const WHOLE_MAX = CHUNK_SIZE;
const DEFAULT_TIMEOUT_SECS = 60;

type GcsError = Error & { code?: number | string; errors?: Array<{ message?: string }>; response?: { status?: number }; status?: number; statusCode?: number };


/** The HTTP status of a storage error (ApiError puts it in `code`, gaxios in `response.status`). */
function statusOf(err: unknown): number | undefined {
  const e = err as GcsError;
  if (!e || typeof e !== 'object') return undefined;
  if (typeof e.code === 'number') return e.code;
  return e.response?.status ?? e.statusCode ?? (typeof e.status === 'number' ? e.status : undefined);
}

/** Exposes the status where withRetry()/destinationError() look for it, and a readable first line. */
function normalize(err: unknown): unknown {
  const e = err as GcsError;
  if (!e || typeof e !== 'object') return err;
  const status = statusOf(e);
  if (status !== undefined && e.statusCode === undefined) {
    try { e.statusCode = status; } catch { /* frozen: leave it */ }
  }
  let msg = e.message;
  if (!msg && Array.isArray(e.errors) && e.errors[0]?.message) msg = e.errors[0].message;
  // gaxios: "request to <url> failed, reason: connect ECONNREFUSED …" — the URL says nothing new.
  const m = /^request to \S+ failed, reason: (.+)$/s.exec(msg ?? '');
  if (m) msg = m[1]!;
  if (msg === e.message) return err;
  return Object.assign(new Error(msg, { cause: err }), { statusCode: status, code: e.code, name: e.name });
}


/** `service_account_key` is the key's JSON text, or the path of a key file. */
export const parseServiceAccountKey = (value: string): Promise<ServiceAccountKey> => readServiceAccountKey(value, 'GCS');

/**
 * Builds the Storage client. With `api_endpoint` (an emulator, a test server,
 * a private endpoint) the client talks to that URL; the SDK only sends
 * credentials to a custom endpoint when explicit credentials are configured.
 */
export function storageOptions(cfg: GcsConfig, key: ServiceAccountKey | undefined, autoRetry: boolean): StorageOptions {
  const timeoutMs = (cfg.request_timeout_secs ?? DEFAULT_TIMEOUT_SECS) * 1000;
  const o: StorageOptions = {
    timeout: timeoutMs,
    retryOptions: {
      autoRetry,
      maxRetries: autoRetry ? 5 : 0,
      maxRetryDelay: 32,
      totalTimeout: 600,
      // Uploads carry no generation precondition (a re-run overwrites its own
      // object on purpose), so let the SDK retry them.
      idempotencyStrategy: autoRetry ? IdempotencyStrategy.RetryAlways : IdempotencyStrategy.RetryNever,
    },
    userAgent: 'bifrost-logs',
  };
  const projectId = cfg.project_id ?? key?.project_id;
  if (projectId) o.projectId = projectId;
  if (key) o.credentials = keyCredentials(key);
  const universe = keyUniverse(key);
  if (universe) o.universeDomain = universe;
  if (cfg.api_endpoint) {
    o.apiEndpoint = cfg.api_endpoint.replace(/\/+$/, '');
    o.useAuthWithCustomEndpoint = !!key;
  }
  return o;
}

/**
 * Google Cloud Storage. Small objects (the manifest, small parts) are one
 * simple upload, retried whole; larger ones are a resumable upload in
 * CHUNK_SIZE chunks, which only becomes an object when the final chunk is
 * sent. An abandoned upload destroys the stream (the session never
 * finalises) and cancels the session.
 */
export async function createGcsStore(cfg: GcsConfig, env: Pick<DestinationEnv, 'log'>): Promise<ObjectStore> {
  const key = cfg.credentials ? await parseServiceAccountKey(cfg.credentials.service_account_key) : undefined;
  const timeoutMs = (cfg.request_timeout_secs ?? DEFAULT_TIMEOUT_SECS) * 1000;
  const streaming = new Storage(storageOptions(cfg, key, true));
  const single = new Storage(storageOptions(cfg, key, false));
  // Resumable upload requests ignore `timeout`: give them one through an interceptor.
  for (const s of [streaming, single]) {
    s.interceptors.push({ request: (r) => { const o = r as { timeout?: number }; o.timeout ??= timeoutMs; return r as never; } });
  }
  const bucketName = cfg.bucket;
  const where = (k: string) => `gs://${bucketName}/${k}`;

  const fail = (action: string, err: unknown): CliError => {
    const e = err as GcsError;
    const msg = e?.message ?? '';
    if (/Could not load the default credentials|Could not refresh access token|Unable to detect a Project Id/i.test(msg)) {
      return new CliError(action, msg.split('\n')[0]!, { exitCode: ExitCode.config, cause: err, hint: 'set credentials.service_account_key, or GOOGLE_APPLICATION_CREDENTIALS / gcloud auth application-default login' });
    }
    return destinationError(action, normalize(err));
  };

  /** Cancels a resumable session (DELETE on its URI answers 499); best effort, the URI is its own credential. */
  async function cancelSession(uri: string): Promise<void> {
    try {
      await fetch(uri, { method: 'DELETE', signal: AbortSignal.timeout(Math.min(timeoutMs, 15_000)) });
    } catch (err) {
      env.log.verbose(`could not cancel a resumable upload session (it expires on its own): ${(err as Error).message}`);
    }
  }

  function simpleUpload(file: File, body: Buffer, meta: { contentType: string; contentEncoding?: string }, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const ws = file.createWriteStream({
        resumable: false, contentType: meta.contentType, validation: 'crc32c', timeout: timeoutMs,
        metadata: { contentType: meta.contentType, ...(meta.contentEncoding ? { contentEncoding: meta.contentEncoding } : {}) },
      });
      const onAbort = () => ws.destroy(abortError());
      signal.addEventListener('abort', onAbort, { once: true });
      ws.once('error', (err) => { signal.removeEventListener('abort', onAbort); reject(normalize(err)); });
      ws.once('finish', () => { signal.removeEventListener('abort', onAbort); resolve(); });
      ws.end(body);
    });
  }

  return {
    type: 'gcs',
    async put(k, body, meta, signal) {
      try {
        const head = await peek(body, WHOLE_MAX);
        if (signal.aborted) throw abortError();
        if ('whole' in head) {
          const file = single.bucket(bucketName).file(k);
          await withRetry(() => simpleUpload(file, head.whole, meta, signal), { signal });
          return;
        }
        const ws: Writable = streaming.bucket(bucketName).file(k).createWriteStream({
          resumable: true,
          contentType: meta.contentType,
          metadata: { contentType: meta.contentType, ...(meta.contentEncoding ? { contentEncoding: meta.contentEncoding } : {}) },
          validation: 'crc32c',
          chunkSize: CHUNK_SIZE,
        });
        let uri: string | undefined;
        ws.on('uri', (u: string) => { uri = u; });
        try {
          // The signal destroys both streams: the final chunk is never sent.
          await pipeline(head.stream, ws, { signal });
        } catch (err) {
          if (uri) await cancelSession(uri);
          throw err;
        }
      } catch (err) {
        if (signal.aborted) throw abortError();
        throw fail(`upload ${k} to gs://${bucketName}`, err);
      }
    },

    async get(k) {
      const file = single.bucket(bucketName).file(k);
      try {
        await withRetry(async () => { try { await file.getMetadata(); } catch (err) { throw normalize(err); } });
      } catch (err) {
        if (statusOf(err) === 404 && !/specified bucket does not exist/i.test((err as Error).message ?? '')) return null;
        throw fail(`read ${where(k)}`, err);
      }
      // The stored bytes exactly: no gunzip of gzip-encoded objects.
      return file.createReadStream({ decompress: false, validation: false });
    },

    async delete(k) {
      const file = single.bucket(bucketName).file(k);
      try {
        await withRetry(async () => { try { await file.delete({ ignoreNotFound: true }); } catch (err) { throw normalize(err); } });
      } catch (err) {
        if (statusOf(err) === 404) return;
        throw fail(`delete ${where(k)}`, err);
      }
    },

    /**
     * A resumable session created on a probe key under the prefix, then
     * cancelled: proves the bucket exists and storage.objects.create, and no
     * object ever appears (a session only becomes an object on its final
     * chunk). bucket.getMetadata() is not used: it needs storage.buckets.get,
     * which object-only roles (objectCreator/objectAdmin) lack.
     */
    async check() {
      const probe = checkProbeKey(cfg.prefix);
      const file = single.bucket(bucketName).file(probe);
      let uri: string | undefined;
      try {
        uri = await withRetry(async () => {
          try {
            const [u] = await file.createResumableUpload({ metadata: { contentType: 'application/octet-stream' } });
            return u;
          } catch (err) { throw normalize(err); }
        }, { attempts: 3 });
      } catch (err) {
        throw fail(`write to ${where(probe)}`, err);
      }
      if (uri) await cancelSession(uri);
    },
  };
}

export const createGcsDestination: DestinationFactory = async (config: GcsConfig, env) => objectStoreDestination(await createGcsStore(config, env));
