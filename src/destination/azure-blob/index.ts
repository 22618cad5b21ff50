import { Readable } from 'node:stream';
import {
  AnonymousCredential, BlobServiceClient, StorageSharedKeyCredential, newPipeline,
  type ContainerClient, type RequestPolicyFactory, type StoragePipelineOptions,
} from '@azure/storage-blob';
import type { TokenCredential } from '@azure/identity';
import { CliError, ExitCode, configError, destinationError } from '../../errors.js';
import { withRetry } from '../../util/retry.js';
import { abortError, checkProbeKey, objectStoreDestination, type ObjectStore, peek } from '../object-store.js';
import type { DestinationEnv, DestinationFactory } from '../types.js';
import type { AzureBlobConfig } from './schema.js';

/** Block size: uploadStream keeps about MAX_CONCURRENCY blocks of this size in memory. */
const BLOCK_SIZE = 8 * 1024 * 1024;
const MAX_CONCURRENCY = 3;
/** Bodies up to this size are one Put Blob (all or nothing), retried whole. */
const WHOLE_MAX = BLOCK_SIZE;
const DEFAULT_TIMEOUT_SECS = 60;

type AzError = Error & { statusCode?: number; code?: string; details?: { errorCode?: string }; errors?: unknown[] };



/**
 * A readable first line: a HEAD answer has no body (the SDK then says only
 * "Unexpected status code: 404"), and the service's own message carries a
 * RequestId/Time tail.
 */
function readable(err: unknown, container: string): unknown {
  const e = err as AzError;
  if (!e || typeof e !== 'object') return err;
  const code = e.details?.errorCode ?? e.code;
  let msg = (e.message ?? '').split('\n')[0]!;
  if (!msg && Array.isArray(e.errors) && e.errors.length) msg = (e.errors[0] as Error)?.message ?? '';
  if (code === 'ContainerNotFound' || (e.statusCode === 404 && /^Unexpected status code/i.test(msg))) msg = `container "${container}" was not found`;
  else if (code === 'AuthenticationFailed' || code === 'AuthorizationFailure' || code === 'AuthorizationPermissionMismatch') msg = `${code}: the credentials were refused`;
  else if (!msg) msg = code ?? e.name ?? 'unknown error';
  if (msg === e.message) return err;
  return Object.assign(new Error(msg, { cause: err }), { name: e.name, code: e.code, statusCode: e.statusCode });
}

/** The `https://<account>.blob.core.windows.net` form, or the configured endpoint (Azurite: http://127.0.0.1:10000/devstoreaccount1). */
function serviceUrl(cfg: AzureBlobConfig): string {
  if (cfg.endpoint) return cfg.endpoint.replace(/\/+$/, '');
  if (!cfg.account_name) throw configError('set up azure_blob', 'account_name is required without connection_string or endpoint', 'set connection_string, or account_name with account_key, sas_token or an Azure identity');
  return `https://${cfg.account_name}.blob.core.windows.net`;
}

const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/**
 * A storage connection string: AccountName/AccountKey (shared key) or
 * SharedAccessSignature, with BlobEndpoint or DefaultEndpointsProtocol +
 * EndpointSuffix; UseDevelopmentStorage=true is Azurite's defaults. Parsed
 * here (not by fromConnectionString) so the client gets our pipeline. Errors
 * never quote the string.
 */
