import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, PutObjectCommand,
  S3Client, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { CliError, ExitCode, destinationError } from '../../errors.js';
import { withRetry } from '../../util/retry.js';
import { abortError, checkProbeKey, objectStoreDestination, type ObjectStore, peek } from '../object-store.js';
import type { DestinationEnv, DestinationFactory } from '../types.js';
import type { S3Config } from './schema.js';

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
/** Parts in flight at once: memory is bounded by about (QUEUE_SIZE + 1) × part size. */
const QUEUE_SIZE = 3;
const DEFAULT_TIMEOUT_SECS = 60;

type SdkError = Error & { code?: string; errors?: unknown[]; $metadata?: { httpStatusCode?: number }; Code?: string };

const statusOf = (err: unknown) => (err as SdkError)?.$metadata?.httpStatusCode;


/**
 * Gives an SDK failure a readable first line (HEAD responses have no body, so
 * the SDK says "UnknownError"; a refused connection may be an AggregateError
 * with no message) while keeping what destinationError() classifies by.
 */
function readable(err: unknown, bucket: string): unknown {
  const e = err as SdkError;
  if (!e || typeof e !== 'object') return err;
  let msg = e.message;
  if (!msg && Array.isArray(e.errors) && e.errors.length) msg = (e.errors[0] as Error)?.message;
  const status = statusOf(e);
  if (!msg || msg === 'UnknownError' || msg === e.name) {
    if (status === 404) msg = `bucket "${bucket}" was not found`;
    else if (status === 403) msg = `access denied to bucket "${bucket}"`;
    else if (status === 301) msg = `bucket "${bucket}" is in another region`;
    else if (status === 400) msg = 'bad request (is the region right?)';
    else msg = msg || e.name || 'unknown error';
  }
  if (msg === e.message) return err;
  return Object.assign(new Error(msg, { cause: err }), { name: e.name, code: e.code, $metadata: e.$metadata });
}


/**
 * Amazon S3 and S3-compatible stores (MinIO, R2, s3rver). Small objects (the
 * manifest, small parts) are one PutObject, retried whole; larger ones stream
 * through a multipart upload, which is invisible until CompleteMultipartUpload
 * and aborted (AbortMultipartUpload) when the part is abandoned.
 */
