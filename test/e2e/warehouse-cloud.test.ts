import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The fakes first: they switch the SDKs' cloud-metadata probes off before the SDKs load.
import { startFakeSnowflake, type FakeSnowflake } from '../fakes/snowflake-server.js';
import { startFakeBigQuery, type FakeBigQuery } from '../fakes/bigquery-server.js';
import { createFakeServiceAccount } from '../fakes/gcs-server.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { writeSourceDb, type SourceRow } from '../support/source-db.js';

/**
 * `export --dest bigquery` and `--dest snowflake` end to end: the built binary
 * reads a Bifrost SQLite DB and loads one window into the fake warehouse,
 * twice; the table must hold exactly the window's completed rows, counted
 * here independently with better-sqlite3. Secrets (the Snowflake password,
 * the service account's private key) must not show in stdout, stderr or the
 * state dir (ledger, manifests).
 */

let dir: string;
let dbPath: string;
let all: SourceRow[];
let since: number;
let until: number;
let expected: SourceRow[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-e2e-cloud-'));
  dbPath = join(dir, 'logs.db');
  all = writeSourceDb(dbPath, { rows: 900, start: '2026-10-01T00:00:00Z', days: 1 });
  // The window: six hours in the middle of the data, measured from the DB itself.
  const first = Math.min(...all.map((r) => r.ms));
  since = Math.floor(first / 3_600_000) * 3_600_000 + 6 * 3_600_000;
  until = since + 6 * 3_600_000;
  expected = all.filter((r) => r.ms >= since && r.ms < until && r.status !== 'processing');
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Every file under a directory, as text (the ledger is SQLite: its bytes are searched too). */
function filesText(d: string): string {
  if (!existsSync(d)) return '';
  return readdirSync(d, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => readFileSync(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)).toString('latin1'))
    .join('\n');
}

const sorted = (xs: string[]) => [...xs].sort();

it('the source DB has rows in the window, and processing rows to leave out', () => {
  expect(all.every((r) => Number.isFinite(r.ms))).toBe(true);
  expect(expected.length, 'rows in the window').toBeGreaterThan(50);
  expect(all.some((r) => r.ms >= since && r.ms < until && r.status === 'processing')).toBe(true);
});