export function parseConnectionString(cs: string): { url: string; accountName?: string; accountKey?: string; sas?: string } {
  const parts = new Map<string, string>();
  for (const seg of cs.split(';')) {
    const i = seg.indexOf('=');
    if (i > 0) parts.set(seg.slice(0, i).trim().toLowerCase(), seg.slice(i + 1).trim());
  }
  const bad = (why: string) => configError('set up azure_blob', `connection_string ${why}`, 'copy it from the storage account\'s "Access keys" page, or use account_name + account_key');
  if (parts.get('usedevelopmentstorage')?.toLowerCase() === 'true') {
    const proxy = parts.get('developmentstorageproxyuri') ?? 'http://127.0.0.1';
    return { url: `${proxy.replace(/\/+$/, '')}:10000/devstoreaccount1`, accountName: 'devstoreaccount1', accountKey: AZURITE_KEY };
  }
  const accountName = parts.get('accountname');
  const accountKey = parts.get('accountkey');
  const sas = parts.get('sharedaccesssignature')?.replace(/^\?/, '');
  let url = parts.get('blobendpoint')?.replace(/\/+$/, '');
  if (!url) {
    if (!accountName) throw bad('has neither BlobEndpoint nor AccountName');
    const protocol = parts.get('defaultendpointsprotocol') ?? 'https';
    url = `${protocol}://${accountName}.blob.${parts.get('endpointsuffix') ?? 'core.windows.net'}`;
  }
  if (!/^https?:\/\//i.test(url)) throw bad('has a BlobEndpoint that is not an http(s) URL');
  if (accountKey) {
    if (!accountName) throw bad('has AccountKey without AccountName');
    return { url, accountName, accountKey };
  }
  if (sas) return { url, accountName, sas };
  throw bad('has neither AccountKey nor SharedAccessSignature');
}

/**
 * Fails a try that has no response headers after `ms`: the retry options'
 * tryTimeoutInMs is only a server-side hint, so a hung endpoint would hang.
 */
function tryTimeoutPolicy(ms: number): RequestPolicyFactory {
  return { create: (next) => ({ sendRequest: (req) => { if (!req.timeout) req.timeout = ms; return next.sendRequest(req); } }) };
}

export function pipelineOptions(cfg: AzureBlobConfig, maxTries: number): StoragePipelineOptions {
  const timeoutMs = (cfg.request_timeout_secs ?? DEFAULT_TIMEOUT_SECS) * 1000;
  return {
    retryOptions: { maxTries, tryTimeoutInMs: timeoutMs, retryDelayInMs: 1000, maxRetryDelayInMs: 30_000 },
    userAgentOptions: { userAgentPrefix: 'bifrost-logs' },
  };
}

/** Service client per the config: connection string, shared key, SAS, or an Azure identity (DefaultAzureCredential). */
async function serviceClient(cfg: AzureBlobConfig, maxTries: number): Promise<BlobServiceClient> {
  const options = pipelineOptions(cfg, maxTries);
  const timeoutMs = (cfg.request_timeout_secs ?? DEFAULT_TIMEOUT_SECS) * 1000;
  const client = (url: string, cred: StorageSharedKeyCredential | AnonymousCredential | TokenCredential) => {
    const pipeline = newPipeline(cred, options);
    pipeline.factories.push(tryTimeoutPolicy(timeoutMs));
    return new BlobServiceClient(url, pipeline);
  };
  const withSas = (url: string, sas: string) => `${url}${url.includes('?') ? '&' : '?'}${sas.replace(/^\?/, '')}`;
  if (cfg.connection_string) {
    const c = parseConnectionString(cfg.connection_string);
    const url = cfg.endpoint ? cfg.endpoint.replace(/\/+$/, '') : c.url;
    if (c.accountKey) return client(url, new StorageSharedKeyCredential(c.accountName!, c.accountKey));
    return client(withSas(url, c.sas!), new AnonymousCredential());
  }
  const url = serviceUrl(cfg);
  if (cfg.account_key) {
    if (!cfg.account_name) throw configError('set up azure_blob', 'account_key needs account_name');
    return client(url, new StorageSharedKeyCredential(cfg.account_name, cfg.account_key));
  }
  if (cfg.sas_token) return client(withSas(url, cfg.sas_token), new AnonymousCredential());
  // Managed identity, workload identity, az login, env service principal…: only loaded when used.
  const { DefaultAzureCredential } = await import('@azure/identity');
  return client(url, new DefaultAzureCredential());
}

/**
 * Azure Blob Storage. Small objects (the manifest, small parts) are one Put
 * Blob, retried whole; larger ones stream through uploadStream: blocks are
 * staged and only the final Put Block List makes the blob (or its new
 * version) visible. An abandoned upload never commits; its uncommitted
 * blocks are invisible and garbage-collected by the service.
 */
export async function createAzureBlobStore(cfg: AzureBlobConfig, env: Pick<DestinationEnv, 'log'>): Promise<ObjectStore> {
  // Streaming blocks rely on the SDK's per-request retries; whole-object calls on withRetry().
  const streaming = (await serviceClient(cfg, 4)).getContainerClient(cfg.container);
  const single: ContainerClient = (await serviceClient(cfg, 1)).getContainerClient(cfg.container);
  const container = cfg.container;
  const root = `azure://${single.accountName}/${container}`;
  const where = (k: string) => `${root}/${k}`;

  const fail = (action: string, err: unknown): CliError => {
    const e = err as Error;
    if (e?.name === 'CredentialUnavailableError' || e?.name === 'AuthenticationRequiredError' || e?.name === 'AggregateAuthenticationError') {
      return new CliError(action, `no Azure credentials: ${(e.message ?? '').split('\n')[0]}`, { exitCode: ExitCode.config, cause: err, hint: 'set connection_string, account_key or sas_token, or sign in (az login, managed identity, AZURE_CLIENT_ID/…)' });
    }
    if (e?.name === 'AbortError') {
      // Not our signal (put() checks that first): the try timeout fired.
      return destinationError(action, Object.assign(new Error(`no answer within ${cfg.request_timeout_secs ?? DEFAULT_TIMEOUT_SECS}s`, { cause: err }), { name: 'TimeoutError' }));
    }
    return destinationError(action, readable(err, container));
  };

  return {
    type: 'azure_blob',
    async put(k, body, meta, signal) {
      const headers = { blobContentType: meta.contentType, ...(meta.contentEncoding ? { blobContentEncoding: meta.contentEncoding } : {}) };
      let feed: Readable | undefined;
      // uploadStream() only stops on the stream's 'error' (not on a bare destroy): fail it explicitly.
      const onAbort = () => { feed?.destroy(abortError()); };
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        const head = await peek(body, WHOLE_MAX);
        if (signal.aborted) throw abortError();
        if ('whole' in head) {
          const blob = single.getBlockBlobClient(k);
          await withRetry(() => blob.upload(head.whole, head.whole.length, { blobHTTPHeaders: headers, abortSignal: signal }), { signal });
          return;
        }
        feed = head.stream;
        await streaming.getBlockBlobClient(k).uploadStream(feed, BLOCK_SIZE, MAX_CONCURRENCY, { blobHTTPHeaders: headers, abortSignal: signal });
      } catch (err) {
        if (signal.aborted) throw abortError();
        throw fail(`upload ${k} to ${root}`, err);
      } finally {
        signal.removeEventListener('abort', onAbort);
        if (feed && !feed.destroyed) feed.destroy();
      }
    },

    async get(k) {
      try {
        const r = await withRetry(() => single.getBlobClient(k).download());
        return (r.readableStreamBody as Readable | undefined) ?? Readable.from([]);
      } catch (err) {
        const e = err as AzError;
        if (e?.statusCode === 404 && (e.details?.errorCode ?? e.code) !== 'ContainerNotFound') return null;
        throw fail(`read ${where(k)}`, err);
      }
    },

    async delete(k) {
      try {
        await withRetry(() => single.getBlobClient(k).deleteIfExists());
      } catch (err) {
        throw fail(`delete ${where(k)}`, err);
      }
    },

    /**
     * The container exists (getProperties), then one uncommitted block is
     * staged on a probe blob under the prefix: proves write access, and an
     * uncommitted block is never listed and is garbage-collected by the service.
     */
    async check() {
      try {
        await withRetry(() => single.getProperties(), { attempts: 3 });
      } catch (err) {
        throw fail(`reach ${root}`, err);
      }
      const probe = checkProbeKey(cfg.prefix);
      const blockId = Buffer.from('bifrost-logs-check-0000').toString('base64');
      try {
        await withRetry(() => single.getBlockBlobClient(probe).stageBlock(blockId, Buffer.from('\n'), 1), { attempts: 3 });
      } catch (err) {
        throw fail(`write to ${where(probe)}`, err);
      }
      env.log.verbose(`azure_blob check: staged an uncommitted block on ${where(probe)} (invisible, collected by the service)`);
    },
  };
}

export const createAzureBlobDestination: DestinationFactory = async (config: AzureBlobConfig, env) => objectStoreDestination(await createAzureBlobStore(config, env));
