// The fake must be imported before snowflake-sdk is loaded: it sets SNOWFLAKE_DISABLE_PLATFORM_DETECTION,
// which the SDK reads at load time (otherwise it probes 169.254.169.254 and metadata.google.internal).
import { startFakeSnowflake, type FakeSnowflake } from './snowflake-server.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type * as SnowflakeSdk from 'snowflake-sdk';

type Sdk = typeof SnowflakeSdk;
type Conn = SnowflakeSdk.Connection;
type Row = Record<string, unknown>;

let fake: FakeSnowflake;
let sdk: Sdk;
let dir: string;
const warnings: string[] = [];
/** Every socket this process opens while the suite runs (installed before the SDK is loaded). */
const sockets: string[] = [];
/** Endpoints of fakes a test starts for itself (their sockets are the fake's too). */
const otherFakes: string[] = [];
const realConnect = net.Socket.prototype.connect;
/** process.umask() without an argument is deprecated: read it by setting and restoring. */
const readUmask = () => { const m = process.umask(0o022); process.umask(m); return m; };
const startUmask = readUmask();

/** Everything the product passes: account, credentials, warehouse, database, schema, role + the endpoint override. */
function options(extra: Partial<SnowflakeSdk.ConnectionOptions> = {}): SnowflakeSdk.ConnectionOptions {
  return {
    ...fake.connectionOptions, // { account, accessUrl: 'http://127.0.0.1:<port>' }
    username: 'tester',
    password: 'secret',
    warehouse: 'WH',
    database: 'DB',
    schema: 'PUBLIC',
    role: 'LOADER',
    ...extra,
  };
}
async function connect(extra: Partial<SnowflakeSdk.ConnectionOptions> = {}): Promise<Conn> {
  const c = sdk.createConnection(options(extra));
  await new Promise<void>((res, rej) => c.connect((err) => (err ? rej(err) : res())));
  return c;
}
function exec(c: Conn, sqlText: string, binds?: SnowflakeSdk.Binds): Promise<Row[]> {
  return new Promise((res, rej) => {
    c.execute({ sqlText, ...(binds ? { binds } : {}), complete: (err, _s, rows) => (err ? rej(err) : res((rows ?? []) as Row[])) });
  });
}
function destroy(c: Conn): Promise<void> {
  return new Promise((res) => c.destroy(() => res()));
}
const count = async (c: Conn, where = '') => Number((await exec(c, `SELECT COUNT(*) AS N FROM DB.PUBLIC.EVENTS ${where}`))[0]!.N);

