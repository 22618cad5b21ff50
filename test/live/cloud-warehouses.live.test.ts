import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The fakes first: they switch the SDKs' cloud-metadata probes off before the SDKs load.
import '../fakes/snowflake-server.js';
import '../fakes/bigquery-server.js';
import { afterAll, beforeAll, describe } from 'vitest';
import { createSnowflakeDestination } from '../../src/destination/snowflake/index.js';
import { createBigQueryDestination, normalizeBqType } from '../../src/destination/bigquery/index.js';
import '../fakes/gcs-server.js';
import type { SnowflakeConfig } from '../../src/destination/snowflake/schema.js';
import type { BigQueryConfig } from '../../src/destination/bigquery/schema.js';

import { silentLog, contract, SF_TYPES, snowflakeRowsOf, BQ_TYPES, bigqueryRowsOf, type Harness } from '../contract/warehouse-contract.js';

/**
 * The warehouse contract against real accounts: `npm run test:live`, never part of `npm test`.
 * A missing variable fails the suite and says which one; nothing is skipped.
 */

// ---------------------------------------------------------------------------------------------------
// Live accounts (opt-in)

/**
 * WAREHOUSE_LIVE=1 runs the contract body against real accounts too:
 *   Snowflake: SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_PASSWORD (or SNOWFLAKE_PRIVATE_KEY_PATH
 *              [+ SNOWFLAKE_PRIVATE_KEY_PASSPHRASE]), SNOWFLAKE_DATABASE, SNOWFLAKE_SCHEMA,
 *              SNOWFLAKE_WAREHOUSE [, SNOWFLAKE_ROLE]
 *   BigQuery:  BIGQUERY_PROJECT_ID, BIGQUERY_DATASET [, BIGQUERY_LOCATION], and credentials from
 *              BIGQUERY_SERVICE_ACCOUNT_KEY (key JSON or its path) or Google ADC (GOOGLE_APPLICATION_CREDENTIALS)
 * The tables it creates (bl_contract_*) are dropped at the end.
 */
const LIVE = process.env.WAREHOUSE_LIVE === '1';
const env = process.env;
const LIVE_SNOWFLAKE = LIVE && !!(env.SNOWFLAKE_ACCOUNT && env.SNOWFLAKE_USER && (env.SNOWFLAKE_PASSWORD || env.SNOWFLAKE_PRIVATE_KEY_PATH) && env.SNOWFLAKE_DATABASE && env.SNOWFLAKE_SCHEMA && env.SNOWFLAKE_WAREHOUSE);
const LIVE_BIGQUERY = LIVE && !!(env.BIGQUERY_PROJECT_ID && env.BIGQUERY_DATASET);

