import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { BlobServiceClient } from '@azure/storage-blob';
// @ts-expect-error plain JS module
import { generateRows, writeSqlite } from '../../fixtures/generator.mjs';
import { BIN, cli } from '../support/cli.js';
import { freePort, startAzurite, startS3, type AzuriteService, type S3Service } from '../support/services.js';
import { startFakeGcs, type FakeGcs } from '../fakes/gcs-server.js';
import { isCompleted, type TruthRow } from '../support/truth.js';

/**
 * The built CLI exporting to S3 (s3rver), GCS (the fake JSON API) and Azure
 * Blob (Azurite) with ad-hoc flags, read back with each service's SDK and
 * counted against the log DB. Run `npm run build` first (`npm test` does).
 */

const OPTS = { rows: 2500, seed: 17, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 2 };
// Wider than the generated data (local-time texts included): every row is in the window.
const ALL = ['--since', '2026-09-29T00:00:00Z', '--until', '2026-10-05T00:00:00Z'];
const SINCE = '2026-10-01T06:00:00Z';
const UNTIL = '2026-10-02T03:30:00Z';
const BUCKET = 'bl-e2e';
/** s3rver knows one key pair; the test passes it through the environment (the SDK default chain). */
const AWS_ID = 'S3RVER';
const AWS_SECRET = 'S3RVER';

let dir: string;
let db: string;
let sqlCompleted: number;
let truth: TruthRow[];
let s3: S3Service;
let gcs: FakeGcs;
let az: AzuriteService;