describe('export --dest snowflake (config file, password from the environment)', () => {
  const PASSWORD = 'e2e-Sf-Pa55word!';
  let fake: FakeSnowflake;
  beforeAll(async () => {
    fake = await startFakeSnowflake({ username: 'exporter', password: PASSWORD });
  });
  afterAll(async () => {
    await fake?.stop();
  });

  it.each([
    ['sf_small', 'SF_SMALL', undefined, 'array-bound INSERT'],
    ['sf_big', 'SF_BIG', 50, 'PUT + COPY'],
  ] as const)('%s: the table holds exactly the window\'s completed rows after each of two runs (%s → %s)', async (name, table, insertMax, path) => {
    const state = join(dir, `state-${name}`);
    const cfgPath = join(dir, `${name}.config.json`);
    writeFileSync(cfgPath, JSON.stringify({
      source: { path: dbPath },
      log_exports: {
        exports: [{
          name,
          destination: {
            type: 'snowflake',
            config: {
              account: fake.connectionOptions.account, access_url: fake.connectionOptions.accessUrl,
              database: 'ANALYTICS', schema: 'BIFROST', table, warehouse: 'LOAD_WH',
              ...(insertMax ? { insert_max_rows: insertMax } : {}),
              credentials: { username: 'exporter', password: 'env.BL_E2E_SNOWFLAKE_PASSWORD' },
            },
          },
          data: { max_rows_per_file: 40, include: ['request_logs', 'response_logs', 'metrics', 'traces', 'error_logs'] },
        }],
      },
    }));
    const args = ['export', '--config', cfgPath, '--name', name, '--state-dir', state, '--since', new Date(since).toISOString(), '--until', new Date(until).toISOString(), '--verbose'];
    const env = { NO_COLOR: '1', BL_E2E_SNOWFLAKE_PASSWORD: PASSWORD };
    const from = fake.statements.length;
    for (let run = 1; run <= 2; run++) {
      const r = await cli(args, { env });
      expect(r.code, `run ${run}: ${r.stderr}`).toBe(0);
      for (const out of [r.stdout, r.stderr]) expect(out).not.toContain(PASSWORD);
      const t = fake.tables.get(`ANALYTICS.BIFROST.${table}`);
      expect(t, `table after run ${run}`).toBeDefined();
      const rows = t!.rows;
      expect(sorted(rows.map((x) => String(x.REQUEST_ID)))).toEqual(sorted(expected.map((x) => x.id)));
      for (const x of rows) {
        const ms = (x.TIMESTAMP as Date).getTime();
        expect(ms >= since && ms < until).toBe(true);
      }
      expect(t!.columns.find((c) => c.name === 'PARAMS')?.type).toBe('VARIANT');
      const cost = rows.reduce((a, x) => a + Number(x.COST_USD ?? 0), 0);
      expect(cost).toBeCloseTo(expected.reduce((a, x) => a + (x.cost ?? 0), 0), 9);
      expect(rows.reduce((a, x) => a + Number(x.INPUT_TOKENS ?? 0), 0)).toBe(expected.reduce((a, x) => a + (x.prompt_tokens ?? 0), 0));
    }
    const sql = fake.statements.slice(from).filter((s) => !s.error).map((s) => s.sql);
    if (path === 'PUT + COPY') {
      expect(sql.filter((s) => /^PUT /.test(s)).length).toBe(2 * Math.ceil(expected.length / 40));
      expect(sql.some((s) => /^COPY INTO ANALYTICS\.BIFROST\.SF_BIG__STAGE_/.test(s))).toBe(true);
      expect([...fake.stagedFiles.keys()]).toEqual([]);
    } else {
      expect(sql.some((s) => /^(PUT|COPY)\b/.test(s))).toBe(false);
      expect(sql.some((s) => /^INSERT INTO ANALYTICS\.BIFROST\.SF_SMALL__STAGE_\w+ \(.*\) VALUES/s.test(s))).toBe(true);
    }
    expect(sql.filter((s) => s === 'COMMIT')).toHaveLength(2);
    expect(filesText(state)).not.toContain(PASSWORD);
    // check reaches the table without leaving anything behind.
    const c = await cli(['check', name, '--config', cfgPath, '--state-dir', state], { env });
    expect(c.code, c.stderr + c.stdout).toBe(0);
    for (const out of [c.stdout, c.stderr]) expect(out).not.toContain(PASSWORD);
    expect([...fake.tables.keys()].filter((k) => /__(STAGE|CHECK)_/.test(k))).toEqual([]);
  }, 180_000);

  it('check with one privilege withheld (stage write, CREATE TABLE, DELETE, INSERT): exit 78, one FAIL line naming it', async () => {
    const cfgPath = join(dir, 'sf-check.config.json');
    writeFileSync(cfgPath, JSON.stringify({
      source: { path: dbPath },
      log_exports: { exports: [{ name: 'sf_check', destination: { type: 'snowflake', config: {
        account: fake.connectionOptions.account, access_url: fake.connectionOptions.accessUrl, database: 'ANALYTICS', schema: 'BIFROST', table: 'SF_CHECK',
        warehouse: 'LOAD_WH', credentials: { username: 'exporter', password: 'env.BL_E2E_SNOWFLAKE_PASSWORD' },
      } } }] },
    }));
    const state = join(dir, 'state-sf-check');
    const env = { NO_COLOR: '1', BL_E2E_SNOWFLAKE_PASSWORD: PASSWORD };
    // A first run makes the target, so check proves the commit's DELETE and INSERT on it too.
    const r = await cli(['export', '--config', cfgPath, '--name', 'sf_check', '--state-dir', state, '--since', new Date(since).toISOString(), '--until', new Date(until).toISOString()], { env });
    expect(r.code, r.stderr).toBe(0);
    const ok = await cli(['check', 'sf_check', '--config', cfgPath, '--state-dir', state], { env });
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    for (const [priv, on] of [['stage write', "stage '@~/"], ['CREATE TABLE', "schema 'BIFROST'"], ['DELETE', "table 'SF_CHECK'"], ['INSERT', "table 'SF_CHECK'"]] as const) {
      fake.withheld.add(priv);
      try {
        const c = await cli(['check', 'sf_check', '--config', cfgPath, '--state-dir', state], { env });
        expect(c.code, `${priv}: ${c.stderr}${c.stdout}`).toBe(78);
        const fails = c.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
        expect(fails, priv).toHaveLength(1);
        expect(fails[0], priv).toMatch(/^FAIL destination sf_check: could not check snowflake .*: SQL access control error: Insufficient privileges to operate on /);
        expect(fails[0], priv).toContain(on);
        expect(c.stderr.split('\n').filter((l) => l.startsWith('bifrost-logs:')), priv).toEqual(['bifrost-logs: could not pass every check: 1 check(s) failed']);
        expect(c.stdout + c.stderr).not.toContain(PASSWORD);
      } finally {
        fake.withheld.delete(priv);
      }
    }
    expect([...fake.tables.keys()].filter((k) => /__(STAGE|CHECK)_/.test(k))).toEqual([]);
  }, 180_000);

  it('a wrong password: exit 78, one line on stderr, the password never shown', async () => {
    const cfgPath = join(dir, 'sf-wrong.config.json');
    writeFileSync(cfgPath, JSON.stringify({
      source: { path: dbPath },
      log_exports: { exports: [{ name: 'sf_wrong', destination: { type: 'snowflake', config: {
        account: fake.connectionOptions.account, access_url: fake.connectionOptions.accessUrl,
        database: 'ANALYTICS', schema: 'BIFROST', table: 'SF_WRONG', credentials: { username: 'exporter', password: 'env.BL_E2E_SNOWFLAKE_PASSWORD' },
      } } }] },
    }));
    const wrong = 'Not-The-Right-0ne!';
    const r = await cli(['export', '--config', cfgPath, '--name', 'sf_wrong', '--state-dir', join(dir, 'state-wrong'), '--since', new Date(since).toISOString(), '--until', new Date(until).toISOString()], { env: { NO_COLOR: '1', BL_E2E_SNOWFLAKE_PASSWORD: wrong } });
    expect(r.code, r.stderr).toBe(78);
    expect(r.stdout + r.stderr).not.toContain(wrong);
    expect(r.stderr).toMatch(/^bifrost-logs: could not .*snowflake.*Incorrect username or password/m);
    expect(fake.tables.has('ANALYTICS.BIFROST.SF_WRONG')).toBe(false);
  }, 120_000);
});

