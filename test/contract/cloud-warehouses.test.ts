import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The fakes first: they switch the SDKs' cloud-metadata probes off before the SDKs load.
import { startFakeSnowflake, type FakeSnowflake } from '../fakes/snowflake-server.js';
import { startFakeBigQuery, type FakeBigQuery } from '../fakes/bigquery-server.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError } from '../../src/errors.js';
import { createSnowflakeDestination, copySql, moveStageSql, loadPath, putSql, sfTableStage } from '../../src/destination/snowflake/index.js';
import { commitSql, createBigQueryDestination, stageType } from '../../src/destination/bigquery/index.js';
import '../fakes/gcs-server.js';
import { tableLayout } from '../../src/destination/warehouse/layout.js';
import type { BigQueryConfig } from '../../src/destination/bigquery/schema.js';

import { W1, W2, SCHEMA, TRICKY, records, decodePart, deliver, silentLog, SF_PASSWORD, SF_DB, SF_SCHEMA, snowflakeRowsOf, BQ_DATASET, bigqueryRowsOf } from './warehouse-contract.js';

/** What only BigQuery and Snowflake do (their load paths, jobs and logins); the contract itself runs in warehouses.test.ts. */

describe('snowflake destination (snowflake-sdk against the fake Snowflake)', () => {
  let fake: FakeSnowflake;
  let tmp: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'bl-sf-'));
    fake = await startFakeSnowflake({ username: 'loader', password: SF_PASSWORD });
  });
  afterAll(async () => {
    await fake?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('small windows: array-bound INSERT into a temporary stage, then BEGIN; DELETE; INSERT … SELECT; COMMIT', async () => {
    const dest = await createSnowflakeDestination({
      account: fake.connectionOptions.account, access_url: fake.connectionOptions.accessUrl, database: SF_DB, schema: SF_SCHEMA, table: 'SQL_SMALL',
      warehouse: 'BL_WH', credentials: { username: 'loader', password: SF_PASSWORD },
    }, { log: silentLog, tmpDir: tmp });
    try {
      const from = fake.statements.length;
      const rs = records('s', 12, W1);
      await deliver(dest, { window: W1, parts: [rs.slice(0, 5), rs.slice(5)] });
      const st = fake.statements.slice(from).filter((s) => !s.error);
      const sql = st.map((s) => s.sql.replace(/\s+/g, ' '));
      const i = (re: RegExp) => sql.findIndex((s) => re.test(s));
      expect(i(/^CREATE TABLE IF NOT EXISTS BL_TEST\.PUBLIC\.SQL_SMALL \("TIMESTAMP" TIMESTAMP_TZ, "REQUEST_ID" VARCHAR, .*"PARAMS" VARIANT/)).toBeGreaterThanOrEqual(0);
      const stage = i(/^CREATE OR REPLACE TEMPORARY TABLE BL_TEST\.PUBLIC\.SQL_SMALL__STAGE_\w+ \(.*"PARAMS" VARCHAR/);
      const begin = sql.indexOf('BEGIN');
      expect(stage).toBeGreaterThan(0);
      expect(begin).toBeGreaterThan(stage);
      // The binds: one row per record, every value as text, across the array INSERTs.
      const inserts = st.filter((s) => /^INSERT INTO \S+__STAGE_\w+ \(.*\) VALUES \(\?(, \?)*\)$/s.test(s.sql));
      expect(inserts.length).toBeGreaterThan(0);
      const bound = inserts.flatMap((s) => s.binds as unknown[][]);
      expect(bound.map((b) => b[1]).sort()).toEqual(rs.map((r) => r.request_id).sort());
      expect(bound.flat().every((v) => v === null || typeof v === 'string')).toBe(true);
      expect(sql.slice(begin, begin + 5).map((s) => s.split(' ').slice(0, 2).join(' '))).toEqual(['BEGIN', 'DELETE FROM', 'INSERT INTO', 'DELETE FROM', 'COMMIT']);
      expect(sql[begin + 1]).toBe('DELETE FROM BL_TEST.PUBLIC.SQL_SMALL WHERE "TIMESTAMP" >= TO_TIMESTAMP_TZ(?) AND "TIMESTAMP" < TO_TIMESTAMP_TZ(?)');
      expect(st[begin + 1]!.binds).toEqual([new Date(W1.start).toISOString(), new Date(W1.end).toISOString()]);
      expect(sql[begin + 2]).toMatch(/^INSERT INTO BL_TEST\.PUBLIC\.SQL_SMALL \(.*\) SELECT s\."TIMESTAMP", .*COALESCE\(TRY_PARSE_JSON\(s\."PARAMS"\), TO_VARIANT\(s\."PARAMS"\)\).* FROM BL_TEST\.PUBLIC\.SQL_SMALL__STAGE_\w+ s$/);
      // Each request_id once: the window's ids leave every other window, in the same transaction.
      const win = '"TIMESTAMP" >= TO_TIMESTAMP_TZ(?) AND "TIMESTAMP" < TO_TIMESTAMP_TZ(?)';
      expect(sql[begin + 3]).toBe(`DELETE FROM BL_TEST.PUBLIC.SQL_SMALL WHERE "REQUEST_ID" IN (SELECT "REQUEST_ID" FROM BL_TEST.PUBLIC.SQL_SMALL WHERE ${win}) AND NOT (${win})`);
      expect(st[begin + 3]!.binds).toEqual([W1.start, W1.end, W1.start, W1.end].map((ms) => new Date(ms).toISOString()));
      expect(sql.slice(begin + 5).some((s) => /^DROP TABLE IF EXISTS \S+__STAGE_/.test(s))).toBe(true);
      expect(sql.some((s) => /^(PUT|COPY|REMOVE)\b/.test(s))).toBe(false);
      expect(fake.tables.get(`${SF_DB}.${SF_SCHEMA}.SQL_SMALL`)!.rows).toHaveLength(12);
      // The session's logins name the configured database, schema and warehouse.
      expect(fake.logins.at(-1)).toMatchObject({ user: 'loader', database: SF_DB, schema: SF_SCHEMA, warehouse: 'BL_WH' });
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      await dest.close();
    }
  });

  it('windows above insert_max_rows: PUT to the user stage, COPY … MATCH_BY_COLUMN_NAME, REMOVE', async () => {
    const dest = await createSnowflakeDestination({
      account: fake.connectionOptions.account, access_url: fake.connectionOptions.accessUrl, database: SF_DB, schema: SF_SCHEMA, table: 'SQL_BIG',
      warehouse: 'BL_WH', credentials: { username: 'loader', password: SF_PASSWORD }, insert_max_rows: 20,
    }, { log: silentLog, tmpDir: tmp });
    try {
      const from = fake.statements.length;
      const rs = records('b', 45, W1);
      // Watch the user stage while the commit runs: the PUT files are removed at its end.
      const seen = new Map<string, Buffer>();
      const timer = setInterval(() => { for (const [k, v] of fake.stagedFiles) seen.set(k, v); }, 5);
      try {
        await deliver(dest, { window: W1, parts: [rs.slice(0, 20), rs.slice(20, 40), rs.slice(40)] });
      } finally {
        clearInterval(timer);
      }
      const st = fake.statements.slice(from).filter((s) => !s.error);
      const sql = st.map((s) => s.sql.replace(/\s+/g, ' '));
      const puts = sql.filter((s) => s.startsWith('PUT '));
      expect(puts).toHaveLength(3);
      for (const p of puts) expect(p).toMatch(/^PUT file:\/\/\S+\.parquet @~\/bifrost_logs_BL_TEST_PUBLIC_SQL_BIG_\w+\/ AUTO_COMPRESS = FALSE OVERWRITE = TRUE$/);
      const copy = sql.find((s) => s.startsWith('COPY INTO'))!;
      expect(copy).toMatch(/^COPY INTO BL_TEST\.PUBLIC\.SQL_BIG__STAGE_\w+ FROM @~\/bifrost_logs_BL_TEST_PUBLIC_SQL_BIG_\w+\/ FILES = \('[^']+\.parquet', '[^']+\.parquet', '[^']+\.parquet'\) FILE_FORMAT = \(TYPE = PARQUET USE_LOGICAL_TYPE = TRUE\) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE ON_ERROR = ABORT_STATEMENT$/);
      const begin = sql.indexOf('BEGIN');
      expect(sql.indexOf(copy)).toBeLessThan(begin);
      expect(sql.slice(begin, begin + 5).map((s) => s.split(' ')[0])).toEqual(['BEGIN', 'DELETE', 'INSERT', 'DELETE', 'COMMIT']);
      expect(sql.slice(begin).some((s) => /^REMOVE @~\/bifrost_logs_BL_TEST_PUBLIC_SQL_BIG_\w+\/$/.test(s))).toBe(true);
      expect(sql.some((s) => /^INSERT INTO \S+__STAGE_\w+ .*VALUES/.test(s))).toBe(false);
      // The uploaded bytes are the parts: 45 rows, decoded independently.
      const files = [...seen.entries()].filter(([k]) => k.includes('SQL_BIG'));
      expect(files).toHaveLength(3);
      const uploaded = (await Promise.all(files.map(([, b]) => decodePart(b)))).flat();
      expect(uploaded.map((r) => r.request_id).sort()).toEqual(rs.map((r) => r.request_id).sort());
      // Nothing is left in the stage, the table has the window.
      expect([...fake.stagedFiles.keys()]).toEqual([]);
      const rows = snowflakeRowsOf(fake.tables.get(`${SF_DB}.${SF_SCHEMA}.SQL_BIG`)!.rows);
      expect(rows.map((r) => r.request_id)).toEqual(rs.map((r) => r.request_id).sort());
      const one = rows.find((r) => r.request_id === 'b-0001')!;
      expect(one.params).toEqual(rs[1]!.params);
      expect(one.content_summary).toBe(TRICKY);
      expect(one.timestamp).toBe(rs[1]!.timestamp);
      // A failed COPY rolls nothing in, and still removes the staged files.
      fake.failWhen(/^COPY INTO/i, { code: '100038', sqlState: '22018', message: 'Numeric value \'x\' is not recognized' }, 1);
      const err = await deliver(dest, { window: W1, parts: [records('c', 25, W1)] }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(65);
      expect(snowflakeRowsOf(fake.tables.get(`${SF_DB}.${SF_SCHEMA}.SQL_BIG`)!.rows).map((r) => r.request_id)).toEqual(rs.map((r) => r.request_id).sort());
      expect([...fake.stagedFiles.keys()]).toEqual([]);
    } finally {
      await dest.close();
    }
  });

  it('key-pair auth (encrypted PKCS#8 + passphrase) logs in with SNOWFLAKE_JWT; the key never shows', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'key-pass-123' },
    });
    fake.registerPublicKey('loader', publicKey);
    const dest = await createSnowflakeDestination({
      account: fake.connectionOptions.account, access_url: fake.connectionOptions.accessUrl, database: SF_DB, schema: SF_SCHEMA, table: 'KEYPAIR',
      credentials: { username: 'loader', private_key: privateKey, private_key_passphrase: 'key-pass-123' },
    }, { log: silentLog, tmpDir: tmp });
    try {
      const from = fake.statements.length;
      await dest.check();
      expect(fake.logins.at(-1)).toMatchObject({ user: 'loader', authenticator: 'SNOWFLAKE_JWT' });
      // check() exercises the large-window path: a PUT of a probe file to the user stage, then REMOVE.
      const sql = fake.statements.slice(from).map((x) => x.sql);
      expect(sql.some((x) => /^PUT file:\/\/\S+ @~\/bifrost_logs_\w+_check\/ /.test(x))).toBe(true);
      expect(sql.some((x) => /^REMOVE @~\/bifrost_logs_\w+_check\/$/.test(x))).toBe(true);
      expect([...fake.stagedFiles.keys()].filter((k) => k.includes('_check'))).toEqual([]);
      // Without the right to write the stage, check() fails (a run would fail at its first large window).
      fake.withheld.add('stage write');
      try {
        const e = await dest.check().then(() => null, (x: unknown) => x);
        expect(e).toBeInstanceOf(CliError);
        expect(String((e as CliError).message)).toMatch(/could not check snowflake.*Insufficient privileges/s);
      } finally {
        fake.withheld.delete('stage write');
      }
    } finally {
      await dest.close();
    }
    const wrong = await createSnowflakeDestination({
      account: 'x', database: SF_DB, schema: SF_SCHEMA, table: 'KEYPAIR',
      credentials: { username: 'loader', private_key: privateKey, private_key_passphrase: 'nope' },
    }, { log: silentLog, tmpDir: tmp }).then(() => null, (e: unknown) => e);
    expect(wrong).toBeInstanceOf(CliError);
    expect((wrong as CliError).exitCode).toBe(78);
    expect((wrong as CliError).message).not.toContain('PRIVATE KEY');

    // A JWT signed by a key other than the one registered for the user is refused at login.
    const other = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    const refusedBefore = fake.jwtRefusals.length;
    const impostor = await createSnowflakeDestination({
      account: fake.connectionOptions.account, access_url: fake.connectionOptions.accessUrl, database: SF_DB, schema: SF_SCHEMA, table: 'KEYPAIR',
      credentials: { username: 'loader', private_key: other.privateKey },
    }, { log: silentLog, tmpDir: tmp });
    try {
      const e = await impostor.check().then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(CliError);
      expect(String((e as CliError).message)).toMatch(/JWT token is invalid/);
      expect(fake.jwtRefusals.slice(refusedBefore)[0]).toMatch(/signature does not verify with the registered public key/);
    } finally {
      await impostor.close().catch(() => undefined);
    }
  });

  it('check() exercises what a run needs: PUT/REMOVE on the stage, CREATE TABLE on the schema, DELETE and INSERT on the target; each withheld fails it', async () => {
    const dest = await createSnowflakeDestination({
      account: fake.connectionOptions.account, access_url: fake.connectionOptions.accessUrl, database: SF_DB, schema: SF_SCHEMA, table: 'CHECKED',
      warehouse: 'BL_WH', credentials: { username: 'loader', password: SF_PASSWORD },
    }, { log: silentLog, tmpDir: tmp });
    try {
      await deliver(dest, { window: W1, parts: [records('k', 3, W1)] }); // the target exists, as on a second run
      const rowsOf = () => snowflakeRowsOf(fake.tables.get(`${SF_DB}.${SF_SCHEMA}.CHECKED`)!.rows).map((r) => r.request_id);
      const before = rowsOf();
      const from = fake.statements.length;
      await dest.check();
      const sql = fake.statements.slice(from).filter((x) => !x.error).map((x) => x.sql.replace(/\s+/g, ' '));
      const t = `${SF_DB}.${SF_SCHEMA}.CHECKED`;
      const at = (re: RegExp) => sql.findIndex((x) => re.test(x));
      expect(at(/^PUT file:\/\/\S+ @~\/bifrost_logs_\w+_check\/ /)).toBeGreaterThanOrEqual(0);
      expect(at(/^REMOVE @~\/bifrost_logs_\w+_check\/$/)).toBeGreaterThan(at(/^PUT /));
      expect(at(/^CREATE TEMPORARY TABLE \S+\.CHECKED__CHECK_\w+ \(PROBE INTEGER\)$/)).toBeGreaterThan(0);
      const begin = sql.indexOf('BEGIN');
      expect(sql.slice(begin, begin + 4)).toEqual(['BEGIN', `DELETE FROM ${t} WHERE 1 = 0`, `INSERT INTO ${t} SELECT * FROM ${t} WHERE 1 = 0`, 'ROLLBACK']);
      expect(rowsOf()).toEqual(before);
      for (const [priv, on] of [['stage write', /on stage '@~/], ['CREATE TABLE', /on schema 'PUBLIC'/], ['DELETE', /on table 'CHECKED'/], ['INSERT', /on table 'CHECKED'/]] as const) {
        fake.withheld.add(priv);
        const e = await dest.check().then(() => null, (x: unknown) => x).finally(() => fake.withheld.delete(priv));
        expect(e, priv).toBeInstanceOf(CliError);
        expect((e as CliError).exitCode, priv).toBe(78);
        expect(String((e as CliError).message), priv).toMatch(/^could not check snowflake .*Insufficient privileges to operate on/);
        expect(String((e as CliError).message), priv).toMatch(on);
        expect(String((e as CliError).message), priv).not.toContain('\n');
      }
      expect(rowsOf()).toEqual(before);
      expect([...fake.stagedFiles.keys()].filter((k) => k.includes('_check'))).toEqual([]);
    } finally {
      await dest.close();
    }
  });

  it('chooses its load path by the window\'s rows (insert_max_rows, default 10,000)', () => {
    expect(loadPath(10_000)).toBe('insert');
    expect(loadPath(10_001)).toBe('copy');
    expect(loadPath(5, 4)).toBe('copy');
    const t = { database: 'D', schema: 'S', table: 'T' };
    expect(sfTableStage(t, 'r1')).toBe('@~/bifrost_logs_D_S_T_r1/');
    expect(putSql('/tmp/a b/x.parquet', t, 'r1')).toBe("PUT 'file:///tmp/a b/x.parquet' @~/bifrost_logs_D_S_T_r1/ AUTO_COMPRESS = FALSE OVERWRITE = TRUE");
    expect(copySql({ ...t, table: 'T__STAGE_R1' }, t, 'r1', ["o'k.parquet"])).toContain("FILES = ('o''k.parquet')");
    const late = moveStageSql(t, { ...t, table: 'ST' }, tableLayout(SCHEMA, false), { late: true, window: W1 });
    // Bounded by the window: the lookup reads the window's rows only.
    expect(late.text).toMatch(/ WHERE NOT EXISTS \(SELECT 1 FROM D\.S\.T x WHERE x\."REQUEST_ID" = s\."REQUEST_ID" AND x\."TIMESTAMP" >= TO_TIMESTAMP_TZ\(\?\) AND x\."TIMESTAMP" < TO_TIMESTAMP_TZ\(\?\)\)$/);
    expect(late.values).toEqual([new Date(W1.start).toISOString(), new Date(W1.end).toISOString()]);
    const agg = moveStageSql(t, { ...t, table: 'ST' }, tableLayout([{ name: 'provider', type: 'string', nullable: true }], true), { late: false, window: W1 });
    expect(agg.text).toBe('INSERT INTO D.S.T ("PROVIDER", "WINDOW_START", "WINDOW_END") SELECT s."PROVIDER", TO_TIMESTAMP_TZ(?), TO_TIMESTAMP_TZ(?) FROM D.S.ST s');
    expect(agg.values).toEqual([new Date(W1.start).toISOString(), new Date(W1.end).toISOString()]);
  });
});

describe('bigquery destination (@google-cloud/bigquery against the fake BigQuery)', () => {
  let fake: FakeBigQuery;
  let tmp: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'bl-bq-'));
    // Every request must carry the service account's self-signed JWT; every job answers RUNNING once first.
    fake = await startFakeBigQuery({ datasets: [BQ_DATASET], requireAuth: true, runningPolls: 1 });
  });
  afterAll(async () => {
    await fake?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  const make = (table: string, over: Partial<BigQueryConfig> = {}) => createBigQueryDestination({
    project_id: fake.projectId, dataset: BQ_DATASET, table, api_endpoint: fake.apiEndpoint,
    credentials: { service_account_key: JSON.stringify(fake.credentials) }, ...over,
  }, { log: silentLog, tmpDir: tmp });

  it('a table made by NDJSON loads (JSON columns) takes a Parquet load with a malformed JSON cell: the window loads, the text is kept', async () => {
    const first = await make('json_then_parquet', { load_format: 'jsonl' } as Partial<BigQueryConfig>);
    const rs = records('jp', 8, W1);
    try { await deliver(first, { window: W1, parts: [rs] }); } finally { await first.close(); }
    const second = await make('json_then_parquet', { load_format: 'parquet' } as Partial<BigQueryConfig>);
    try {
      const odd = rs.map((r, i) => (i === 2 ? { ...r, params: '{"cut off": [1, 2' } : i === 3 ? { ...r, params: null } : r));
      await deliver(second, { window: W1, parts: [odd] });
      await deliver(second, { window: W1, late: true, parts: [records('jplate', 2, W1).map((r) => ({ ...r, params: 'not json' }))] });
      expect(await second.countWindow!(W1)).toBe(10);
      const sql = fake.jobs.map((j) => String(j.configuration?.query?.query ?? '')).join('\n');
      expect(sql).toContain('SAFE.PARSE_JSON');
      // The late rows' lookup is bounded by the window's time range, so it reads the window's partition only.
      expect(sql).toContain('WHERE NOT EXISTS (SELECT 1 FROM `' + fake.projectId + '.' + BQ_DATASET + '.json_then_parquet` AS x WHERE x.`request_id` = s.`request_id` AND x.`timestamp` >= @window_start AND x.`timestamp` < @window_end)');
    } finally { await second.close(); }
  });

  it('load jobs into a per-run staging table, then one transaction; never streaming inserts', async () => {
    const dest = await make('jobs_ndjson');
    try {
      const jobsFrom = fake.jobs.length;
      const reqFrom = fake.requests.length;
      const rs = records('j', 12, W1);
      await deliver(dest, { window: W1, parts: [rs.slice(0, 5), rs.slice(5)] });
      const jobs = fake.jobs.slice(jobsFrom);
      const loads = jobs.filter((j) => j.configuration?.load);
      expect(loads).toHaveLength(2);
      for (const j of loads) {
        expect(j.configuration.load).toMatchObject({
          sourceFormat: 'NEWLINE_DELIMITED_JSON', writeDisposition: 'WRITE_APPEND', createDisposition: 'CREATE_NEVER',
          destinationTable: { projectId: fake.projectId, datasetId: BQ_DATASET, tableId: expect.stringMatching(/^jobs_ndjson__stage_[0-9a-f]{8}$/) },
        });
        expect(j.configuration.load.schema.fields.find((f: { name: string }) => f.name === 'params').type).toBe('JSON');
        expect(j.jobReference.jobId).toMatch(/^bifrost_logs_load_/);
      }
      const queries = jobs.filter((j) => j.configuration?.query && !j.configuration.dryRun);
      expect(queries).toHaveLength(1);
      const q = queries[0].configuration.query;
      const stage = loads[0].configuration.load.destinationTable.tableId;
      expect(q.query).toBe(commitSql(
        { projectId: fake.projectId, datasetId: BQ_DATASET, tableId: 'jobs_ndjson' }, { projectId: fake.projectId, datasetId: BQ_DATASET, tableId: stage },
        tableLayout(SCHEMA, false), { late: false, insert: true, format: 'jsonl' },
      ));
      expect(q.query.split('\n')).toEqual([
        'BEGIN TRANSACTION;',
        `DELETE FROM \`${fake.projectId}.${BQ_DATASET}.jobs_ndjson\` WHERE \`timestamp\` >= @window_start AND \`timestamp\` < @window_end;`,
        expect.stringMatching(new RegExp(`^INSERT INTO \`${fake.projectId}\\.${BQ_DATASET}\\.jobs_ndjson\` \\(\`timestamp\`, \`request_id\`, .*\\) SELECT s\\.\`timestamp\`, .* FROM \`${fake.projectId}\\.${BQ_DATASET}\\.${stage}\` AS s;$`)),
        // Each request_id once: the window's ids leave every other window, in the same transaction.
        `DELETE FROM \`${fake.projectId}.${BQ_DATASET}.jobs_ndjson\` WHERE \`request_id\` IN (SELECT \`request_id\` FROM \`${fake.projectId}.${BQ_DATASET}.jobs_ndjson\` WHERE \`timestamp\` >= @window_start AND \`timestamp\` < @window_end) AND NOT (\`timestamp\` >= @window_start AND \`timestamp\` < @window_end);`,
        'COMMIT TRANSACTION;',
      ]);
      expect(q.queryParameters).toEqual([
        { name: 'window_start', parameterType: { type: 'TIMESTAMP' }, parameterValue: { value: expect.stringMatching(/^2026-10-01[T ]00:00:00/) } },
        { name: 'window_end', parameterType: { type: 'TIMESTAMP' }, parameterValue: { value: expect.stringMatching(/^2026-10-01[T ]01:00:00/) } },
      ]);
      // The target: created from the schema, partitioned by day on timestamp; the stage is gone.
      const t = fake.tables.get(`${BQ_DATASET}.jobs_ndjson`)!;
      expect(t.timePartitioning).toMatchObject({ type: 'DAY', field: 'timestamp' });
      expect(t.schema.fields.every((f) => f.mode === 'NULLABLE')).toBe(true);
      expect([...fake.tables.keys()].filter((k) => k.includes('__stage_'))).toEqual([]);
      const reqs = fake.requests.slice(reqFrom);
      expect(reqs.some((r) => /insertAll/.test(r.url))).toBe(false);
      expect(reqs.filter((r) => r.method === 'POST' && /\/tables$/.test(r.url.split('?')[0]!))).toHaveLength(2); // the target and the stage
      const stageCreate = reqs.find((r) => r.method === 'DELETE' && r.url.includes('__stage_'));
      expect(stageCreate).toBeDefined();
      expect(reqs.every((r) => /^Bearer /.test(String(r.headers.authorization)))).toBe(true);
    } finally {
      await dest.close();
    }
  });

  it('Parquet parts: JSON fields travel as text into STRING columns', async () => {
    const dest = await make('jobs_parquet', { load_format: 'parquet' });
    try {
      const jobsFrom = fake.jobs.length;
      const upFrom = fake.uploads.length;
      const rs = records('p', 9, W1);
      await deliver(dest, { window: W1, parts: [rs] });
      const load = fake.jobs.slice(jobsFrom).find((j) => j.configuration?.load)!;
      expect(load.configuration.load.sourceFormat).toBe('PARQUET');
      expect(load.configuration.load.schema.fields.find((f: { name: string }) => f.name === 'params').type).toBe(stageType('json', 'parquet'));
      const q = fake.jobs.slice(jobsFrom).find((j) => j.configuration?.query)!.configuration.query.query as string;
      expect(q).toContain('SELECT s.`timestamp`, s.`request_id`');
      expect(q).not.toContain('PARSE_JSON');
      expect(fake.tables.get(`${BQ_DATASET}.jobs_parquet`)!.schema.fields.find((f) => f.name === 'params')!.type).toBe('STRING');
      const uploaded = (await Promise.all(fake.uploads.slice(upFrom).map(decodePart))).flat();
      expect(uploaded.map((r) => r.request_id).sort()).toEqual(rs.map((r) => r.request_id).sort());
      expect(fake.uploads.slice(upFrom)[0]!.subarray(0, 4).toString()).toBe('PAR1');
      const row = bigqueryRowsOf(fake.tables.get(`${BQ_DATASET}.jobs_parquet`)!.rows).find((r) => r.request_id === 'p-0001')!;
      expect(JSON.parse(String(row.params))).toEqual(rs[1]!.params);
      expect(row.timestamp).toBe(rs[1]!.timestamp);
      // A table made by NDJSON loads has a JSON column: Parquet text goes in through PARSE_JSON.
      const later = await make('jobs_ndjson', { load_format: 'parquet' });
      try {
        const from = fake.queries.length;
        await deliver(later, { window: W2, parts: [records('q', 3, W2)] });
        expect(fake.queries.slice(from).find((x) => x.startsWith('BEGIN'))).toContain('PARSE_JSON(s.`params`)');
        expect(fake.tables.get(`${BQ_DATASET}.jobs_ndjson`)!.schema.fields.find((f) => f.name === 'params')!.type).toBe('JSON');
      } finally {
        await later.close();
      }
    } finally {
      await dest.close();
    }
  });

  it('check(): the dataset, a probe staging table made and dropped, dry-run DML; nothing left', async () => {
    const dest = await make('checked');
    try {
      const jobsFrom = fake.jobs.length;
      const reqFrom = fake.requests.length;
      const tablesBefore = [...fake.tables.keys()];
      await dest.check();
      const jobs = fake.jobs.slice(jobsFrom);
      expect(jobs.length).toBeGreaterThan(0);
      expect(jobs.every((j) => j.configuration?.dryRun === true)).toBe(true);
      expect(fake.tables.has(`${BQ_DATASET}.checked`)).toBe(false);
      // The run's staging table, as a run makes it (tables.insert) and drops it (tables.delete).
      const reqs = fake.requests.slice(reqFrom).map((r) => `${r.method} ${r.url.split('?')[0]}`);
      const probeUrl = reqs.find((r) => /^DELETE .*\/tables\/checked__stage_\w+_check$/.test(r));
      expect(probeUrl).toBeDefined();
      expect(reqs).toContain(`POST /bigquery/v2/projects/${fake.projectId}/datasets/${BQ_DATASET}/tables`);
      expect(jobs.map((j) => j.configuration?.query?.query)).toEqual([expect.stringMatching(/^DELETE FROM `[^`]+\.checked__stage_\w+_check` WHERE FALSE$/)]);
      expect([...fake.tables.keys()]).toEqual(tablesBefore);
      // Each permission a run needs, withheld, fails check() with exit 78 and names it.
      for (const perm of ['bigquery.tables.create', 'bigquery.tables.delete', 'bigquery.jobs.create', 'bigquery.tables.updateData'] as const) {
        fake.withheld.add(perm);
        const e = await dest.check().then(() => null, (x: unknown) => x).finally(() => fake.withheld.delete(perm));
        expect(e, perm).toBeInstanceOf(CliError);
        expect((e as CliError).exitCode, perm).toBe(78);
        expect(String((e as CliError).message), perm).toContain(perm);
        const left = [...fake.tables.keys()].filter((k) => !tablesBefore.includes(k));
        if (perm === 'bigquery.tables.delete') {
          // The probe could not be dropped: it expires on its own, within a day, as a run's stage would.
          expect(left, perm).toEqual([expect.stringMatching(/\.checked__stage_\w+_check$/)]);
          expect(Number(fake.tables.get(left[0]!)!.metadata.expirationTime)).toBeLessThanOrEqual(Date.now() + 24 * 3_600_000);
          fake.tables.delete(left[0]!);
        } else expect(left, perm).toEqual([]);
      }
      // On an existing table the dry run is the commit's DML (DELETE), so a role without
      // bigquery.tables.updateData fails check() as it would fail the run.
      fake.tables.set(`${BQ_DATASET}.checked_dml`, { schema: { fields: [{ name: 'request_id', type: 'STRING', mode: 'NULLABLE' }] as never }, rows: [], metadata: { creationTime: String(Date.now()) } });
      const dml = await make('checked_dml');
      try {
        const from = fake.queries.length;
        await dml.check();
        expect(fake.queries.slice(from).some((q) => /^DELETE FROM \S+checked_dml` WHERE FALSE$/.test(q))).toBe(true);
        fake.withheld.add('bigquery.tables.updateData');
        const denied = await dml.check().then(() => null, (e: unknown) => e).finally(() => fake.withheld.delete('bigquery.tables.updateData'));
        expect(denied).toBeInstanceOf(CliError);
        expect(String((denied as CliError).message)).toMatch(/bigquery\.tables\.updateData/);
      } finally {
        await dml.close();
        fake.tables.delete(`${BQ_DATASET}.checked_dml`);
      }
      // On a table of raw records, the commit's own window DELETE and request_id rule are dry-run as well.
      fake.tables.set(`${BQ_DATASET}.checked_raw`, { schema: { fields: [{ name: 'timestamp', type: 'TIMESTAMP', mode: 'NULLABLE' }, { name: 'request_id', type: 'STRING', mode: 'NULLABLE' }] as never }, rows: [], metadata: { creationTime: String(Date.now()) } });
      const raw = await make('checked_raw');
      try {
        const from = fake.jobs.length;
        await raw.check();
        const t = `\`${fake.projectId}.${BQ_DATASET}.checked_raw\``;
        const win = '`timestamp` >= @window_start AND `timestamp` < @window_end';
        expect(fake.jobs.slice(from).map((j) => [j.configuration?.dryRun, j.configuration?.query?.query])).toEqual([
          [true, expect.stringMatching(/^DELETE FROM `[^`]+\.checked_raw__stage_\w+_check` WHERE FALSE$/)],
          [true, `DELETE FROM ${t} WHERE FALSE`],
          [true, `DELETE FROM ${t} WHERE ${win}`],
          [true, `DELETE FROM ${t} WHERE \`request_id\` IN (SELECT \`request_id\` FROM ${t} WHERE ${win}) AND NOT (${win})`],
        ]);
        expect(fake.tables.get(`${BQ_DATASET}.checked_raw`)!.rows).toEqual([]);
      } finally {
        await raw.close();
        fake.tables.delete(`${BQ_DATASET}.checked_raw`);
      }
      const missing = await make('checked', { dataset: 'no_such_dataset' });
      const err = await missing.check().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(78);
      await missing.close();
    } finally {
      await dest.close();
    }
  });

  it('a failed upload request (503) is retried with the same job id: the part is loaded once', async () => {
    const dest = await make('retried');
    try {
      fake.failRequests(1, 503, { match: /^POST .*\/upload\// });
      const rs = records('r', 10, W1);
      await deliver(dest, { window: W1, parts: [rs] });
      expect(bigqueryRowsOf(fake.tables.get(`${BQ_DATASET}.retried`)!.rows).map((r) => r.request_id)).toEqual(rs.map((r) => r.request_id).sort());
    } finally {
      await dest.close();
    }
  });

  it('a job failing for a transient reason (backendError) runs again under a new id; the window lands once', async () => {
    const dest = await make('transient');
    try {
      const jobsFrom = fake.jobs.length;
      fake.failNext('load', { reason: 'backendError', message: 'Backend error. Please try again.' });
      fake.failNext(/^BEGIN TRANSACTION/, { reason: 'backendError', message: 'Backend error. Please try again.' });
      const rs = records('t', 10, W1);
      await deliver(dest, { window: W1, parts: [rs] });
      const jobs = fake.jobs.slice(jobsFrom);
      expect(jobs.filter((j) => j.configuration?.load)).toHaveLength(2);
      expect(jobs.filter((j) => j.configuration?.query && !j.configuration.dryRun)).toHaveLength(2);
      expect(new Set(jobs.map((j) => j.jobReference.jobId)).size).toBe(jobs.length);
      expect(bigqueryRowsOf(fake.tables.get(`${BQ_DATASET}.transient`)!.rows).map((r) => r.request_id)).toEqual(rs.map((r) => r.request_id).sort());
    } finally {
      await dest.close();
    }
  });

  it('a failed load job surfaces its error; the staging table is dropped', async () => {
    const dest = await make('failing');
    try {
      await deliver(dest, { window: W1, parts: [records('f', 5, W1)] });
      fake.failNext('load', { reason: 'invalid', message: 'Error while reading data, error message: JSON parsing error in row starting at position 0' });
      const err = await deliver(dest, { window: W1, parts: [records('g', 5, W1)] }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(65);
      expect((err as CliError).message).toMatch(/^could not load .* into the staging table .*JSON parsing error/);
      await dest.close();
      expect([...fake.tables.keys()].filter((k) => k.includes('__stage_'))).toEqual([]);
      expect(bigqueryRowsOf(fake.tables.get(`${BQ_DATASET}.failing`)!.rows).map((r) => r.request_id)).toEqual(records('f', 5, W1).map((r) => r.request_id));
    } finally {
      await dest.close();
    }
  });
});
