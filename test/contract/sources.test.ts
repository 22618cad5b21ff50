/**
 * One body over the three Bifrost log stores: the same generated rows in
 * SQLite, Postgres and ClickHouse (there with several versions of some rows,
 * as Bifrost's writer leaves them) give equal answers to every read, count and
 * aggregate of the LogSource interface.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JS module
import { generateRows, writeSqlite, loadPostgres } from '../../fixtures/generator.mjs';
// @ts-expect-error plain JS module
import { loadClickHouse } from '../../fixtures/clickhouse.mjs';
import { startPostgres } from '../support/services.js';
import { startClickHouse, type ClickHouseServer } from '../support/clickhouse-server.js';
import { openSource } from '../../src/source/open.js';
import { specFromDbArg } from '../../src/source/locate.js';
import type { LogSource } from '../../src/source/types.js';
import type { Filter } from '../../src/source/filter.js';
import { METRICS } from '../../src/source/aggregate-sql.js';

const OPTS = { rows: 2000, seed: 23, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 3 };
const START = Date.parse('2026-10-02T00:00:00Z');
const END = Date.parse('2026-10-03T00:00:00Z');

let dir: string;
let stopPg: (() => Promise<void>) | undefined;
let ch: ClickHouseServer;
const sources: Record<string, LogSource> = {};
let truth: Array<Record<string, any>>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-src-'));
  const sqlitePath = join(dir, 'logs.db');
  writeSqlite(sqlitePath, OPTS);
  truth = [...generateRows(OPTS)];
  const pg = await startPostgres();
  stopPg = pg.stop;
  const pgUrl = await pg.createDatabase('bifrost');
  await loadPostgres(pgUrl, OPTS);
  ch = await startClickHouse();
  await loadClickHouse((sql: string) => ch.exec(sql), OPTS);
  sources.sqlite = await openSource(specFromDbArg(sqlitePath, '--db'));
  sources.postgres = await openSource(specFromDbArg(pgUrl, '--db'));
  const u = new URL(ch.url);
  sources.clickhouse = await openSource(specFromDbArg(`clickhouse://${ch.user}:${ch.password}@${u.host}/${ch.database}`, '--db'));
}, 300_000);
afterAll(async () => {
  for (const s of Object.values(sources)) await s.close();
  await ch?.stop();
  await stopPg?.();
  rmSync(dir, { recursive: true, force: true });
});

const most = (key: string) => {
  const c = new Map<unknown, number>();
  for (const r of truth) if (r[key] !== null && r[key] !== '' && r[key] !== undefined) c.set(r[key], (c.get(r[key]) ?? 0) + 1);
  return [...c.entries()].sort((a, b) => b[1] - a[1])[0]![0] as string;
};

const filters: Array<[string, () => Filter]> = [
  ['everything', () => ({})],
  ['window', () => ({ start: START, end: END })],
  ['providers + models', () => ({ providers: [most('provider')], models: [most('model'), 'nope'] })],
  ['status codes', () => ({ statusCodes: [200, 429, 500] })],
  ['latency range', () => ({ minLatencyMs: 200, maxLatencyMs: 900 })],
  ['errors', () => ({ hasErrors: true })],
  ['processing', () => ({ status: ['processing'] })],
  ['completed only', () => ({ completedOnly: true })],
  ['objects', () => ({ objects: ['chat_completion', 'embedding'] })],
  ['who', () => ({ virtualKeys: [most('virtual_key_id')], teams: [most('team_id')] })],
  ['users + customers', () => ({ users: [most('user_id')] })],
  ['customers', () => ({ customers: [most('customer_id')] })],
  ['tokens', () => ({ minTokens: 100, maxTokens: 2000 })],
  ['cost', () => ({ minCost: 0, maxCost: 0.001 })],
  ['search', () => ({ search: 'the' })],
];

async function readIds(s: LogSource, filter: Filter): Promise<string[]> {
  const ids: string[] = [];
  for await (const p of s.read({ filter, columns: ['id', 'status'], pageSize: 333 })) {
    const i = p.columns.indexOf('id');
    for (const r of p.rows) ids.push(r[i] as string);
  }
  return ids;
}

describe('LogSource contract: SQLite, Postgres and ClickHouse give equal answers', () => {
  it('ClickHouse holds several versions of some rows; every read sees each id once', async () => {
    const raw = Number((await ch.exec('SELECT count() FROM logs')).trim());
    expect(raw).toBeGreaterThan(truth.length);
    const ids = await readIds(sources.clickhouse!, {});
    expect(ids.length).toBe(truth.length);
    expect(new Set(ids).size).toBe(truth.length);
    expect(await sources.clickhouse!.count({})).toBe(truth.length);
    // The latest version counts: no row that completed reads as processing.
    const processing = truth.filter((r) => r.status === 'processing').length;
    expect(await sources.clickhouse!.count({ status: ['processing'] })).toBe(processing);
  });

  it('ClickHouse mcp_tool_logs holds the same calls as the SQL stores, latest version once', async () => {
    const pgIds = (await ch.exec("SELECT count() FROM mcp_tool_logs")).trim();
    const latest = (await ch.exec("SELECT count(), countIf(status = 'processing') FROM mcp_tool_logs FINAL")).trim().split('\t').map(Number);
    expect(Number(pgIds)).toBeGreaterThan(latest[0]!);
    expect(latest[1]).toBe(0);
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(dir, 'logs.db'), { readonly: true });
    try {
      const want = (db.prepare('SELECT id FROM mcp_tool_logs ORDER BY id').all() as Array<{ id: string }>).map((r) => r.id);
      const got = (await ch.exec('SELECT id FROM mcp_tool_logs FINAL ORDER BY id')).trim().split('\n');
      expect(got).toEqual(want);
    } finally { db.close(); }
  });

  for (const [name, f] of filters) {
    it(`${name}: same count, same rows`, async () => {
      // Each source pages in its own order (insert order, or the table's key); the rows are the same.
      // `search` on Postgres is Bifrost's full-text match, not a substring test (bifrost-fidelity.test.ts checks it).
      const stores = name === 'search' ? ['sqlite', 'clickhouse'] : ['sqlite', 'postgres', 'clickhouse'];
      const [a, ...others] = (await Promise.all(stores.map((k) => readIds(sources[k]!, f())))).map((x) => x.sort());
      const n = await Promise.all(stores.map((k) => sources[k]!.count(f())));
      for (const b of others) expect(b).toEqual(a);
      expect(n).toEqual(stores.map(() => a!.length));
    });
  }

  it('a read that excludes ids leaves out exactly those rows, on every store', async () => {
    // The ids a run excludes are rows that were processing when it began; any id of the window stands in here.
    const window = { start: START, end: END, completedOnly: true };
    const all = (await readIds(sources.sqlite!, window)).sort();
    const skip = all.filter((_, i) => i % 7 === 3);
    expect(skip.length).toBeGreaterThan(20);
    const want = all.filter((id) => !skip.includes(id));
    for (const k of ['sqlite', 'postgres', 'clickhouse']) {
      const ids: string[] = [];
      for await (const p of sources[k]!.read({ filter: window, columns: ['id', 'status'], pageSize: 333, exclude: { ids: [...skip, 'no-such-id', "it's quoted"] } })) {
        const i = p.columns.indexOf('id');
        for (const r of p.rows) ids.push(r[i] as string);
      }
      expect(ids.sort(), k).toEqual(want);
    }
  });

  it('ClickHouse pages by time slice: rows sharing one timestamp beyond a page, sparse and empty stretches, each row once', async () => {
    await ch.exec('CREATE DATABASE IF NOT EXISTS slices');
    await ch.exec(`CREATE TABLE slices.logs AS ${ch.database}.logs`);
    // 50 rows at one instant, then rows days apart, then a dense run.
    await ch.exec(`INSERT INTO slices.logs SELECT * REPLACE (toDateTime64('2026-10-02 12:00:00.000', 3) AS timestamp) FROM ${ch.database}.logs FINAL WHERE status = 'success' ORDER BY id LIMIT 50`);
    await ch.exec(`INSERT INTO slices.logs SELECT * REPLACE (toDateTime64('2026-03-01 00:00:00.000', 3) + toIntervalDay(rowNumberInAllBlocks() * 9) AS timestamp, concat('sparse-', id) AS id) FROM ${ch.database}.logs FINAL WHERE status = 'success' ORDER BY id LIMIT 20`);
    await ch.exec(`INSERT INTO slices.logs SELECT * REPLACE (concat('dense-', id) AS id) FROM ${ch.database}.logs FINAL WHERE status <> 'processing' ORDER BY id LIMIT 900`);
    const want = (await ch.exec('SELECT id FROM slices.logs FINAL ORDER BY id')).trim().split('\n');
    expect(want.length).toBe(970);
    const u = new URL(ch.url);
    const s = await openSource(specFromDbArg(`clickhouse://${ch.user}:${ch.password}@${u.host}/slices`, '--db'));
    try {
      for (const [pageSize, filter] of [[7, {}], [50, {}], [49, {}], [333, { start: Date.parse('2026-01-01T00:00:00Z'), end: Date.parse('2027-01-01T00:00:00Z') }], [4, { start: Date.parse('2026-10-02T12:00:00Z'), end: Date.parse('2026-10-02T12:00:00.001Z') }]] as const) {
        const ids: string[] = [];
        for await (const p of s.read({ filter, columns: ['id', 'status'], pageSize })) {
          const i = p.columns.indexOf('id');
          for (const r of p.rows) ids.push(r[i] as string);
        }
        const expected = filter.end === Date.parse('2026-10-02T12:00:00.001Z') ? 50 : 970;
        expect(ids.length, `page ${pageSize}`).toBe(expected);
        expect(new Set(ids).size, `page ${pageSize}`).toBe(expected);
        if (expected === 970) expect([...ids].sort(), `page ${pageSize}`).toEqual(want);
      }
    } finally {
      await s.close();
      await ch.exec('DROP DATABASE slices');
    }
  });

  it('aggregates: every metric, grouped and not, equal across stores', async () => {
    for (const groupBy of [[], ['provider'], ['status', 'status_code'], ['date'], ['hour', 'model'], ['week'], ['month', 'object_type'], ['request_type'], ['endpoint', 'method']]) {
      const spec = { groupBy, metrics: [...METRICS], timezone: 'Europe/Berlin' };
      const [a, b, c] = await Promise.all(['sqlite', 'postgres', 'clickhouse'].map((k) => sources[k]!.aggregate({ start: START - 86_400_000, end: END }, spec)));
      for (const other of [b!, c!]) {
        expect(other.length, JSON.stringify(groupBy)).toBe(a!.length);
        other.forEach((row, i) => {
          for (const [k, v] of Object.entries(a![i]!)) {
            if (typeof v === 'number') expect(row[k] as number, `${groupBy} ${k}`).toBeCloseTo(v, 6);
            else expect(row[k], `${groupBy} ${k}`).toEqual(v);
          }
        });
      }
    }
  });

  it('exact percentiles equal percentile_cont, computed independently from the rows', async () => {
    const lat = truth.filter((r) => r.status === 'success' || r.status === 'error' || r.status === 'cancelled').map((r) => r.latency).filter((x) => x !== null && x !== undefined).map(Number).sort((x, y) => x - y);
    const cont = (p: number) => { const pos = p * (lat.length - 1); const lo = Math.floor(pos); return lat[lo]! + ((lat[lo + 1] ?? lat[lo]!) - lat[lo]!) * (pos - lo); };
    const [r] = await sources.clickhouse!.aggregate({}, { groupBy: [], metrics: ['p50_latency', 'p95_latency', 'p99_latency'], timezone: 'UTC' });
    expect(r!.p50_latency as number).toBeCloseTo(cont(0.5), 9);
    expect(r!.p95_latency as number).toBeCloseTo(cont(0.95), 9);
    expect(r!.p99_latency as number).toBeCloseTo(cont(0.99), 9);
  });

  it('sorted listings agree: the same sort values in the same order', async () => {
    const column = { timestamp: '__ts_ms', latency: 'latency', tokens: 'total_tokens', cost: 'cost' } as const;
    for (const sort of ['timestamp', 'latency', 'tokens', 'cost'] as const) {
      const lists = await Promise.all(['sqlite', 'postgres', 'clickhouse'].map(async (k) => {
        const out: number[] = [];
        for await (const p of sources[k]!.list({ filter: { completedOnly: true }, columns: ['id', 'latency', 'total_tokens', 'cost'], sort, order: 'desc', limit: 50, offset: 5 })) {
          const i = p.columns.indexOf(column[sort]);
          for (const r of p.rows) out.push(Number(r[i] ?? 0));
        }
        return out;
      }));
      expect(lists[0]!.length, sort).toBe(50);
      // Stored timestamps carry microseconds in Postgres; the stores agree to the millisecond.
      for (const other of [lists[1]!, lists[2]!]) other.forEach((v, i) => expect(Math.abs(v - lists[0]![i]!), `${sort} #${i}`).toBeLessThanOrEqual(sort === 'timestamp' ? 1 : 1e-9));
    }
  });

  it('window fingerprints: equal row counts, cost and tokens on every store; a changed value changes only its window', async () => {
    const days = [0, 1, 2].map((d) => ({ start: Date.parse('2026-10-01T00:00:00Z') + d * 86_400_000, end: Date.parse('2026-10-01T00:00:00Z') + (d + 1) * 86_400_000 }));
    const cols = ['id', 'status', 'cost', 'total_tokens', 'latency'];
    const done: Filter = { completedOnly: true };
    const fps = Object.fromEntries(await Promise.all(Object.entries(sources).map(async ([k, s]) => [k, await s.fingerprints(done, days, cols)] as const)));
    for (const [i, w] of days.entries()) {
      const rows = truth.filter((r) => r.__ts_ms >= w.start && r.__ts_ms < w.end && ['success', 'error', 'cancelled'].includes(r.status));
      for (const k of Object.keys(sources)) {
        expect(fps[k]![i]!.rows, `${k} day ${i}`).toBe(rows.length);
        expect(fps[k]![i]!.cost, `${k} day ${i}`).toBeCloseTo(rows.reduce((a, r) => a + Number(r.cost ?? 0), 0), 6);
        expect(fps[k]![i]!.tokens, `${k} day ${i}`).toBe(rows.reduce((a, r) => a + Number(r.total_tokens ?? 0), 0));
      }
    }
    // A newer version of one row with a new cost (a reprice, as Bifrost writes it on ClickHouse) moves that window only.
    const s = sources.clickhouse!;
    const row = truth.find((r) => r.status === 'success' && r.__ts_ms >= days[1]!.start && r.__ts_ms < days[1]!.end)!;
    const same = await s.fingerprints(done, days, cols);
    expect(same).toEqual(fps.clickhouse);
    await ch.exec(`INSERT INTO logs SELECT * REPLACE (now64(9) AS ver, 0.5 AS cost) FROM logs FINAL WHERE id = '${row.id}'`);
    const moved = await s.fingerprints(done, days, cols);
    expect(moved[0]).toEqual(fps.clickhouse![0]);
    expect(moved[2]).toEqual(fps.clickhouse![2]);
    expect(moved[1]!.rows).toBe(fps.clickhouse![1]!.rows);
    expect(moved[1]!.hash).not.toBe(fps.clickhouse![1]!.hash);
    expect(moved[1]!.cost).toBeCloseTo(fps.clickhouse![1]!.cost - Number(row.cost ?? 0) + 0.5, 6);
    // Put the row back, as it was: the fingerprint is the delivered one again.
    await ch.exec(`INSERT INTO logs SELECT * REPLACE (now64(9) AS ver, ${row.cost === null ? 'NULL' : Number(row.cost)} AS cost) FROM logs FINAL WHERE id = '${row.id}'`);
    expect(await s.fingerprints(done, days, cols)).toEqual(fps.clickhouse);
  });

  it('late rows: a newer version of a row is after the last position, and read once', async () => {
    const s = sources.clickhouse!;
    const before = await s.position();
    expect(before.kind).toBe('ver');
    const id = truth.find((r) => r.status === 'success')!.id as string;
    await ch.exec(`INSERT INTO logs SELECT * REPLACE (now64(9) AS ver, 123456 AS latency) FROM logs FINAL WHERE id = '${id}'`);
    const after = await s.position();
    expect(after.value).toBeGreaterThan(before.value);
    const late: string[] = [];
    for await (const p of s.read({ filter: {}, columns: ['id', 'latency'], after: before, upTo: after })) for (const r of p.rows) late.push(r[0] as string);
    expect(late).toEqual([id]);
    expect(await s.count({}, { after: before, upTo: after })).toBe(1);
    expect(await s.count({})).toBe(truth.length);
  });
});