beforeAll(async () => {
  if (!existsSync(BIN) || !existsSync(join(BIN, '..', '..', 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  dir = mkdtempSync(join(tmpdir(), 'bl-os-e2e-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, OPTS);
  truth = [...generateRows(OPTS)] as TruthRow[];
  const d = new Database(db, { readonly: true });
  // The window covers all the data, so the count needs no time predicate (timestamps are mixed-format TEXT).
  sqlCompleted = (d.prepare(`SELECT COUNT(*) AS n FROM logs WHERE status <> 'processing'`).get() as { n: number }).n;
  d.close();
  [s3, gcs, az] = await Promise.all([startS3({ buckets: [BUCKET] }), startFakeGcs(), startAzurite()]);
  await BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(BUCKET).create();
}, 180_000);

afterAll(async () => {
  await Promise.all([s3?.destroy(), gcs?.stop(), az?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** No AWS profile, no instance metadata: only the env keys the test sets. */
const awsEnv = (): Record<string, string | undefined> => ({
  AWS_ACCESS_KEY_ID: AWS_ID, AWS_SECRET_ACCESS_KEY: AWS_SECRET, AWS_SESSION_TOKEN: undefined, AWS_PROFILE: undefined,
  AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined, AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: join(dir, 'no-aws-config'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
});
const gcpEnv = { GOOGLE_APPLICATION_CREDENTIALS: undefined, STORAGE_EMULATOR_HOST: undefined, GOOGLE_CLOUD_PROJECT: undefined };

let runs = 0;
const exportArgs = (args: string[]) => ['export', '--db', db, '--state-dir', join(dir, `state${++runs}`), '--format', 'parquet', '--max-rows-per-file', '900', ...args];

/** One clear line (plus an optional hint), no stack trace. */
function expectOneLine(stderr: string, re: RegExp) {
  const lines = stderr.trim().split('\n');
  expect(lines[0]).toMatch(/^bifrost-logs: could not /);
  expect(lines[0]).toMatch(re);
  expect(lines.length, stderr).toBeLessThanOrEqual(2);
  if (lines[1]) expect(lines[1]).toMatch(/^hint: /);
  expect(stderr).not.toMatch(/\n\s+at /);
}

/** Checks the objects of one export: manifest last and complete, parts matching it, row counts. */
async function verifyExport(objects: Map<string, Buffer>, type: string, expectedRows: number, prefix = '') {
  const keys = [...objects.keys()].sort();
  const manifests = keys.filter((k) => k.endsWith('.manifest.json'));
  expect(manifests).toHaveLength(1);
  const manifest = JSON.parse(objects.get(manifests[0]!)!.toString('utf8'));
  expect(manifest.destination).toBe(type);
  expect(manifest.format).toBe('parquet');
  expect(manifest.rows).toBe(expectedRows);
  expect(manifest.files.length).toBe(Math.ceil(expectedRows / 900));
  // Exactly the parts the manifest lists, plus the manifest: nothing stray, nothing missing.
  expect(keys).toEqual([...manifest.files.map((f: { key: string }) => f.key), manifests[0]].sort());
  let rows = 0;
  const ids = new Set<string>();
  for (const f of manifest.files as Array<{ key: string; rows: number; bytes: number; sha256: string }>) {
    expect(f.key.startsWith(prefix)).toBe(true);
    const buf = objects.get(f.key)!;
    expect(buf.length).toBe(f.bytes);
    expect(createHash('sha256').update(buf).digest('hex')).toBe(f.sha256);
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    const n = Number(parquetMetadata(ab).num_rows);
    expect(n).toBe(f.rows);
    rows += n;
    for (const r of await parquetReadObjects({ file: ab, columns: ['request_id'] })) ids.add(r.request_id as string);
  }
  expect(rows).toBe(expectedRows);
  expect(ids.size).toBe(expectedRows);
  return manifest;
}

async function s3Objects(prefix = ''): Promise<Map<string, Buffer>> {
  const c = new S3Client(s3.clientConfig);
  try {
    const out = new Map<string, Buffer>();
    const r = await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    for (const o of r.Contents ?? []) {
      const g = await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: o.Key! }));
      out.set(o.Key!, Buffer.from(await g.Body!.transformToByteArray()));
    }
    return out;
  } finally { c.destroy(); }
}

describe('export --dest s3 (s3rver), credentials from the default chain', () => {
  it('parquet over the whole data: every completed row, read back with the SDK', async () => {
    const r = await cli(exportArgs([...ALL, '--dest', 's3', '--bucket', BUCKET, '--endpoint', s3.endpoint, '--force-path-style', '--region', 'us-east-1', '--prefix', 'all/{year}/{month}/']), { env: awsEnv() });
    expect(r.code, r.stderr).toBe(0);
    const objects = await s3Objects('all/');
    expect(sqlCompleted).toBeGreaterThan(1000);
    const manifest = await verifyExport(objects, 's3', sqlCompleted, 'all/2026/09/');
    for (const out of [r.stdout, r.stderr, JSON.stringify(manifest)]) expect(out).not.toContain(AWS_SECRET);
  });

  it('a narrower window equals the independent count of completed rows in it', async () => {
    const r = await cli(exportArgs(['--since', SINCE, '--until', UNTIL, '--dest', 's3', '--bucket', BUCKET, '--endpoint', s3.endpoint, '--force-path-style', '--region', 'us-east-1', '--prefix', 'narrow/']), { env: awsEnv() });
    expect(r.code, r.stderr).toBe(0);
    const want = truth.filter((t) => t.__ts_ms >= Date.parse(SINCE) && t.__ts_ms < Date.parse(UNTIL) && isCompleted(t)).length;
    expect(want).toBeGreaterThan(0);
    await verifyExport(await s3Objects('narrow/'), 's3', want, 'narrow/');
  });

  it('a re-run overwrites the same keys', async () => {
    const args = [...ALL, '--dest', 's3', '--bucket', BUCKET, '--endpoint', s3.endpoint, '--force-path-style', '--region', 'us-east-1', '--prefix', 'rerun/'];
    expect((await cli(exportArgs(args), { env: awsEnv() })).code).toBe(0);
    const first = [...(await s3Objects('rerun/')).keys()].sort();
    const r = await cli(exportArgs(args), { env: awsEnv() });
    expect(r.code, r.stderr).toBe(0);
    const objects = await s3Objects('rerun/');
    expect([...objects.keys()].sort()).toEqual(first);
    await verifyExport(objects, 's3', sqlCompleted, 'rerun/');
  });
});

describe('export --dest gcs (fake JSON API)', () => {
  it('parquet over the whole data, read back with the SDK', async () => {
    const r = await cli(exportArgs([...ALL, '--dest', 'gcs', '--bucket', BUCKET, '--api-endpoint', gcs.apiEndpoint, '--prefix', 'gcs/']), { env: gcpEnv });
    expect(r.code, r.stderr).toBe(0);
    const storage = new Storage({ apiEndpoint: gcs.apiEndpoint, projectId: 'test' });
    const [files] = await storage.bucket(BUCKET).getFiles({ prefix: 'gcs/' });
    const objects = new Map<string, Buffer>();
    for (const f of files) objects.set(f.name, (await f.download({ validation: false }))[0]);
    await verifyExport(objects, 'gcs', sqlCompleted, 'gcs/');
  });
});

describe('export --dest azure_blob (Azurite)', () => {
  it('parquet over the whole data with the connection string from env.NAME; the account key is never printed', async () => {
    const r = await cli(exportArgs([...ALL, '--dest', 'azure_blob', '--container', BUCKET, '--connection-string', 'env.BL_TEST_AZ_CS', '--prefix', 'az/', '--verbose']), {
      env: { BL_TEST_AZ_CS: az.connectionString },
    });
    expect(r.code, r.stderr).toBe(0);
    const container = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(BUCKET);
    const objects = new Map<string, Buffer>();
    for await (const b of container.listBlobsFlat({ prefix: 'az/' })) objects.set(b.name, await container.getBlobClient(b.name).downloadToBuffer());
    const manifest = await verifyExport(objects, 'azure_blob', sqlCompleted, 'az/');
    for (const out of [r.stdout, r.stderr, JSON.stringify(manifest)]) {
      expect(out).not.toContain(az.accountKey);
      expect(out).not.toContain(az.connectionString);
    }
  });
});

describe('an unreachable endpoint exits 69 with one line, no stack trace, no secret', () => {
  it('s3', async () => {
    const port = await freePort();
    const r = await cli(exportArgs([...ALL, '--dest', 's3', '--bucket', BUCKET, '--endpoint', `http://127.0.0.1:${port}`, '--force-path-style', '--region', 'us-east-1']), { env: awsEnv() });
    expect(r.code, r.stderr).toBe(69);
    expectOneLine(r.stderr, /s3:\/\/bl-e2e.*ECONNREFUSED/);
    expect(r.stdout + r.stderr).not.toContain(AWS_SECRET);
  });

  it('gcs', async () => {
    const port = await freePort();
    const r = await cli(exportArgs([...ALL, '--dest', 'gcs', '--bucket', BUCKET, '--api-endpoint', `http://127.0.0.1:${port}`]), { env: gcpEnv });
    expect(r.code, r.stderr).toBe(69);
    expectOneLine(r.stderr, /gs:\/\/bl-e2e.*ECONNREFUSED/);
  });

  it('azure_blob, with the account key on the command line', async () => {
    const port = await freePort();
    const cs = az.connectionString.replace(`:${az.port}/`, `:${port}/`);
    const r = await cli(exportArgs([...ALL, '--dest', 'azure_blob', '--container', BUCKET, '--connection-string', cs]));
    expect(r.code, r.stderr).toBe(69);
    expectOneLine(r.stderr, /azure:\/\/devstoreaccount1\/bl-e2e.*ECONNREFUSED/);
    expect(r.stdout + r.stderr).not.toContain(az.accountKey);
  });
});
