import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { CliError } from '../../src/errors.js';
import type { ObjectStore } from '../../src/destination/object-store.js';
import type { CommitInfo, Destination, DestinationEnv, PartInfo, WrittenPart } from '../../src/destination/types.js';
import { createFileDestination, createFileStore } from '../../src/destination/file/index.js';
import { createS3Destination, createS3Store } from '../../src/destination/s3/index.js';
import { createGcsDestination, createGcsStore } from '../../src/destination/gcs/index.js';
import { createAzureBlobDestination, createAzureBlobStore } from '../../src/destination/azure-blob/index.js';
import { freePort, startAzurite, startS3, type AzuriteService, type S3Service } from '../support/services.js';
import { startFakeGcs, type FakeGcs } from '../fakes/gcs-server.js';

/**
 * One contract, four object stores: `file` (a temp dir), `s3` (s3rver),
 * `gcs` (the fake JSON API server, real SDK) and `azure_blob` (Azurite).
 * Every store must: make a part visible only when it finishes, overwrite on a
 * re-run, leave nothing visible when a part fails, prove write access without
 * leaving anything, fail fast and in one line against a dead endpoint.
 * Listings use each service's own SDK, never the code under test.
 */

const MiB = 1 << 20;
const BUCKET = 'bl-contract';
const silentLog = { info() {}, warn() {}, verbose() {}, isVerbose: false, isQuiet: true };
let tmp: string;
const env = (): DestinationEnv => ({ log: silentLog, tmpDir: tmp });

interface Setup {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The destination, as the registry builds it. */
  open(): Promise<Destination>;
  /** Its bare ObjectStore (for a put() with a failing body). */
  store(): Promise<ObjectStore>;
  /** The same store type pointed at a closed port (file: a path under a regular file). */
  openDead(): Promise<Destination>;
  /** Every key visible in the bucket/container/dir, listed with the service's SDK. */
  list(): Promise<string[]>;
  /** Multipart uploads begun and never completed nor aborted (s3 only). */
  pending?(): string[];
  /** How `key` was uploaded, when the server can tell (gcs: the fake logs requests). */
  uploadTypes?(key: string): string[];
}

const closedPort = () => freePort();

function fileSetup(): Setup {
  let root: string;
  return {
    name: 'file',
    async start() { root = mkdtempSync(join(tmpdir(), 'bl-os-file-')); },
    async stop() { if (root) rmSync(root, { recursive: true, force: true }); },
    open: () => createFileDestination({ path: root }, env()),
    store: async () => createFileStore(root),
    async openDead() {
      const f = join(tmp, `not-a-dir-${randomBytes(3).toString('hex')}`);
      writeFileSync(f, 'x');
      return createFileDestination({ path: join(f, 'sub') }, env());
    },
    // Hidden files included: a temp file left behind is a failure too.
    async list() { return readdirSync(root, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name).slice(root.length + 1)).sort(); },
  };
}

function s3Setup(): Setup {
  let s3: S3Service;
  let client: S3Client;
  const config = (endpoint: string) => ({
    bucket: BUCKET, endpoint, force_path_style: true, region: 'us-east-1', prefix: 'exports/{year}/',
    part_size_bytes: 5 * MiB, request_timeout_secs: 10,
    credentials: { access_key_id: 'S3RVER', secret_access_key: 'S3RVER' },
  });
  return {
    name: 's3',
    async start() {
      s3 = await startS3({ buckets: [BUCKET] });
      client = new S3Client(s3.clientConfig);
    },
    async stop() { client?.destroy(); await s3?.destroy(); },
    open: () => createS3Destination(config(s3.endpoint), env()),
    store: async () => createS3Store(config(s3.endpoint), env()),
    openDead: async () => createS3Destination(config(`http://127.0.0.1:${await closedPort()}`), env()),
    async list() {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const r = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: token }));
        keys.push(...(r.Contents ?? []).map((o) => o.Key!));
        token = r.NextContinuationToken;
      } while (token);
      return keys.sort();
    },
    pending: () => s3.pendingUploads(BUCKET).map((u) => u.key),
  };
}

