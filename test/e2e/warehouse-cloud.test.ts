import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
// The fakes first: they switch the SDKs' cloud-metadata probes off before the SDKs load.
import { startFakeSnowflake, type FakeSnowflake } from '../fakes/snowflake-server.js';
import { startFakeBigQuery, type FakeBigQuery } from '../fakes/bigquery-server.js';
import { createFakeServiceAccount } from '../fakes/gcs-server.js';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, ROOT } from '../support/cli.js';

/**
 * `export --dest bigquery` and `--dest snowflake` end to end: the built binary
 * reads a Bifrost SQLite DB and loads one window into the fake warehouse,
 * twice; the table must hold exactly the window's completed rows, counted
 * here independently with better-sqlite3. Secrets (the Snowflake password,
 * the service account's private key) must not show in stdout, stderr or the
 * state dir (ledger, manifests).
 */

const CORE_COLUMNS = [
  'id', 'timestamp', 'object_type', 'provider', 'model', 'input_history', 'output_message', 'embedding_output',
  'params', 'tools', 'tool_calls', 'speech_input', 'transcription_input', 'speech_output', 'transcription_output',
  'latency', 'token_usage', 'status', 'error_details', 'stream', 'content_summary', 'prompt_tokens',
  'completion_tokens', 'total_tokens', 'created_at',
];

/** Bifrost's TEXT form: `2026-10-01 00:00:01.5+00:00`. */
function storeTs(ms: number): string {
  const iso = new Date(ms).toISOString();
  const frac = iso.slice(20, 23).replace(/0+$/, '');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? `.${frac}` : ''}+00:00`;
}

/** A small Bifrost-shaped DB, for when the shared generator is not there. */
function writeOwnSqlite(path: string, rows: number): void {
  const db = new Database(path);
  db.exec(`CREATE TABLE logs (${[...CORE_COLUMNS.map((c) => `"${c}" ${['latency', 'prompt_tokens', 'completion_tokens', 'total_tokens'].includes(c) ? 'INTEGER' : c === 'stream' ? 'NUMERIC' : 'TEXT'}`), '"cost" REAL', '"number_of_retries" INTEGER'].join(', ')}, PRIMARY KEY ("id"))`);
  db.exec('CREATE INDEX idx_logs_timestamp ON logs ("timestamp")');
  const ins = db.prepare(`INSERT INTO logs ("id", "timestamp", "object_type", "provider", "model", "params", "latency", "token_usage", "status", "error_details", "stream", "content_summary", "prompt_tokens", "completion_tokens", "total_tokens", "created_at", "cost", "number_of_retries")
    VALUES (@id, @timestamp, @object_type, @provider, @model, @params, @latency, @token_usage, @status, @error_details, @stream, @content_summary, @prompt_tokens, @completion_tokens, @total_tokens, @created_at, @cost, 0)`);
  const start = Date.UTC(2026, 9, 1, 0, 0, 0);
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  db.transaction(() => {
    for (let i = 0; i < rows; i++) {
      const ms = start + Math.floor(rnd() * 24 * 3_600_000);
      const status = i % 17 === 0 ? 'processing' : i % 9 === 0 ? 'error' : 'success';
      const p = Math.floor(rnd() * 2000);
      const c = Math.floor(rnd() * 500);
      ins.run({
        id: `req-${i.toString(16).padStart(6, '0')}`, timestamp: storeTs(ms), object_type: i % 4 ? 'chat_completion' : 'embedding',
        provider: ['openai', 'anthropic', 'bedrock'][i % 3], model: 'm-1', params: JSON.stringify({ temperature: 0.2, note: 'q"uote \\ back' }),
        latency: 50 + Math.floor(rnd() * 900), token_usage: JSON.stringify({ prompt_tokens: p, completion_tokens: c, total_tokens: p + c }),
        status, error_details: status === 'error' ? JSON.stringify({ status_code: 429, error: { type: 'rate_limit', message: 'slow down' } }) : null,
        stream: i % 2, content_summary: i % 5 ? `hello ${i}` : null, prompt_tokens: p, completion_tokens: c, total_tokens: p + c,
        created_at: storeTs(ms), cost: status === 'success' ? Math.round(rnd() * 1e6) / 1e8 : null,
      });
    }
  })();
  db.close();
}

async function writeSourceDb(path: string): Promise<string> {
  const file = join(ROOT, 'fixtures/generator.mjs');
  if (existsSync(file)) {
    const gen = (await import(pathToFileURL(file).href)) as { writeSqlite?: (p: string, o: Record<string, unknown>) => unknown };
    if (typeof gen.writeSqlite === 'function') {
      await gen.writeSqlite(path, { rows: 900, seed: 42, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 1 });
      return 'fixtures generator';
    }
  }
  writeOwnSqlite(path, 900);
  return 'built in the test';
}

/** Store timestamps to epoch ms, independently of the CLI's parser (the forms Bifrost writes). */
function tsMs(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
  if (!m) return NaN;
  const [, d, t, frac, zone] = m;
  let ms = 0;
  if (frac) ms = zone === 'Z' && text.charAt(10) === 'T' ? Math.min(999, Number.parseInt(frac, 10)) : Math.floor(Number(`0.${frac}`) * 1000 + 1e-6);
  const z = !zone || zone === 'Z' ? 'Z' : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
  return Date.parse(`${d}T${t}${z}`) + ms;
}

interface SourceRow { id: string; status: string; ms: number; cost: number | null; prompt_tokens: number | null }

let dir: string;
let dbPath: string;
let origin: string;
let all: SourceRow[];
let since: number;
let until: number;
let expected: SourceRow[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-e2e-cloud-'));
  dbPath = join(dir, 'logs.db');
  origin = await writeSourceDb(dbPath);
  const src = new Database(dbPath, { readonly: true });
  all = (src.prepare('SELECT "id", "timestamp", "status", "cost", "prompt_tokens" FROM logs').all() as Array<Omit<SourceRow, 'ms'> & { timestamp: string }>)
    .map((r) => ({ id: r.id, status: r.status, cost: r.cost, prompt_tokens: r.prompt_tokens, ms: tsMs(r.timestamp) }));
  src.close();
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
  expect(all.every((r) => Number.isFinite(r.ms)), origin).toBe(true);
  expect(expected.length, `rows in the window (${origin})`).toBeGreaterThan(50);
  expect(all.some((r) => r.ms >= since && r.ms < until && r.status === 'processing'), origin).toBe(true);
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
      for (let run = 1; run <= 2; run++) {
        const r = await cli([...args(fake, 'requests'), '--state-dir', join(dir, 'state-bq-flags')], { env: noAdc() });
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
});