describe('export --dest bigquery', () => {
  const args = (fake: FakeBigQuery, table: string) => ['export', '--db', dbPath, '--dest', 'bigquery', '--project-id', fake.projectId, '--dataset', 'logs',
    '--table', table, '--api-endpoint', fake.apiEndpoint, '--since', new Date(since).toISOString(), '--until', new Date(until).toISOString(),
    '--include', 'request_logs,response_logs,metrics,traces,error_logs'];
  /** No application-default credentials anywhere: the SDK then sends the requests unauthenticated. */
  const noAdc = () => ({ NO_COLOR: '1', HOME: join(dir, 'home'), GOOGLE_APPLICATION_CREDENTIALS: undefined, METADATA_SERVER_DETECTION: 'none', CLOUDSDK_CONFIG: join(dir, 'gcloud') });

  const expectWindow = (fake: FakeBigQuery, table: string, run: number) => {
    const t = fake.tables.get(`logs.${table}`);
    expect(t, `table after run ${run}`).toBeDefined();
    const rows = t!.rows;
    expect(sorted(rows.map((x) => String(x.request_id)))).toEqual(sorted(expected.map((x) => x.id)));
    for (const x of rows) {
      const ms = Date.parse(String(x.timestamp));
      expect(ms >= since && ms < until).toBe(true);
    }
    expect(rows.reduce((a, x) => a + Number(x.cost_usd ?? 0), 0)).toBeCloseTo(expected.reduce((a, x) => a + (x.cost ?? 0), 0), 9);
    expect(rows.reduce((a, x) => a + Number(x.input_tokens ?? 0), 0)).toBe(expected.reduce((a, x) => a + (x.prompt_tokens ?? 0), 0));
    expect([...fake.tables.keys()].filter((k) => k.includes('__stage_'))).toEqual([]);
  };

  it('flags only: the table holds exactly the window\'s completed rows after each of two runs', async () => {
    const fake = await startFakeBigQuery({ datasets: ['logs'] });
    try {
      // Application-default credentials (GOOGLE_APPLICATION_CREDENTIALS), as a machine with gcloud set up has them.
      const adc = join(dir, 'adc-key.json');
      writeFileSync(adc, JSON.stringify(fake.credentials));
      for (let run = 1; run <= 2; run++) {
        const r = await cli([...args(fake, 'requests'), '--state-dir', join(dir, 'state-bq-flags')], { env: { ...noAdc(), GOOGLE_APPLICATION_CREDENTIALS: adc } });
        expect(r.code, `run ${run}: ${r.stderr}`).toBe(0);
        expect(r.stderr).not.toMatch(/MetadataLookupWarning|NodeVersionSupportWarning|DeprecationWarning|ExperimentalWarning/);
        expectWindow(fake, 'requests', run);
      }
      const t = fake.tables.get('logs.requests')!;
      expect(t.timePartitioning).toMatchObject({ type: 'DAY', field: 'timestamp' });
      expect(Object.fromEntries(t.schema.fields.map((f) => [f.name, f.type]))).toMatchObject({ timestamp: 'TIMESTAMP', request_id: 'STRING', status_code: 'INTEGER', cost_usd: 'FLOAT', stream: 'BOOLEAN', params: 'JSON', messages: 'JSON', metadata: 'JSON' });
      const loads = fake.jobs.filter((j) => j.configuration?.load);
      expect(loads.length).toBeGreaterThanOrEqual(2);
      expect(loads.every((j) => j.configuration.load.sourceFormat === 'NEWLINE_DELIMITED_JSON' && j.configuration.load.writeDisposition === 'WRITE_APPEND')).toBe(true);
      // The uploads are the window's rows, once per run.
      const uploaded = fake.uploads.flatMap((b) => b.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).request_id as string));
      expect(uploaded).toHaveLength(2 * expected.length);
      const commits = fake.queries.filter((q) => q.startsWith('BEGIN TRANSACTION;'));
      expect(commits).toHaveLength(2);
    } finally {
      await fake.stop();
    }
  }, 180_000);

  it('config file with a service-account key (Parquet loads): every request signed, the key never shown', async () => {
    const fake = await startFakeBigQuery({ datasets: ['logs'], requireAuth: true });
    try {
      const keyPath = join(dir, 'sa-key.json');
      writeFileSync(keyPath, JSON.stringify(fake.credentials));
      const cfgPath = join(dir, 'bq.config.json');
      writeFileSync(cfgPath, JSON.stringify({
        source: { path: dbPath },
        log_exports: { exports: [{
          name: 'bq_keyed',
          destination: { type: 'bigquery', config: {
            project_id: fake.projectId, dataset: 'logs', table: 'keyed', api_endpoint: fake.apiEndpoint, load_format: 'parquet',
            credentials: { service_account_key: 'env.BL_E2E_BQ_KEY' },
          } },
          data: { max_rows_per_file: 60 },
        }] },
      }));
      const state = join(dir, 'state-bq-key');
      const secretLine = fake.credentials.private_key.split('\n')[1]!;
      const env = { ...noAdc(), BL_E2E_BQ_KEY: JSON.stringify(fake.credentials) };
      for (let run = 1; run <= 2; run++) {
        const r = await cli(['export', '--config', cfgPath, '--name', 'bq_keyed', '--state-dir', state, '--since', new Date(since).toISOString(), '--until', new Date(until).toISOString(), '--verbose'], { env });
        expect(r.code, `run ${run}: ${r.stderr}`).toBe(0);
        expect(r.stdout + r.stderr).not.toContain(secretLine);
        expectWindow(fake, 'keyed', run);
      }
      expect(fake.jobs.filter((j) => j.configuration?.load).every((j) => j.configuration.load.sourceFormat === 'PARQUET')).toBe(true);
      expect(fake.requests.every((q) => /^Bearer /.test(String(q.headers.authorization)))).toBe(true);
      expect(filesText(state)).not.toContain(secretLine);
      // The key as a file path works the same, and check leaves nothing behind.
      writeFileSync(cfgPath, readFileSync(cfgPath, 'utf8').replace('"env.BL_E2E_BQ_KEY"', JSON.stringify(keyPath)));
      const c = await cli(['check', 'bq_keyed', '--config', cfgPath, '--state-dir', state], { env: noAdc() });
      expect(c.code, c.stderr + c.stdout).toBe(0);
      expect(c.stdout + c.stderr).not.toContain(secretLine);
      expect([...fake.tables.keys()].sort()).toEqual(['logs.keyed']);
      // A key the server does not know: exit 78, one line, no key material.
      const other = createFakeServiceAccount(fake.projectId, 'https://oauth2.googleapis.com/token').key;
      writeFileSync(cfgPath, readFileSync(cfgPath, 'utf8').replace(JSON.stringify(keyPath), '"env.BL_E2E_BQ_KEY"'));
      const bad = await cli(['export', '--config', cfgPath, '--name', 'bq_keyed', '--state-dir', state, '--since', new Date(since).toISOString(), '--until', new Date(until).toISOString()], {
        env: { ...noAdc(), BL_E2E_BQ_KEY: JSON.stringify(other) },
      });
      expect(bad.code, bad.stderr).toBe(78);
      expect(bad.stderr.trim().split('\n').filter((l) => l.startsWith('bifrost-logs:'))).toHaveLength(1);
      expect(bad.stdout + bad.stderr).not.toContain(other.private_key.split('\n')[1]!);
      expect(bad.stdout + bad.stderr).not.toContain('PRIVATE KEY');
    } finally {
      await fake.stop();
    }
  }, 180_000);

  it('check with one permission withheld (tables.create, tables.delete, jobs.create, tables.updateData): exit 78, one FAIL line naming it', async () => {
    const fake = await startFakeBigQuery({ datasets: ['logs'] });
    try {
      // Application-default credentials (the fake's key), as a machine with gcloud set up has them.
      const adc = join(dir, 'adc-check-key.json');
      writeFileSync(adc, JSON.stringify(fake.credentials));
      const withAdc = () => ({ ...noAdc(), GOOGLE_APPLICATION_CREDENTIALS: adc });
      const cfgPath = join(dir, 'bq-check.config.json');
      writeFileSync(cfgPath, JSON.stringify({
        source: { path: dbPath },
        log_exports: { exports: [{ name: 'bq_check', destination: { type: 'bigquery', config: { project_id: fake.projectId, dataset: 'logs', table: 'checked', api_endpoint: fake.apiEndpoint } } }] },
      }));
      const state = join(dir, 'state-bq-check');
      // A first run makes the target, so check dry-runs the commit's DML on it too.
      const r = await cli(['export', '--config', cfgPath, '--name', 'bq_check', '--state-dir', state, '--since', new Date(since).toISOString(), '--until', new Date(until).toISOString()], { env: withAdc() });
      expect(r.code, r.stderr).toBe(0);
      const ok = await cli(['check', 'bq_check', '--config', cfgPath, '--state-dir', state], { env: withAdc() });
      expect(ok.code, ok.stderr + ok.stdout).toBe(0);
      const before = [...fake.tables.keys()].sort();
      expect(before).toEqual(['logs.checked']);
      for (const perm of ['bigquery.tables.create', 'bigquery.tables.delete', 'bigquery.jobs.create', 'bigquery.tables.updateData'] as const) {
        fake.withheld.add(perm);
        try {
          const c = await cli(['check', 'bq_check', '--config', cfgPath, '--state-dir', state], { env: withAdc() });
          expect(c.code, `${perm}: ${c.stderr}${c.stdout}`).toBe(78);
          const fails = c.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
          expect(fails, perm).toHaveLength(1);
          expect(fails[0], perm).toMatch(/^FAIL destination bq_check: could not (create a staging table|drop a staging table|dry-run a query) \(/);
          expect(fails[0], perm).toContain(perm);
          expect(c.stderr.split('\n').filter((l) => l.startsWith('bifrost-logs:')), perm).toEqual(['bifrost-logs: could not pass every check: 1 check(s) failed']);
        } finally {
          fake.withheld.delete(perm);
        }
        // Without tables.delete the probe stays behind until it expires (within a day), like a run's stage.
        for (const k of [...fake.tables.keys()]) if (!before.includes(k) && perm === 'bigquery.tables.delete') fake.tables.delete(k);
        expect([...fake.tables.keys()].sort(), perm).toEqual(before);
      }
    } finally {
      await fake.stop();
    }
  }, 180_000);
});