beforeAll(async () => {
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    // net.connect() passes its normalized [options, callback] array as the first argument
    const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
    const o = (typeof first === 'object' && first ? first : { port: first, host: typeof args[1] === 'string' ? args[1] : undefined }) as { host?: string; port?: unknown; path?: string };
    sockets.push(o.path ? `unix:${o.path}` : `${o.host ?? 'localhost'}:${String(o.port)}`);
    return (realConnect as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof realConnect;
  fake = await startFakeSnowflake({ username: 'tester', password: 'secret' });
  sdk = ((await import('snowflake-sdk')) as unknown as { default: Sdk }).default;
  const keep = (m: string) => warnings.push(String(m));
  sdk.configure({ logLevel: 'WARN', additionalLogToConsole: false, customLogger: { error: keep, warn: keep, info: () => {}, debug: () => {}, trace: () => {} } });
  dir = mkdtempSync(join(tmpdir(), 'fake-sf-test-'));
});
afterAll(async () => {
  net.Socket.prototype.connect = realConnect;
  await fake?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fake Snowflake, through the real snowflake-sdk', () => {
  it('logs in, answers SELECT 1 / CURRENT_VERSION(), and logs out', async () => {
    const c = await connect();
    expect(fake.logins.at(-1)).toMatchObject({ user: 'tester', database: 'DB', schema: 'PUBLIC', warehouse: 'WH', role: 'LOADER' });
    expect(await exec(c, 'SELECT 1')).toEqual([{ 1: 1 }]);
    const [v] = await exec(c, 'select current_version() as v, current_database()');
    expect(v).toEqual({ V: '9.0.0', 'CURRENT_DATABASE()': 'DB' });
    const before = fake.sessionCount();
    await destroy(c);
    expect(fake.sessionCount()).toBe(before - 1);
  });

  it('rejects a wrong password with Snowflake\'s error', async () => {
    await expect(connect({ password: 'nope' })).rejects.toMatchObject({ code: '390100' });
  });

  it('creates a table, then BEGIN, DELETE, array-bound INSERT of 1000 rows, COMMIT', async () => {
    const c = await connect();
    await exec(c, 'CREATE TABLE IF NOT EXISTS DB.PUBLIC.EVENTS ("TIMESTAMP" TIMESTAMP_TZ, "REQUEST_ID" VARCHAR, "TOKENS" INTEGER, "COST" FLOAT, "OK" BOOLEAN, "META" VARIANT)');
    await exec(c, 'CREATE TABLE IF NOT EXISTS DB.PUBLIC.EVENTS ("TIMESTAMP" TIMESTAMP_TZ)'); // no-op
    await exec(c, 'ALTER TABLE DB.PUBLIC.EVENTS ADD COLUMN IF NOT EXISTS "MODEL" VARCHAR(20)');
    await exec(c, 'ALTER TABLE DB.PUBLIC.EVENTS ADD COLUMN IF NOT EXISTS "MODEL" VARCHAR(20)');
    expect(fake.tables.get('DB.PUBLIC.EVENTS')!.columns.map((x) => x.name)).toEqual(['TIMESTAMP', 'REQUEST_ID', 'TOKENS', 'COST', 'OK', 'META', 'MODEL']);
    const cols = await exec(c, 'SELECT COLUMN_NAME, DATA_TYPE FROM DB.INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', ['PUBLIC', 'EVENTS']);
    expect(cols).toContainEqual({ COLUMN_NAME: 'TOKENS', DATA_TYPE: 'NUMBER' });
    expect(cols).toContainEqual({ COLUMN_NAME: 'META', DATA_TYPE: 'VARIANT' });
    expect(cols).toContainEqual({ COLUMN_NAME: 'MODEL', DATA_TYPE: 'TEXT' });

    const t0 = Date.UTC(2024, 0, 1);
    const rows = Array.from({ length: 1000 }, (_, i) => [new Date(t0 + i * 1000).toISOString(), `req-${i}`, String(i), String(i / 10), i % 2 ? 'true' : 'false', i % 3 ? 'gpt-4o' : null]);
    await exec(c, 'BEGIN');
    await exec(c, 'DELETE FROM DB.PUBLIC.EVENTS WHERE "TIMESTAMP" >= TO_TIMESTAMP_TZ(?) AND "TIMESTAMP" < TO_TIMESTAMP_TZ(?)', [new Date(t0).toISOString(), new Date(t0 + 3600e3).toISOString()]);
    const ins = await exec(c, 'INSERT INTO DB.PUBLIC.EVENTS ("TIMESTAMP", "REQUEST_ID", "TOKENS", "COST", "OK", "MODEL") VALUES (?, ?, ?, ?, ?, ?)', rows);
    expect(ins).toEqual([{ 'number of rows inserted': 1000 }]);
    // inside the transaction: visible to this session only
    expect(await count(c)).toBe(1000);
    const other = await connect();
    expect(await count(other)).toBe(0);
    await exec(c, 'COMMIT');
    expect(await count(other)).toBe(1000);
    await destroy(other);

    // literals and plain binds compare with the TIMESTAMP_TZ column too
    expect(await count(c, `WHERE "TIMESTAMP" >= '2024-01-01T00:05:00Z' AND "TIMESTAMP" < '2024-01-01 00:10:00'`)).toBe(300);
    const n = await exec(c, 'SELECT COUNT(*) AS N FROM DB.PUBLIC.EVENTS WHERE "TIMESTAMP" >= ? AND "TIMESTAMP" < ?', ['2024-01-01T00:00:00.000Z', '2024-01-01T00:01:40.000Z']);
    expect(n).toEqual([{ N: 100 }]);

    const stored = fake.tables.get('DB.PUBLIC.EVENTS')!.rows;
    expect(stored).toHaveLength(1000);
    expect(stored[7]).toEqual({ TIMESTAMP: new Date(t0 + 7000), REQUEST_ID: 'req-7', TOKENS: 7, COST: 0.7, OK: true, META: null, MODEL: 'gpt-4o' });
    const last = fake.statements.filter((x) => x.sql.startsWith('INSERT')).at(-1)!;
    expect(last.binds).toHaveLength(1000);
    expect((last.binds as unknown[][])[3]).toEqual(rows[3]);

    // values come back through the SDK's JSON result decoding
    const [r] = await exec(c, 'SELECT "TIMESTAMP", "TOKENS", "COST", "OK", "MODEL" FROM DB.PUBLIC.EVENTS WHERE "REQUEST_ID" = ?', ['req-7']);
    expect((r!.TIMESTAMP as Date).getTime()).toBe(t0 + 7000);
    expect(r).toMatchObject({ TOKENS: 7, COST: 0.7, OK: true, MODEL: 'gpt-4o' });
    const [agg] = await exec(c, 'SELECT MIN("TOKENS") AS LO, MAX("TOKENS") AS HI, COUNT(DISTINCT "MODEL") AS M FROM DB.PUBLIC.EVENTS');
    expect(agg).toEqual({ LO: 0, HI: 999, M: 1 });
    await destroy(c);
  }, 60_000);

  it('ROLLBACK, a failed COMMIT and a session that ends mid-transaction leave the table unchanged', async () => {
    const c = await connect();
    const before = await count(c);
    const snapshot = [...fake.tables.get('DB.PUBLIC.EVENTS')!.rows];
    await exec(c, 'BEGIN');
    await exec(c, 'DELETE FROM DB.PUBLIC.EVENTS');
    await exec(c, 'INSERT INTO DB.PUBLIC.EVENTS ("REQUEST_ID") VALUES (?)', [['x1'], ['x2']]);
    expect(await count(c)).toBe(2);
    await exec(c, 'ROLLBACK');
    expect(await count(c)).toBe(before);

    fake.failWhen(/^COMMIT/i, { code: '000625', sqlState: '57014', message: 'Statement reached its statement or warehouse timeout' });
    await exec(c, 'BEGIN');
    await exec(c, 'DELETE FROM DB.PUBLIC.EVENTS WHERE "TOKENS" < 500');
    await expect(exec(c, 'COMMIT')).rejects.toMatchObject({ code: '000625', sqlState: '57014' });
    await exec(c, 'ROLLBACK');
    expect(await count(c)).toBe(before);

    await exec(c, 'BEGIN');
    await exec(c, 'DELETE FROM DB.PUBLIC.EVENTS');
    await destroy(c); // logout without COMMIT
    expect(fake.tables.get('DB.PUBLIC.EVENTS')!.rows).toEqual(snapshot);

    // DDL commits an open transaction, as on Snowflake
    const d = await connect();
    await exec(d, 'BEGIN');
    await exec(d, 'INSERT INTO DB.PUBLIC.EVENTS ("REQUEST_ID") VALUES (?)', ['ddl-1']);
    await exec(d, 'CREATE TABLE IF NOT EXISTS DB.PUBLIC.OTHER (A INTEGER)');
    await exec(d, 'ROLLBACK');
    expect(await count(d)).toBe(before + 1);
    await exec(d, "DELETE FROM DB.PUBLIC.EVENTS WHERE \"REQUEST_ID\" = 'ddl-1'");
    await destroy(d);
  });

  it('statement errors surface as SDK errors with code and sqlState, and change nothing', async () => {
    const c = await connect();
    const before = await count(c);
    await expect(exec(c, 'SELECT * FROM DB.PUBLIC.NOPE')).rejects.toMatchObject({ code: '002003', sqlState: '42S02' });
    await expect(exec(c, 'GRANT ALL ON DB TO ROLE X')).rejects.toMatchObject({ code: '001003', sqlState: '42000' });
    await expect(exec(c, 'SELEC 1')).rejects.toMatchObject({ code: '001003' });
    await expect(exec(c, 'SELECT "NOPE" FROM DB.PUBLIC.EVENTS')).rejects.toMatchObject({ code: '000904' });
    await expect(exec(c, 'INSERT INTO DB.PUBLIC.EVENTS ("REQUEST_ID", "META") VALUES (?, PARSE_JSON(?))', ['a', '{}'])).rejects.toMatchObject({ code: '002014' });
    // one bad value in a batch: the whole INSERT fails
    await expect(exec(c, 'INSERT INTO DB.PUBLIC.EVENTS ("REQUEST_ID", "TOKENS") VALUES (?, ?)', [['ok', '1'], ['bad', 'abc']])).rejects.toMatchObject({ code: '100038', sqlState: '22018' });
    await expect(exec(c, 'INSERT INTO DB.PUBLIC.EVENTS ("TIMESTAMP") VALUES (?)', ['yesterday'])).rejects.toMatchObject({ code: '100035' });
    await expect(exec(c, 'INSERT INTO DB.PUBLIC.EVENTS ("MODEL") VALUES (?)', ['x'.repeat(21)])).rejects.toMatchObject({ code: '100078' });
    expect(fake.statements.at(-1)!.error).toMatch(/^100078/);
    expect(await count(c)).toBe(before);
    await destroy(c);
  });

  it('PUT to the table stage (encrypted by the SDK, uploaded to the S3 server), COPY INTO a temporary table from Parquet, move with PARSE_JSON, REMOVE', async () => {
    const c = await connect();
    const file = join(dir, 'part 1.parquet'); // a space: the quoted file:// form
    const t0 = Date.UTC(2024, 1, 1);
    writeFileSync(file, Buffer.from(parquetWriteBuffer({
      columnData: [
        { name: 'timestamp', data: [new Date(t0), new Date(t0 + 1000), new Date(t0 + 2000)], type: 'TIMESTAMP' },
        { name: 'request_id', data: ['p-1', 'p-2', 'req-5'], type: 'STRING' },
        { name: 'tokens', data: [10, 20, 30], type: 'INT32' },
        { name: 'meta', data: ['{"a":1}', null, '[1,2]'], type: 'STRING' },
        { name: 'ignored', data: [true, false, true], type: 'BOOLEAN' },
      ],
    })));
    await exec(c, 'CREATE OR REPLACE TEMPORARY TABLE DB.PUBLIC.EVENTS__STAGE_1 ("TIMESTAMP" TIMESTAMP_TZ, "REQUEST_ID" VARCHAR, "TOKENS" INTEGER, "META" VARCHAR)');
    expect(fake.tables.has('DB.PUBLIC.EVENTS__STAGE_1')).toBe(false); // temporary: session-only

    const put = await exec(c, `PUT 'file://${file}' @DB.PUBLIC.%EVENTS/run_1/ AUTO_COMPRESS = FALSE OVERWRITE = TRUE`);
    expect(put).toEqual([expect.objectContaining({ source: 'part 1.parquet', target: 'part 1.parquet', status: 'UPLOADED' })]);
    expect([...fake.stagedFiles.keys()]).toEqual(['@%DB.PUBLIC.EVENTS/run_1/part 1.parquet']);
    // What the SDK stored on the S3 server: ciphertext, with the envelope Snowflake's stages carry.
    const stored = fake.stageStore.s3.storedObjects(fake.stageStore.bucket).filter((o) => o.key.endsWith('/run_1/part 1.parquet'));
    expect(stored).toHaveLength(1);
    const plain = readFileSync(file);
    expect(stored[0]!.body.equals(plain)).toBe(false);
    expect(stored[0]!.body.length).toBe((Math.floor(plain.length / 16) + 1) * 16); // AES-CBC, PKCS#7
    expect(stored[0]!.metadata).toMatchObject({ 'x-amz-meta-x-amz-key': expect.any(String), 'x-amz-meta-x-amz-iv': expect.any(String), 'x-amz-meta-x-amz-matdesc': expect.stringMatching(/^\{"smkId":"\d+","queryId":"[^"]+","keySize":"128"\}$/) });
    expect(fake.stagedFiles.get('@%DB.PUBLIC.EVENTS/run_1/part 1.parquet')).toEqual(plain); // decrypted by the fake

    const copySql = "COPY INTO DB.PUBLIC.EVENTS__STAGE_1 FROM @DB.PUBLIC.%EVENTS/run_1/ FILES = ('part 1.parquet') FILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE ON_ERROR = ABORT_STATEMENT";
    const copy = await exec(c, copySql);
    expect(copy).toEqual([expect.objectContaining({ status: 'LOADED', rows_parsed: 3, rows_loaded: 3, errors_seen: 0 })]);
    expect(readUmask()).toBe(startUmask); // the SDK's (former) LOCAL_FS path set it to 0; the S3 path leaves it alone
    // the same file again: skipped by the load metadata, as on Snowflake
    expect(await exec(c, copySql)).toEqual([{ status: 'Copy executed with 0 files processed.' }]);
    expect(await exec(c, 'SELECT COUNT(*) AS N FROM DB.PUBLIC.EVENTS__STAGE_1')).toEqual([{ N: 3 }]);

    const before = await count(c);
    await exec(c, 'BEGIN');
    await exec(c, 'DELETE FROM DB.PUBLIC.EVENTS WHERE "TIMESTAMP" >= TO_TIMESTAMP_TZ(?) AND "TIMESTAMP" < TO_TIMESTAMP_TZ(?)', [new Date(t0).toISOString(), new Date(t0 + 60e3).toISOString()]);
    const moved = await exec(c, `INSERT INTO DB.PUBLIC.EVENTS ("TIMESTAMP", "REQUEST_ID", "TOKENS", "META") SELECT s."TIMESTAMP", s."REQUEST_ID", s."TOKENS", PARSE_JSON(s."META") FROM DB.PUBLIC.EVENTS__STAGE_1 s WHERE NOT EXISTS (SELECT 1 FROM DB.PUBLIC.EVENTS x WHERE x."REQUEST_ID" = s."REQUEST_ID")`);
    expect(moved).toEqual([{ 'number of rows inserted': 2 }]); // req-5 already there
    await exec(c, 'COMMIT');
    expect(await count(c)).toBe(before + 2);
    const [m] = await exec(c, 'SELECT "META", "TIMESTAMP" FROM DB.PUBLIC.EVENTS WHERE "REQUEST_ID" = \'p-1\'');
    expect(m!.META).toEqual({ a: 1 });
    expect((m!.TIMESTAMP as Date).getTime()).toBe(t0);
    expect(fake.tables.get('DB.PUBLIC.EVENTS')!.rows.find((r) => r.REQUEST_ID === 'p-1')).toMatchObject({ META: { a: 1 }, TOKENS: 10 });

    expect(await exec(c, 'REMOVE @DB.PUBLIC.%EVENTS/run_1/')).toEqual([{ name: 'run_1/part 1.parquet', result: 'removed' }]);
    expect(fake.stagedFiles.size).toBe(0);
    await exec(c, 'DROP TABLE IF EXISTS DB.PUBLIC.EVENTS__STAGE_1');
    await expect(exec(c, 'SELECT 1 FROM DB.PUBLIC.EVENTS__STAGE_1')).rejects.toMatchObject({ code: '002003' });
    await destroy(c);
  });

  it('COPY of gzipped NDJSON (AUTO_COMPRESS by the SDK) and a PUT to a missing table stage', async () => {
    const c = await connect();
    await exec(c, 'CREATE TABLE DB.PUBLIC.J (ID INTEGER, NAME VARCHAR, AT TIMESTAMP_NTZ, DOC VARIANT)');
    const file = join(dir, 'rows.ndjson');
    writeFileSync(file, '{"id": 1, "name": "a", "at": "2024-03-01 10:00:00", "doc": {"k": [1]}}\n{"ID": 2, "Name": "b"}\n');
    const put = await exec(c, `PUT file://${file} @%J`);
    expect(put[0]).toMatchObject({ target: 'rows.ndjson.gz', targetCompression: 'GZIP', status: 'UPLOADED' });
    expect(gunzipSync(fake.stagedFiles.get('@%DB.PUBLIC.J/rows.ndjson.gz')!)).toEqual(readFileSync(file));
    const copy = await exec(c, "COPY INTO J FROM @%J FILE_FORMAT = (TYPE = JSON) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE PURGE = TRUE");
    expect(copy[0]).toMatchObject({ status: 'LOADED', rows_loaded: 2 });
    expect(fake.tables.get('DB.PUBLIC.J')!.rows).toEqual([
      { ID: 1, NAME: 'a', AT: new Date(Date.UTC(2024, 2, 1, 10)), DOC: { k: [1] } },
      { ID: 2, NAME: 'b', AT: null, DOC: null },
    ]);
    expect(fake.stagedFiles.size).toBe(0); // PURGE
    await expect(exec(c, `PUT file://${file} @%NOT_THERE`)).rejects.toMatchObject({ code: '002003' });
    await destroy(c);
  });

  it('a staged file that is not encrypted as the PUT answer said fails the COPY and is a violation: stop() fails', async () => {
    const own = await startFakeSnowflake({ username: 'tester', password: 'secret' });
    otherFakes.push(`127.0.0.1:${new URL(own.url).port}`, `127.0.0.1:${own.stageStore.s3.port}`);
    const c = await connect(own.connectionOptions);
    await exec(c, 'CREATE TABLE DB.PUBLIC.RAW (ID INTEGER)');
    const file = join(dir, 'raw.ndjson');
    writeFileSync(file, '{"ID": 1}\n');
    await exec(c, `PUT file://${file} @%RAW/in/ AUTO_COMPRESS = FALSE`);
    const { s3, bucket } = own.stageStore;
    const [obj] = s3.storedObjects(bucket).filter((o) => o.key.endsWith('/in/raw.ndjson'));
    expect(obj).toBeDefined();
    const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
    const raw = new S3Client(s3.clientConfig);
    const copy = "COPY INTO RAW FROM @%RAW/in/ FILE_FORMAT = (TYPE = JSON) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE";
    try {
      // 1. the same bytes uploaded without the encryption envelope (a client that skipped it)
      await raw.send(new PutObjectCommand({ Bucket: bucket, Key: obj!.key, Body: readFileSync(file), Metadata: { sfc_digest: obj!.metadata['x-amz-meta-sfc_digest']! } }));
      await expect(exec(c, copy)).rejects.toMatchObject({ code: '091001', message: expect.stringMatching(/raw\.ndjson.*not client-side encrypted/s) });
      // 2. the envelope kept, the bytes replaced (its digest and padding no longer fit)
      const envelope = Object.fromEntries(Object.entries(obj!.metadata).filter(([k]) => k.startsWith('x-amz-meta-')).map(([k, v]) => [k.slice('x-amz-meta-'.length), v]));
      await raw.send(new PutObjectCommand({ Bucket: bucket, Key: obj!.key, Body: Buffer.alloc(obj!.body.length, 7), Metadata: envelope }));
      await expect(exec(c, copy)).rejects.toMatchObject({ code: '091001', message: expect.stringMatching(/does not decrypt|do not match its sfc-digest/) });
      expect(own.tables.get('DB.PUBLIC.RAW')!.rows).toEqual([]);
      expect(own.violations).toHaveLength(2);
      expect(own.violations[0]).toMatch(/^staged file @%DB\.PUBLIC\.RAW\/in\/raw\.ndjson: it is not client-side encrypted/);
      // 3. the SDK's own encrypted PUT loads
      await exec(c, `PUT file://${file} @%RAW/in/ AUTO_COMPRESS = FALSE OVERWRITE = TRUE`);
      expect(await exec(c, copy)).toEqual([expect.objectContaining({ status: 'LOADED', rows_loaded: 1 })]);
      // 4. an unencrypted upload next to it that nothing COPYs: found when the fake stops
      await raw.send(new PutObjectCommand({ Bucket: bucket, Key: obj!.key.replace(/raw\.ndjson$/, 'stray.ndjson'), Body: readFileSync(file) }));
      await destroy(c);
    } finally {
      raw.destroy();
    }
    // A suite that let such a file through fails: stop() rejects while violations are recorded.
    const stopped = await own.stop().then(() => null, (e: unknown) => e as Error);
    expect(stopped?.message).toMatch(/staged files that were not encrypted as the PUT answer said:\nstaged file @%DB\.PUBLIC\.RAW/);
    expect(stopped?.message).toMatch(/staged file @%DB\.PUBLIC\.RAW\/in\/stray\.ndjson \(left at stop\): it is not client-side encrypted/);
    expect(stopped?.message).not.toMatch(/raw\.ndjson \(left at stop\)/); // the SDK's own upload opens
  });

  it('array binds past CLIENT_STAGE_ARRAY_BINDING_THRESHOLD: the SDK falls back to inline binds', async () => {
    const c = await connect();
    await exec(c, 'CREATE TABLE DB.PUBLIC.WIDE (A INTEGER, B VARCHAR, C VARCHAR, D VARCHAR, E VARCHAR, F VARCHAR, G VARCHAR)');
    const rows = Array.from({ length: 10_000 }, (_, i) => [i, `b${i}`, 'c', 'd', 'e', 'f', 'g']); // 70,000 values > 65,280
    warnings.length = 0;
    expect(await exec(c, 'INSERT INTO DB.PUBLIC.WIDE VALUES (?, ?, ?, ?, ?, ?, ?)', rows)).toEqual([{ 'number of rows inserted': 10_000 }]);
    expect(fake.tables.get('DB.PUBLIC.WIDE')!.rows).toHaveLength(10_000);
    expect(fake.statements.some((x) => /TEMPORARY STAGE SYSTEM\$BIND/.test(x.sql))).toBe(true);
    expect(warnings.join('\n')).toMatch(/falling back to inline binds/);
    // the product's own setting keeps it inline from the start
    const d = await connect({ arrayBindingThreshold: 100_000 });
    const n = fake.statements.length;
    await exec(d, 'INSERT INTO DB.PUBLIC.WIDE VALUES (?, ?, ?, ?, ?, ?, ?)', rows);
    expect(fake.statements.slice(n).map((x) => x.sql)).toEqual(['INSERT INTO DB.PUBLIC.WIDE VALUES (?, ?, ?, ?, ?, ?, ?)']);
    await destroy(d);
    await destroy(c);
  }, 60_000);

  it('asyncExec + getResultsFromQueryId', async () => {
    const c = await connect();
    const queryId = await new Promise<string>((res, rej) => {
      c.execute({ sqlText: 'SELECT COUNT(*) AS N FROM DB.PUBLIC.EVENTS', asyncExec: true, complete: (err, stmt) => (err ? rej(err) : res(stmt.getQueryId())) });
    });
    const stmt = await c.getResultsFromQueryId({ queryId });
    const rows = await new Promise<Row[]>((res, rej) => {
      const out: Row[] = [];
      stmt.streamRows().on('data', (r: Row) => out.push(r)).on('end', () => res(out)).on('error', rej);
    });
    expect(rows).toEqual([{ N: await count(c) }]);
    await destroy(c);
  });

  it('never opened a socket to anything but the fake (no OCSP, telemetry or cloud-metadata probes)', async () => {
    await new Promise((r) => setTimeout(r, 300)); // the SDK's platform detection times out after 200 ms
    expect(sockets.length).toBeGreaterThan(0);
    // the fake's own two endpoints: its REST API and the S3 server its stages live on (PUT uploads there)
    const own = [`127.0.0.1:${new URL(fake.url).port}`, `127.0.0.1:${fake.stageStore.s3.port}`, ...otherFakes];
    expect(sockets.filter((x) => !own.includes(x))).toEqual([]);
    expect(sockets).toContain(own[1]);
  });
});