function gcsSetup(): Setup {
  let gcs: FakeGcs;
  let storage: Storage;
  const config = (api_endpoint: string) => ({ bucket: BUCKET, api_endpoint, prefix: 'exports/', request_timeout_secs: 10 });
  return {
    name: 'gcs',
    async start() {
      gcs = await startFakeGcs();
      // As the fake's header says: a custom endpoint, no credentials.
      storage = new Storage({ apiEndpoint: gcs.apiEndpoint, projectId: 'test' });
    },
    async stop() { await gcs?.stop(); },
    open: () => createGcsDestination(config(gcs.apiEndpoint), env()),
    store: () => createGcsStore(config(gcs.apiEndpoint), env()),
    openDead: async () => createGcsDestination(config(`http://127.0.0.1:${await closedPort()}`), env()),
    async list() {
      const [files] = await storage.bucket(BUCKET).getFiles();
      return files.map((f) => f.name).sort();
    },
    uploadTypes: (key) => gcs.requests.filter((r) => r.method === 'POST').map((r) => new URL(r.url, 'http://x')).filter((u) => u.searchParams.get('name') === key).map((u) => u.searchParams.get('uploadType') ?? ''),
  };
}

function azureSetup(): Setup {
  let az: AzuriteService;
  let container: ContainerClient;
  return {
    name: 'azure_blob',
    async start() {
      az = await startAzurite();
      container = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(BUCKET);
      await container.create();
    },
    async stop() { await az?.stop(); },
    open: () => createAzureBlobDestination({ container: BUCKET, connection_string: az.connectionString, prefix: 'exports/', request_timeout_secs: 10 }, env()),
    // The other auth path: account name + key, endpoint override.
    store: () => createAzureBlobStore({ container: BUCKET, account_name: az.accountName, account_key: az.accountKey, endpoint: az.blobEndpoint, request_timeout_secs: 10 }, env()),
    async openDead() {
      const port = await closedPort();
      return createAzureBlobDestination({ container: BUCKET, connection_string: az.connectionString.replace(`:${az.port}/`, `:${port}/`), request_timeout_secs: 10 }, env());
    },
    async list() {
      const names: string[] = [];
      for await (const b of container.listBlobsFlat()) names.push(b.name);
      return names.sort();
    },
  };
}

const SETUPS: Setup[] = [fileSetup(), s3Setup(), gcsSetup(), azureSetup()];

beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'bl-os-')); });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const partInfo = (key: string, contentType = 'application/x-ndjson', contentEncoding?: 'gzip'): PartInfo =>
  ({ key, kind: 'part', format: 'jsonl', contentType, contentEncoding, schema: [] });

