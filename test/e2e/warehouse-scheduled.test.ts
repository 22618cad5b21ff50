// The fakes first: importing them turns off the SDKs' cloud-metadata probes.
import { startFakeSnowflake, type FakeSnowflake } from '../fakes/snowflake-server.js';
import { startFakeBigQuery, type FakeBigQuery } from '../fakes/bigquery-server.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
// @ts-expect-error plain JS module
import { generateRows, writeSqlite } from '../../fixtures/generator.mjs';
import { cli } from '../support/cli.js';
import { startPostgres, type PostgresService } from '../support/services.js';
import { isCompleted, type TruthRow } from '../support/truth.js';

/**
 * A configured daily export to each warehouse, driven by `run` as cron would:
 * catch-up of the missed windows, a second run that changes nothing, and a
 * late row that lands in an already delivered window, added exactly once.
 */
const OPTS = { rows: 1500, seed: 31, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 3 };
const NOW = '2026-10-04T00:30:00Z';
const END = Date.parse('2026-10-04T00:00:00Z');
let dir: string;
let db: string;
let truth: TruthRow[];
let pgs: PostgresService;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-wh-sched-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, OPTS);
  truth = [...generateRows(OPTS)] as TruthRow[];
  pgs = await startPostgres();
}, 180_000);
afterAll(async () => {
  await pgs?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const want = (extra: string[] = []) => [...truth.filter((t) => isCompleted(t) && t.__ts_ms >= Date.parse('2026-10-01T00:00:00Z') && t.__ts_ms < END).map((t) => t.id), ...extra].sort();

function configFor(name: string, destination: Record<string, unknown>, source: string): string {
  const p = join(dir, `${name}.json`);
  writeFileSync(p, JSON.stringify({ source: { path: source }, log_exports: { exports: [{
    name, schedule: { frequency: 'daily', time: '00:00', timezone: 'UTC' }, backfill_from: '2026-10-01', settle_lag_secs: 600,
    destination, data: { max_rows_per_file: 400 },
  }] } }));
  return p;
}

/** A copy of the source DB, so the late row does not leak into the other tests. */
function copyDb(name: string): string {
  const p = join(dir, `${name}.db`);
  new Database(db, { readonly: true }).backup(p);
  return p;
}
async function waitCopy(p: string) { for (let i = 0; i < 50; i++) { try { new Database(p, { readonly: true }).close(); return; } catch { await new Promise((r) => setTimeout(r, 100)); } } }

function addLateRow(path: string): string {
  const w = new Database(path);
  const cols = (w.prepare('PRAGMA table_info(logs)').all() as Array<{ name: string }>).map((c) => c.name);
  const base = w.prepare("SELECT * FROM logs WHERE status = 'success' LIMIT 1").get() as Record<string, unknown>;
  w.prepare(`INSERT INTO logs (${cols.map((c) => `"${c}"`).join(',')}) VALUES (${cols.map(() => '?').join(',')})`)
    .run(...cols.map((c) => (c === 'id' ? 'late-wh-1' : c === 'timestamp' || c === 'created_at' ? '2026-10-02 12:00:00.5+00:00' : base[c])));
  w.close();
  return 'late-wh-1';
}

async function scenario(name: string, destination: Record<string, unknown>, ids: () => Promise<string[]>, env: Record<string, string | undefined> = {}) {
  const source = copyDb(name);
  await waitCopy(source);
  const cfg = configFor(name, destination, source);
  const state = join(dir, `state-${name}`);
  const run = (now: string) => cli(['run', '--config', cfg, '--state-dir', state, '--now', now, '--json'], { env });
  const first = await run(NOW);
  expect(first.code, first.stderr).toBe(0);
  expect(first.stdout.split('\n').filter((l) => l.includes('"finished"'))).toHaveLength(3);
  expect(await ids()).toEqual(want());
  const second = await run(NOW);
  expect(second.code, second.stderr).toBe(0);
  expect(second.stdout).not.toContain('"finished"');
  expect(await ids()).toEqual(want());
  const late = addLateRow(source);
  const third = await run('2026-10-04T00:40:00Z');
  expect(third.code, third.stderr).toBe(0);
  expect(third.stdout).toMatch(/"kind":"late"/);
  expect(await ids()).toEqual(want([late]));
  const v = await cli(['verify', '--config', cfg, '--state-dir', state], { env });
  expect(v.code, v.stderr).toBe(0);
}

describe('a configured daily export, run by cron, to each warehouse', () => {
  const pgIds = (url: string, table: string) => async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try { return (await c.query(`SELECT request_id FROM public.${table}`)).rows.map((r) => r.request_id as string).sort(); } finally { await c.end(); }
  };

  it('postgres', async () => {
    const url = await pgs.createDatabase('wh_pg');
    await scenario('to_pg', { type: 'postgres', config: { url, schema: 'public', table: 'requests' } }, pgIds(url, 'requests'));
  });

  it('redshift (no staging, over the Postgres protocol)', async () => {
    const url = new URL(await pgs.createDatabase('wh_rs'));
    await scenario('to_rs', { type: 'redshift', config: {
      host: url.hostname, port: Number(url.port), database: url.pathname.slice(1), schema: 'public', table: 'requests', ssl: false,
      credentials: { username: url.username, password: 'env.RS_PW' },
    } }, pgIds(url.toString(), 'requests'), { RS_PW: decodeURIComponent(url.password) });
  });

  it('snowflake (real SDK, local REST server)', async () => {
    const fake: FakeSnowflake = await startFakeSnowflake({ username: 'u', password: 'sf-pw' });
    try {
      await scenario('to_sf', { type: 'snowflake', config: {
        account: fake.connectionOptions.account, access_url: fake.connectionOptions.accessUrl, database: 'DB', schema: 'S', table: 'REQUESTS',
        credentials: { username: 'u', password: 'env.SF_PW' },
      } }, async () => [...(fake.tables.get('DB.S.REQUESTS')?.rows ?? [])].map((r) => String(r.REQUEST_ID ?? r.request_id)).sort(), { SF_PW: 'sf-pw' });
    } finally { await fake.stop(); }
  });

  it('bigquery (real SDK, local REST server)', async () => {
    const fake: FakeBigQuery = await startFakeBigQuery({ datasets: ['logs'] });
    try {
      await scenario('to_bq', { type: 'bigquery', config: {
        project_id: fake.projectId, dataset: 'logs', table: 'requests', api_endpoint: fake.apiEndpoint,
        credentials: { service_account_key: 'env.BQ_KEY' },
      } }, async () => [...(fake.tables.get('logs.requests')?.rows ?? [])].map((r) => String(r.request_id)).sort(),
      { BQ_KEY: JSON.stringify(fake.credentials), METADATA_SERVER_DETECTION: 'none', GOOGLE_APPLICATION_CREDENTIALS: undefined, HOME: join(dir, 'home') });
    } finally { await fake.stop(); }
  });
});