export function createS3Store(cfg: S3Config, env: Pick<DestinationEnv, 'log'>): ObjectStore {
  // The SDK's "upgrade Node" notice would land in every cron mail: it is the SDK's documented switch.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const bucket = cfg.bucket;
  const partSize = cfg.part_size_bytes ?? DEFAULT_PART_SIZE;
  const timeoutMs = (cfg.request_timeout_secs ?? DEFAULT_TIMEOUT_SECS) * 1000;
  const sse = cfg.sse ?? (cfg.sse_kms_key_id ? 'aws:kms' : undefined);
  const sseParams = {
    ...(sse ? { ServerSideEncryption: sse } : {}),
    ...(cfg.sse_kms_key_id && sse !== 'AES256' ? { SSEKMSKeyId: cfg.sse_kms_key_id } : {}),
  };
  const base: S3ClientConfig = {
    region: cfg.region ?? (cfg.endpoint ? 'us-east-1' : undefined),
    // socketTimeout fails a request whose connection sits idle (a hung endpoint);
    // requestTimeout would cap a whole part upload, which may be slow but healthy.
    requestHandler: { connectionTimeout: Math.min(timeoutMs, 10_000), socketTimeout: timeoutMs },
  };
  if (cfg.endpoint) base.endpoint = cfg.endpoint;
  // The SDK's default (integrity checksums on every upload) unless the store cannot take them.
  if (cfg.checksums === 'when_required') {
    base.requestChecksumCalculation = 'WHEN_REQUIRED';
    base.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  if (cfg.force_path_style !== undefined) base.forcePathStyle = cfg.force_path_style;
  // Without explicit keys the SDK's default chain applies (env, profile, SSO, IMDS…).
  if (cfg.credentials) {
    base.credentials = {
      accessKeyId: cfg.credentials.access_key_id,
      secretAccessKey: cfg.credentials.secret_access_key,
      ...(cfg.credentials.session_token ? { sessionToken: cfg.credentials.session_token } : {}),
    };
  }
  // Streams cannot be replayed by withRetry: multipart uploads rely on the SDK's per-request retries.
  const streaming = new S3Client({ ...base, maxAttempts: 5 });
  // Whole-object calls are retried by withRetry (backoff, Retry-After); the SDK tries once.
  // Same (memoized) credential provider: the default chain is resolved once.
  const single = new S3Client({ ...base, maxAttempts: 1, credentials: streaming.config.credentials });
  const where = (key: string) => `s3://${bucket}/${key}`;

  const fail = (action: string, err: unknown): CliError => {
    const e = err as SdkError;
    if (e?.name === 'CredentialsProviderError') {
      return new CliError(action, 'no AWS credentials found', { exitCode: ExitCode.config, cause: err, hint: 'set credentials in the config, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role' });
    }
    if (/region is missing/i.test(e?.message ?? '')) {
      return new CliError(action, 'no AWS region set', { exitCode: ExitCode.config, cause: err, hint: 'set region in the config, --region, or AWS_REGION' });
    }
    return destinationError(action, readable(err, bucket), statusOf(err) === 301 ? 'set region to the bucket\'s region' : undefined);
  };

  /** Aborts the multipart upload behind `upload`, if one was started; tolerates stores without the call. */
  async function abortMultipart(upload: Upload, key: string): Promise<void> {
    // The create may still be in flight when the upload is abandoned: wait for its id.
    const pending = (upload as unknown as { createMultiPartPromise?: Promise<{ UploadId?: string }> }).createMultiPartPromise;
    const uploadId = upload.uploadId ?? (await pending?.then((r) => r.UploadId, () => undefined));
    if (!uploadId) return;
    await abortUpload(key, uploadId);
  }

  async function abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await withRetry(() => single.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })), { attempts: 3 });
    } catch (err) {
      const s = statusOf(err);
      // 404: already aborted (the SDK aborts too); 405/501: an emulator without the call.
      if (s === 404) return;
      const msg = `could not abort the multipart upload of ${where(key)} (it stays invisible; a lifecycle rule for incomplete uploads removes it): ${fail('abort', err).why}`;
      if (s === 405 || s === 501) env.log.verbose(msg);
      else env.log.warn(msg);
    }
  }

  return {
    type: 's3',
    async put(key, body, meta, signal) {
      const params = {
        Bucket: bucket, Key: key, ContentType: meta.contentType,
        ...(meta.contentEncoding ? { ContentEncoding: meta.contentEncoding } : {}),
        ...sseParams,
      };
      let upload: Upload | undefined;
      const onAbort = () => { void upload?.abort(); };
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        const head = await peek(body, partSize);
        if (signal.aborted) throw abortError();
        if ('whole' in head) {
          await withRetry(() => single.send(new PutObjectCommand({ ...params, Body: head.whole, ContentLength: head.whole.length }), { abortSignal: signal }), { signal });
          return;
        }
        upload = new Upload({ client: streaming, params: { ...params, Body: head.stream }, partSize, queueSize: QUEUE_SIZE, leavePartsOnError: false });
        try {
          await upload.done();
        } catch (err) {
          await abortMultipart(upload, key);
          throw err;
        }
      } catch (err) {
        if (signal.aborted) throw abortError();
        throw fail(`upload ${key} to s3://${bucket}`, err);
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    },

    async get(key) {
      try {
        const r = await withRetry(() => single.send(new GetObjectCommand({ Bucket: bucket, Key: key })));
        return (r.Body as Readable | undefined) ?? Readable.from([]);
      } catch (err) {
        const e = err as SdkError;
        if (e?.name === 'NoSuchKey' || e?.name === 'NotFound' || (statusOf(err) === 404 && e?.name !== 'NoSuchBucket')) return null;
        throw fail(`read ${where(key)}`, err);
      }
    },

    async delete(key) {
      try {
        await withRetry(() => single.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })));
      } catch (err) {
        if ((err as SdkError)?.name === 'NoSuchKey') return;
        throw fail(`delete ${where(key)}`, err);
      }
    },

    /**
     * HeadBucket (reachable, the bucket exists), then a multipart upload
     * created on a probe key and aborted: proves s3:PutObject under the prefix
     * (with the SSE settings) and leaves no object visible.
     */
    async check() {
      try {
        await withRetry(() => single.send(new HeadBucketCommand({ Bucket: bucket })), { attempts: 3 });
      } catch (err) {
        throw fail(`reach s3://${bucket}`, err);
      }
      const probe = checkProbeKey(cfg.prefix);
      let uploadId: string | undefined;
      try {
        const r = await withRetry(() => single.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: probe, ContentType: 'application/octet-stream', ...sseParams })), { attempts: 3 });
        uploadId = r.UploadId;
      } catch (err) {
        throw fail(`write to ${where(probe)}`, err);
      }
      if (uploadId) await abortUpload(probe, uploadId);
    },

    async close() {
      streaming.destroy();
      single.destroy();
    },
  };
}

export const createS3Destination: DestinationFactory = async (config: S3Config, env) => objectStoreDestination(createS3Store(config, env));
