import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The fakes first: they switch the SDKs' cloud-metadata probes off before the SDKs load.
import { startFakeSnowflake, type FakeSnowflake } from '../fakes/snowflake-server.js';
import { startFakeBigQuery, type FakeBigQuery } from '../fakes/bigquery-server.js';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { startPostgres } from '../support/services.js';
import { BQ_DATASET, SF_PASSWORD, contract, fakeBigQueryHarness, fakeSnowflakeHarness, silentLog } from './warehouse-contract.js';
import { sqlHarness } from './sql-harness.js';

/**
 * The one warehouse contract (warehouse-contract.ts) over all four
 * warehouses: PostgreSQL and Redshift's PostgreSQL-wire path on an embedded
 * PostgreSQL, BigQuery (NDJSON and Parquet loads) and Snowflake through
 * their real SDKs against the local protocol servers.
 */

let tmp: string;
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'bl-wh-')); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

describe('PostgreSQL-wire warehouses (embedded PostgreSQL)', () => {
  let server: Awaited<ReturnType<typeof startPostgres>>;
  beforeAll(async () => { server = await startPostgres(); }, 180_000);
  afterAll(async () => { await server?.stop(); }, 60_000);

  describe.each(['postgres', 'redshift'] as const)('%s destination', (kind) => {
    const db: { url: string; admin: pg.Client } = { url: '', admin: null as unknown as pg.Client };
    beforeAll(async () => {
      db.url = await server.createDatabase(`wh_${kind}`);
      db.admin = new pg.Client({ connectionString: db.url });
      db.admin.on('error', () => {});
      await db.admin.connect();
    }, 60_000);
    afterAll(async () => { await db.admin?.end(); });
    contract(sqlHarness(kind, () => db, () => ({ log: silentLog, tmpDir: tmp })));
  });
});

describe('snowflake destination (snowflake-sdk against the fake Snowflake)', () => {
  let fake: FakeSnowflake;
  beforeAll(async () => { fake = await startFakeSnowflake({ username: 'loader', password: SF_PASSWORD }); });
  afterAll(async () => { await fake?.stop(); });
  contract(fakeSnowflakeHarness(() => fake, () => tmp));
});

describe('bigquery destination (@google-cloud/bigquery against the fake BigQuery)', () => {
  let fake: FakeBigQuery;
  // Every request must carry the service account's self-signed JWT; every job answers RUNNING once first.
  beforeAll(async () => { fake = await startFakeBigQuery({ datasets: [BQ_DATASET], requireAuth: true, runningPolls: 1 }); });
  afterAll(async () => { await fake?.stop(); });
  describe('NDJSON loads', () => contract(fakeBigQueryHarness(() => fake, () => tmp, 'jsonl')));
  describe('Parquet loads', () => contract(fakeBigQueryHarness(() => fake, () => tmp, 'parquet')));
});
