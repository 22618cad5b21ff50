/**
 * The built CLI reading Bifrost's ClickHouse store (the real engine behind the
 * HTTP interface): query, stats, export (every format to files) and run give
 * the answers the SQLite store of the same rows gives; check proves the server
 * and the table; errors map to the exit-code table; the password never shows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JS module
import { generateRows, writeSqlite } from '../../fixtures/generator.mjs';
// @ts-expect-error plain JS module
import { loadClickHouse } from '../../fixtures/clickhouse.mjs';
import { startClickHouse, type ClickHouseServer } from '../support/clickhouse-server.js';
import { cli, ndjson } from '../support/cli.js';
import { startPostgres, startS3 } from '../support/services.js';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { duckdb } from '../support/parquet.js';

const OPTS = { rows: 1500, seed: 31, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 3 };
const SINCE = '2026-10-02T00:00:00Z';
const UNTIL = '2026-10-03T00:00:00Z';
const win = ['--since', SINCE, '--until', UNTIL];

let dir: string;
let db: string;
let ch: ClickHouseServer;
let url: string;
let truth: Array<Record<string, any>>;
let n = 0;
const files = (d: string) => readdirSync(d, { recursive: true }).map(String).filter((f) => !f.startsWith('.')).sort();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-ch-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, OPTS);
  truth = [...generateRows(OPTS)];
  ch = await startClickHouse();
  await loadClickHouse((sql: string) => ch.exec(sql), OPTS);
  url = `clickhouse://${ch.user}:${ch.password}@127.0.0.1:${ch.port}/${ch.database}`;
}, 300_000);
afterAll(async () => {
  await ch?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the CLI on a ClickHouse source', () => {
  it('check: server reachable, table readable, no password in the output', async () => {
    const cfg = join(dir, 'check.json');
    writeFileSync(cfg, JSON.stringify({ source: { url } }));
    const r = await cli(['check', '--config', cfg]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toContain('clickhouse');
    expect(r.stdout + r.stderr).not.toContain(ch.password);
  });

  it('query: the same records as the SQLite store of the same rows', async () => {
    const a = await cli(['query', '--db', url, '--all', '--json', ...win, '--sort', 'timestamp', '--order', 'asc']);
    const b = await cli(['query', '--db', db, '--all', '--json', ...win, '--sort', 'timestamp', '--order', 'asc']);
    expect(a.code, a.stderr).toBe(0);
    const x = ndjson(a.stdout).sort((p, q) => String(p.request_id).localeCompare(String(q.request_id)));
    const y = ndjson(b.stdout).sort((p, q) => String(p.request_id).localeCompare(String(q.request_id)));
    expect(x.length).toBeGreaterThan(100);
    expect(x.map((r) => r.request_id)).toEqual(y.map((r) => r.request_id));
    // Every field equal (timestamps to the millisecond are the same text).
    expect(x).toEqual(y);
  });

  it('stats: the same numbers, grouped and not', async () => {
    for (const extra of [[], ['--group-by', 'provider,status_code']]) {
      const a = await cli(['stats', '--db', url, '--json', ...win, ...extra]);
      const b = await cli(['stats', '--db', db, '--json', ...win, ...extra]);
      expect(a.code, a.stderr).toBe(0);
      const pa = ndjson(a.stdout);
      const pb = ndjson(b.stdout);
      expect(pa.length).toBeGreaterThan(0);
      const round = (r: unknown) => JSON.stringify(r, (_k, v) => (typeof v === 'number' ? Number(v.toFixed(6)) : v));
      // Group order of NULL keys is each store's own (SQLite puts NULL first, Postgres and ClickHouse last); the groups are equal.
      expect(pa.map(round).sort()).toEqual(pb.map(round).sort());
    }
  });

  for (const format of ['jsonl', 'csv', 'parquet', 'json'] as const) {
    it(`export ${format} to files: each completed row of the window once, in its latest version`, async () => {
      const out = join(dir, `out${++n}`);
      const r = await cli(['export', '--db', url, '--dest', 'file', '--out', out, '--state-dir', join(dir, `state${n}`), ...win, '--format', format]);
      expect(r.code, r.stderr).toBe(0);
      const want = truth.filter((t) => t.__ts_ms >= Date.parse(SINCE) && t.__ts_ms < Date.parse(UNTIL) && t.status !== 'processing').map((t) => t.id).sort();
      const f = files(out).find((x) => x.endsWith(`.${format}`) && !x.endsWith('manifest.json'))!;
      const text = () => readFileSync(join(out, f), 'utf8');
      let ids: string[];
      if (format === 'jsonl') ids = ndjson(text()).map((x) => x.request_id);
      else if (format === 'json') ids = JSON.parse(text()).map((x: { request_id: string }) => x.request_id);
      else if (format === 'csv') { const lines = text().trim().split(/\r?\n/); const i = lines[0]!.split(',').indexOf('request_id'); ids = lines.slice(1).map((l) => l.split(',')[i]!); }
      else ids = (await duckdb(`SELECT request_id FROM read_parquet('${join(out, f)}')`)).map((x) => String(x.request_id));
      expect(ids.sort()).toEqual(want);
    });
  }

  it('run: scheduled windows from a logs_store block of type clickhouse, then a newer version of a row restates its window', async () => {
    const out = join(dir, 'run-out');
    const cfg = join(dir, 'run.json');
    writeFileSync(cfg, JSON.stringify({
      source: { type: 'clickhouse', config: { host: '127.0.0.1', port: ch.port, protocol: 'http', username: ch.user, password: ch.password, database: ch.database } },
      log_exports: { enabled: true, exports: [{
        name: 'daily', enabled: true, schedule: { frequency: 'daily', time: '02:00', timezone: 'UTC' }, backfill_from: '2026-10-01',
        destination: { type: 'file', config: { path: out, prefix: '{year}/{month}/{day}/' } }, data: { format: 'jsonl', compression: 'gzip' },
      }] },
    }));
    const state = join(dir, 'run-state');
    const r = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-04T03:00:00Z']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(ch.password);
    const read = () => files(out).filter((f) => f.endsWith('.jsonl.gz')).flatMap((f) => ndjson(gunzipSync(readFileSync(join(out, f))).toString('utf8')));
    const first = read();
    const completed = truth.filter((t) => t.status !== 'processing' && t.__ts_ms < Date.parse('2026-10-04T00:00:00Z'));
    expect(first.map((x) => x.request_id).sort()).toEqual(completed.map((t) => t.id).sort());
    // Bifrost updates a row by inserting a newer version: its window, inside the restatement lookback, is
    // delivered again as a new revision, and the current files hold the row once, with its new value.
    const id = completed[completed.length - 1]!.id as string;
    await ch.exec(`INSERT INTO logs SELECT * REPLACE (now64(9) AS ver, 4242 AS latency) FROM logs FINAL WHERE id = '${id}'`);
    const r2 = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-04T04:00:00Z']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout + r2.stderr).toContain('restated as revision 2');
    const again = read().filter((x) => x.request_id === id);
    expect(again.map((x) => x.latency_ms)).toEqual([4242]);
    expect(read().map((x) => x.request_id).sort()).toEqual(completed.map((t) => t.id).sort());
    const r3 = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-04T05:00:00Z']);
    expect(r3.code, r3.stderr).toBe(0);
    expect(r3.stdout + r3.stderr).not.toContain('restated');
    expect(read().filter((x) => x.request_id === id)).toHaveLength(1);
  });

  it('export to S3 (JSONL, gzip) and to the Postgres warehouse: the completed rows of the window, once', async () => {
    const want = truth.filter((t) => t.__ts_ms >= Date.parse(SINCE) && t.__ts_ms < Date.parse(UNTIL) && t.status !== 'processing').map((t) => t.id).sort();
    const s3 = await startS3({ buckets: ['chb'] });
    const pgs = await startPostgres();
    try {
      const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none') };
      const r = await cli(['export', '--db', url, ...win, '--dest', 's3', '--bucket', 'chb', '--endpoint', s3.endpoint, '--force-path-style', '--region', 'us-east-1', '--prefix', 'ch/', '--format', 'jsonl', '--gzip', '--state-dir', join(dir, 's3state')], { env });
      expect(r.code, r.stderr).toBe(0);
      const c = new S3Client(s3.clientConfig);
      const ids: string[] = [];
      try {
        const list = await c.send(new ListObjectsV2Command({ Bucket: 'chb', Prefix: 'ch/' }));
        for (const o of list.Contents ?? []) {
          if (!o.Key!.endsWith('.jsonl.gz')) continue;
          const g = await c.send(new GetObjectCommand({ Bucket: 'chb', Key: o.Key! }));
          ids.push(...ndjson(gunzipSync(Buffer.from(await g.Body!.transformToByteArray())).toString('utf8')).map((x) => x.request_id));
        }
      } finally { c.destroy(); }
      expect(ids.sort()).toEqual(want);

      const target = await pgs.createDatabase('wh');
      const w = await cli(['export', '--db', url, ...win, '--dest', 'postgres', '--url', target, '--schema', 'public', '--table', 'logs_export', '--state-dir', join(dir, 'pgstate')]);
      expect(w.code, w.stderr).toBe(0);
      expect(w.stderr).not.toContain(ch.password);
      const admin = new pg.Client({ connectionString: target });
      await admin.connect();
      try {
        const rows = (await admin.query('SELECT request_id FROM public.logs_export ORDER BY request_id')).rows.map((x) => x.request_id);
        expect(rows).toEqual([...want].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      } finally { await admin.end(); }
    } finally {
      await s3.destroy();
      await pgs.stop();
    }
  }, 240_000);

  it('errors: a wrong password is a configuration error (78), an unreachable server 69, and no password is echoed', async () => {
    const bad = `clickhouse://${ch.user}:not-the-password@127.0.0.1:${ch.port}/${ch.database}`;
    const a = await cli(['query', '--db', bad, '--json']);
    expect(a.code, a.stderr).toBe(78);
    expect(a.stderr).toMatch(/^bifrost-logs: could not /);
    expect(a.stderr).not.toContain('not-the-password');
    const b = await cli(['query', '--db', `clickhouse://u:secret-pw@127.0.0.1:1/${ch.database}`, '--json']);
    expect(b.code, b.stderr).toBe(69);
    expect(b.stderr).not.toContain('secret-pw');
    const c = await cli(['query', '--db', `clickhouse://${ch.user}:${ch.password}@127.0.0.1:${ch.port}/nodb`, '--json']);
    expect(c.code, c.stderr).toBe(66);
  });
});