/** Streams `data` into a part in uneven chunks, as export-window's sink does. */
async function writePart(dest: Destination, key: string, data: Buffer, contentEncoding?: 'gzip'): Promise<WrittenPart> {
  const up = await dest.openPart(partInfo(key, 'application/x-ndjson', contentEncoding));
  try {
    for (let i = 0, n = 0; i < data.length; i += n) {
      n = [777, 64 * 1024, 300 * 1024][i % 3]!;
      await up.write(data.subarray(i, i + n));
    }
    await up.finish();
  } catch (err) {
    await up.abort();
    throw err;
  }
  return { key, kind: 'part', rows: 0, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

async function commit(dest: Destination, manifestKey: string, parts: WrittenPart[], extra: Record<string, unknown> = {}): Promise<Buffer> {
  const manifestBytes = Buffer.from(JSON.stringify({ manifest_version: 1, files: parts, ...extra }, null, 2) + '\n');
  const c: CommitInfo = {
    exportName: 'contract', window: { start: Date.UTC(2026, 9, 1), end: Date.UTC(2026, 9, 2) }, manifestKey, manifestBytes,
    parts, late: false, schema: [], aggregated: false,
  };
  await dest.commit(c);
  return manifestBytes;
}

async function readAll(dest: Destination, key: string): Promise<Buffer | null> {
  const r = await dest.readObject!(key);
  if (!r) return null;
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

const ndjson = (tag: string, n: number) => Buffer.from(Array.from({ length: n }, (_, i) => JSON.stringify({ request_id: `${tag}-${i}`, cost: i / 7, text: 'é ✓ "q"' }) + '\n').join(''));
/** Larger than every store's whole-object threshold (5 MiB s3 part in this config, 8 MiB gcs/azure): the streaming path. */
const big = () => randomBytes(9 * MiB + 12_345);

/** A body that yields `n` bytes, then fails. */
function failingBody(n: number): Readable {
  return Readable.from((async function* () {
    yield randomBytes(n);
    await new Promise((r) => setTimeout(r, 20));
    throw new Error('the encoder failed');
  })());
}

function expectOneLineCliError(err: unknown, exitCode: number) {
  expect(err).toBeInstanceOf(CliError);
  const e = err as CliError;
  expect(e.exitCode, e.message).toBe(exitCode);
  expect(e.message).toMatch(/^could not /);
  expect(e.message).not.toMatch(/\n/);
  expect(e.message).not.toMatch(/\bat .+:\d+:\d+/);
}

describe.each(SETUPS)('$name object store', (s) => {
  let dest: Destination;
  const P = 'exports/2026/';

  beforeAll(async () => {
    await s.start();
    dest = await s.open();
  }, 120_000);
  afterAll(async () => {
    await dest?.close();
    await s.stop();
  }, 60_000);

  it('writes two parts and commits: exact bytes and the manifest read back', async () => {
    const small = ndjson('a', 50);
    const large = big();
    const parts = [await writePart(dest, `${P}w1_part-0001.jsonl`, small), await writePart(dest, `${P}w1_part-0002.jsonl.gz`, large, 'gzip')];
    const manifest = await commit(dest, `${P}w1.manifest.json`, parts);
    expect(await s.list()).toEqual([`${P}w1.manifest.json`, `${P}w1_part-0001.jsonl`, `${P}w1_part-0002.jsonl.gz`]);
    expect((await readAll(dest, `${P}w1_part-0001.jsonl`))!.equals(small)).toBe(true);
    // Stored as written (gzip content-encoding is metadata: no transcoding on the way back).
    const back = (await readAll(dest, `${P}w1_part-0002.jsonl.gz`))!;
    expect(back.length).toBe(large.length);
    expect(createHash('sha256').update(back).digest('hex')).toBe(parts[1]!.sha256);
    expect((await readAll(dest, `${P}w1.manifest.json`))!.equals(manifest)).toBe(true);
    expect(await readAll(dest, `${P}missing.json`)).toBeNull();
    expect(s.pending?.() ?? []).toEqual([]);
    // Small objects are one request; the large part streamed through a resumable session.
    if (s.uploadTypes) {
      expect(s.uploadTypes(`${P}w1_part-0001.jsonl`)).toEqual(['multipart']);
      expect(s.uploadTypes(`${P}w1_part-0002.jsonl.gz`)).toEqual(['resumable']);
    }
  });

  it('a re-run of the same keys overwrites: no duplicates', async () => {
    const before = (await s.list()).length;
    const small = ndjson('b', 20);
    const large = big();
    const parts = [await writePart(dest, `${P}w1_part-0001.jsonl`, small), await writePart(dest, `${P}w1_part-0002.jsonl.gz`, large, 'gzip')];
    const manifest = await commit(dest, `${P}w1.manifest.json`, parts, { rerun: true });
    const keys = await s.list();
    expect(keys.length).toBe(before);
    expect(keys.filter((k) => k.startsWith(`${P}w1`))).toEqual([`${P}w1.manifest.json`, `${P}w1_part-0001.jsonl`, `${P}w1_part-0002.jsonl.gz`]);
    expect((await readAll(dest, `${P}w1_part-0001.jsonl`))!.equals(small)).toBe(true);
    expect((await readAll(dest, `${P}w1_part-0002.jsonl.gz`))!.equals(large)).toBe(true);
    expect((await readAll(dest, `${P}w1.manifest.json`))!.equals(manifest)).toBe(true);
  });

  describe('a part that fails mid-way leaves nothing visible under its key', () => {
    it.each([
      ['small, aborted', 100 * 1024],
      ['large, aborted after several MiB (streaming path)', 10 * MiB],
    ])('%s', async (_, n) => {
      const key = `${P}abort-${n}_part-0001.jsonl`;
      const before = await s.list();
      const up = await dest.openPart(partInfo(key));
      const data = randomBytes(n);
      for (let i = 0; i < data.length; i += 256 * 1024) await up.write(data.subarray(i, i + 256 * 1024));
      await up.abort();
      expect(await s.list()).toEqual(before);
      expect(await readAll(dest, key)).toBeNull();
      expect(s.pending?.() ?? []).toEqual([]);
    });

    it('the encoder stream errors (export-window\'s path: pipeline error, then abort)', async () => {
      const key = `${P}stream-error_part-0001.jsonl`;
      const before = await s.list();
      const up = await dest.openPart(partInfo(key));
      const sink = new Writable({ write(chunk: Buffer, _e, cb) { up.write(chunk).then(() => cb(), cb); } });
      const err = await pipeline(failingBody(10 * MiB), sink).then(() => null, (e: unknown) => e);
      expect((err as Error).message).toBe('the encoder failed');
      await up.abort();
      expect(await s.list()).toEqual(before);
      expect(s.pending?.() ?? []).toEqual([]);
    });

    it.each([['small', 1000], ['large', 10 * MiB]])('put() with a %s body that errors rejects with a one-line error', async (_, n) => {
      const store = await s.store();
      const key = `${P}put-error-${n}.bin`;
      const before = await s.list();
      const err = await store.put(key, failingBody(n), { contentType: 'application/octet-stream' }, new AbortController().signal).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(String((err as Error).message)).toMatch(/the encoder failed/);
      if (s.name !== 'file') expectOneLineCliError(err, 69);
      expect(await s.list()).toEqual(before);
      expect(s.pending?.() ?? []).toEqual([]);
      await store.close?.();
    });

    it('an aborted overwrite keeps the previous complete object', async () => {
      const key = `${P}keep_part-0001.jsonl`;
      const old = ndjson('old', 10);
      await writePart(dest, key, old);
      const up = await dest.openPart(partInfo(key));
      await up.write(randomBytes(10 * MiB));
      await up.abort();
      expect((await readAll(dest, key))!.equals(old)).toBe(true);
      await dest.deleteObject!(key);
    });
  });

  it('check() passes and leaves no object behind', async () => {
    const before = await s.list();
    await dest.check();
    await dest.check();
    expect(await s.list()).toEqual(before);
    expect(s.pending?.() ?? []).toEqual([]);
  });

  it('check() against a dead endpoint fails fast: CliError, exit 69, one line', async () => {
    const dead = await s.openDead();
    const t0 = Date.now();
    const err = await dead.check().then(() => null, (e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(30_000);
    // The file store's "dead endpoint" is a directory below a regular file: it cannot be created, 73 (69 was wrong).
    expectOneLineCliError(err, s.name === 'file' ? 73 : 69);
    await dead.close();
  });

  it('deleteObject: a missing key is fine, an existing one goes', async () => {
    await dest.deleteObject!(`${P}never-written.json`);
    const key = `${P}to-delete.json`;
    await commit(dest, key, []);
    expect(await s.list()).toContain(key);
    await dest.deleteObject!(key);
    await dest.deleteObject!(key);
    expect(await s.list()).not.toContain(key);
  });
});

describe('gcs: whole-object puts are retried by withRetry (the SDK tries once)', () => {
  let gcs: FakeGcs;
  let dest: Destination;
  beforeAll(async () => {
    gcs = await startFakeGcs();
    dest = await createGcsDestination({ bucket: BUCKET, api_endpoint: gcs.apiEndpoint }, env());
  });
  afterAll(async () => { await dest?.close(); await gcs?.stop(); });

  it('a 503 (with Retry-After) on the manifest is retried until it lands', async () => {
    gcs.failNext(2, 503, { retryAfter: 0 });
    const before = gcs.requests.length;
    const bytes = await commit(dest, 'retry/w.manifest.json', []);
    expect(gcs.requests.length - before).toBe(3);
    expect(gcs.objects.get(`${BUCKET}/retry/w.manifest.json`)!.data.equals(bytes)).toBe(true);
  });

  it('a 403 is not retried: exit 78 with a hint', async () => {
    gcs.failNext(1, 403);
    const before = gcs.requests.length;
    const err = await commit(dest, 'retry/denied.manifest.json', []).then(() => null, (e: unknown) => e);
    expectOneLineCliError(err, 78);
    expect((err as CliError).hint).toMatch(/credentials/);
    expect(gcs.requests.length - before).toBe(1);
    expect(gcs.objects.has(`${BUCKET}/retry/denied.manifest.json`)).toBe(false);
  });
});