function liveSnowflakeHarness(tmp: () => string): Harness {
  const base = (): SnowflakeConfig => ({
    account: env.SNOWFLAKE_ACCOUNT!, database: env.SNOWFLAKE_DATABASE!, schema: env.SNOWFLAKE_SCHEMA!, table: 'X',
    warehouse: env.SNOWFLAKE_WAREHOUSE, ...(env.SNOWFLAKE_ROLE ? { role: env.SNOWFLAKE_ROLE } : {}), insert_max_rows: 30,
    credentials: {
      username: env.SNOWFLAKE_USER!,
      ...(env.SNOWFLAKE_PASSWORD ? { password: env.SNOWFLAKE_PASSWORD } : { private_key_path: env.SNOWFLAKE_PRIVATE_KEY_PATH, private_key_passphrase: env.SNOWFLAKE_PRIVATE_KEY_PASSPHRASE }),
    },
  });
  // The harness reads through a destination's own session helpers would be circular: use the SDK directly.
  let conn: import('snowflake-sdk').Connection | null = null;
  const q = async (sqlText: string, binds: (string | null)[] = []): Promise<Record<string, unknown>[]> => {
    const sdk = ((await import('snowflake-sdk')) as unknown as { default: typeof import('snowflake-sdk') }).default;
    if (!conn) {
      const { connectionOptions, loadPrivateKey } = await import('../../src/destination/snowflake/index.js');
      const c = sdk.createConnection(connectionOptions(base(), await loadPrivateKey(base().credentials)));
      await new Promise<void>((res, rej) => c.connect((e) => (e ? rej(e) : res())));
      conn = c;
    }
    return new Promise((res, rej) => conn!.execute({ sqlText, binds, complete: (e, _s, rows) => (e ? rej(e) : res((rows ?? []) as Record<string, unknown>[])) }));
  };
  const fq = (t: string) => `${env.SNOWFLAKE_DATABASE}.${env.SNOWFLAKE_SCHEMA}.${t}`;
  const columns = async (t: string) => q(`SELECT COLUMN_NAME, DATA_TYPE FROM ${env.SNOWFLAKE_DATABASE}.INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, [env.SNOWFLAKE_SCHEMA!.toUpperCase(), t.toUpperCase()]);
  return {
    name: 'snowflake',
    expectedTypes: SF_TYPES,
    make: (t, over) => createSnowflakeDestination({ ...base(), table: t, ...over } as SnowflakeConfig, { log: silentLog, tmpDir: tmp() }),
    async rows(t) {
      const cols = await columns(t);
      if (!cols.length) return [];
      const sel = cols.map((c) => {
        const n = `"${String(c.COLUMN_NAME)}"`;
        const type = String(c.DATA_TYPE);
        if (type.startsWith('TIMESTAMP')) return `TO_VARCHAR(CONVERT_TIMEZONE('UTC', ${n}), 'YYYY-MM-DD"T"HH24:MI:SS.FF3"Z"') AS ${n}`;
        if (type === 'VARIANT') return `TO_JSON(${n}) AS ${n}`;
        return n;
      });
      return snowflakeRowsOf((await q(`SELECT ${sel.join(', ')} FROM ${fq(t)}`)).map((r) => {
        for (const c of cols) if (String(c.DATA_TYPE) === 'VARIANT' && typeof r[String(c.COLUMN_NAME)] === 'string') r[String(c.COLUMN_NAME)] = JSON.parse(String(r[String(c.COLUMN_NAME)]));
        return r;
      }));
    },
    types: async (t) => Object.fromEntries((await columns(t)).map((c) => [String(c.COLUMN_NAME).toLowerCase(), String(c.DATA_TYPE)])),
    leftovers: async () => (await q(`SELECT TABLE_NAME FROM ${env.SNOWFLAKE_DATABASE}.INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE 'BL\\\\_CONTRACT\\\\_%\\\\_\\\\_%'`, [env.SNOWFLAKE_SCHEMA!.toUpperCase()])).map((r) => String(r.TABLE_NAME)),
    async cleanup(tables) {
      for (const t of tables) await q(`DROP TABLE IF EXISTS ${fq(t)}`).catch(() => {});
      await new Promise<void>((r) => (conn ? conn.destroy(() => r()) : r()));
    },
  };
}

describe('snowflake LIVE account (opt-in: WAREHOUSE_LIVE=1 + SNOWFLAKE_* variables)', () => {
  let tmp: string;
  beforeAll(() => {
    if (!LIVE_SNOWFLAKE) throw new Error('the live Snowflake contract needs WAREHOUSE_LIVE=1 and SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH, SNOWFLAKE_DATABASE, SNOWFLAKE_SCHEMA, SNOWFLAKE_WAREHOUSE');
    tmp = mkdtempSync(join(tmpdir(), 'bl-sf-live-'));
  });
  afterAll(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });
  describe('contract', () => contract(liveSnowflakeHarness(() => tmp)));
});

function liveBigQueryHarness(tmp: () => string): Harness {
  const base = (): BigQueryConfig => ({
    project_id: env.BIGQUERY_PROJECT_ID!, dataset: env.BIGQUERY_DATASET!, table: 'x',
    ...(env.BIGQUERY_LOCATION ? { location: env.BIGQUERY_LOCATION } : {}),
    ...(env.BIGQUERY_SERVICE_ACCOUNT_KEY ? { credentials: { service_account_key: env.BIGQUERY_SERVICE_ACCOUNT_KEY } } : {}),
  });
  let client: import('@google-cloud/bigquery').BigQuery | null = null;
  const bq = async () => {
    if (!client) {
      const m = await import('../../src/destination/bigquery/index.js');
      const b = base();
      client = m.createBigQueryClient(b, b.credentials ? await m.readServiceAccountKey(b.credentials.service_account_key) : undefined);
    }
    return client;
  };
  const tableOf = async (t: string) => (await bq()).dataset(env.BIGQUERY_DATASET!).table(t);
  const fields = async (t: string) => {
    try {
      const [m] = await (await tableOf(t)).getMetadata();
      return (m.schema?.fields ?? []) as { name: string; type: string }[];
    } catch (err) {
      if ((err as { code?: number }).code === 404) return [];
      throw err;
    }
  };
  return {
    name: 'bigquery',
    expectedTypes: BQ_TYPES,
    make: (t, over) => createBigQueryDestination({ ...base(), table: t, ...over } as BigQueryConfig, { log: silentLog, tmpDir: tmp() }),
    async rows(t) {
      if (!(await fields(t)).length) return [];
      const [rows] = await (await bq()).query({ query: `SELECT TO_JSON_STRING(t) AS j FROM \`${env.BIGQUERY_PROJECT_ID}.${env.BIGQUERY_DATASET}.${t}\` AS t`, ...(env.BIGQUERY_LOCATION ? { location: env.BIGQUERY_LOCATION } : {}) });
      return bigqueryRowsOf((rows as { j: string }[]).map((r) => JSON.parse(r.j) as Record<string, unknown>));
    },
    types: async (t) => Object.fromEntries((await fields(t)).map((f) => [f.name, normalizeBqType(f.type)])),
    async leftovers() {
      const [tables] = await (await bq()).dataset(env.BIGQUERY_DATASET!).getTables();
      return tables.map((x) => String(x.id)).filter((id) => id.startsWith('bl_contract_') && id.includes('__stage_'));
    },
    spoil: (r) => ({ ...r, input_tokens: 'not a number' }),
    async cleanup(tables) {
      for (const t of tables) await (await tableOf(t)).delete().catch(() => {});
    },
  };
}

describe('bigquery LIVE project (opt-in: WAREHOUSE_LIVE=1 + BIGQUERY_* variables)', () => {
  let tmp: string;
  beforeAll(() => {
    if (!LIVE_BIGQUERY) throw new Error('the live BigQuery contract needs WAREHOUSE_LIVE=1, BIGQUERY_PROJECT_ID, BIGQUERY_DATASET and Google credentials');
    tmp = mkdtempSync(join(tmpdir(), 'bl-bq-live-'));
  });
  afterAll(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });
  describe('contract', () => contract(liveBigQueryHarness(() => tmp)));
});
