import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import pg from 'pg';
import { cli, ndjson } from '../support/cli.js';
import { useTwoStores } from '../support/source-db.js';
import { bifrostStats, derivedStatusCode, type TruthRow } from '../support/truth.js';

/**
 * Bifrost's fourth status: a request whose BifrostError has status_code 499 or
 * type request_cancelled, or whose deadline passed (request_timed_out), is
 * stored as `cancelled`. Some generated error rows are turned into cancelled
 * rows the way Bifrost writes them, on SQLite and Postgres alike.
 */
const OPTS = { rows: 1500, seed: 23, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 2 };

const CANCELLED = '{"event_id":"evt_c","type":"request_cancelled","is_bifrost_error":true,"status_code":499,"error":{"type":"request_cancelled","message":"context canceled"}}';
const TIMED_OUT = '{"event_id":"evt_t","type":"request_timed_out","is_bifrost_error":true,"error":{"type":"request_timed_out","message":"context deadline exceeded"}}';

const S = useTwoStores('bl-cancel-', OPTS, async (s) => {
  // Every third error row becomes cancelled; alternately with a 499 and as a timeout without a status code.
  const changed: { id: string; details: string; cost: number | null }[] = [];
  let n = 0;
  for (const t of s.truth) {
    if (t.status !== 'error') continue;
    if (n++ % 3 !== 0) continue;
    const details = changed.length % 2 === 0 ? CANCELLED : TIMED_OUT;
    // A cancelled stream can carry partial usage and cost.
    const cost = changed.length % 4 === 0 ? 0.0015 : null;
    t.status = 'cancelled';
    t.error_details = details;
    t.cost = cost;
    changed.push({ id: t.id, details, cost });
  }
  expect(changed.length).toBeGreaterThan(10);
  const db = new Database(s.sqlitePath);
  const up = db.prepare(`UPDATE logs SET status = 'cancelled', error_details = ?, cost = ? WHERE id = ?`);
  db.transaction(() => { for (const c of changed) up.run(c.details, c.cost, c.id); })();
  db.close();

  const client = new pg.Client({ connectionString: s.pgUrl });
  await client.connect();
  for (const c of changed) await client.query(`UPDATE logs SET status = 'cancelled', error_details = $1, cost = $2 WHERE id = $3`, [c.details, c.cost, c.id]);
  await client.end();
});

const cancelledRate = (rows: TruthRow[]) => {
  const done = rows.filter((r) => ['success', 'error', 'cancelled'].includes(r.status));
  return done.length ? (100 * done.filter((r) => r.status === 'cancelled').length) / done.length : 0;
};

describe.each([
  ['sqlite', () => S.sqlitePath],
  ['postgres', () => S.pgUrl],
])('cancelled rows (%s)', (_name, db) => {
  it('stats count cancelled rows as completed', async () => {
    const r = await cli(['stats', '--db', db(), '--json', '--metrics', 'total_requests,success_rate,average_latency,total_tokens,total_cost,error_rate,cancelled_rate,cancelled_count,p95_latency']);
    expect(r.code).toBe(0);
    const got = JSON.parse(r.stdout);
    const want = { ...bifrostStats(S.truth), cancelled_rate: cancelledRate(S.truth), cancelled_count: S.truth.filter((t) => t.status === 'cancelled').length };
    for (const [k, v] of Object.entries(want)) expect(got[k]).toBeCloseTo(v as number, 6);
    expect(got.success_rate + got.error_rate + got.cancelled_rate).toBeCloseTo(100, 6);
  });

  it('stats grouped by provider', async () => {
    const r = await cli(['stats', '--db', db(), '--json', '--group-by', 'provider']);
    expect(r.code).toBe(0);
    const rows = ndjson(r.stdout);
    const groups = new Map<string, TruthRow[]>();
    for (const t of S.truth) groups.set(t.provider, [...(groups.get(t.provider) ?? []), t]);
    expect(rows).toHaveLength(groups.size);
    for (const row of rows) {
      const g = groups.get(row.provider as string)!;
      const want = { ...bifrostStats(g), cancelled_rate: cancelledRate(g) };
      for (const [k, v] of Object.entries(want)) {
        if (v === null) expect(row[k]).toBeNull();
        else expect(row[k]).toBeCloseTo(v, 6);
      }
    }
  });

  it('an empty result gives 0, not null', async () => {
    const r = await cli(['stats', '--db', db(), '--json', '--providers', 'no-such-provider']);
    expect(r.code).toBe(0);
    const got = JSON.parse(r.stdout);
    for (const k of ['total_requests', 'success_rate', 'average_latency', 'total_tokens', 'total_cost', 'error_rate', 'cancelled_rate']) expect(got[k]).toBe(0);
  });

  it('--status cancelled and --status-codes 499 select them', async () => {
    const a = await cli(['query', '--db', db(), '--json', '--status', 'cancelled', '--all', '--fields', 'request_id']);
    expect(a.code).toBe(0);
    expect(ndjson(a.stdout).map((x) => x.request_id).sort()).toEqual(S.truth.filter((t) => t.status === 'cancelled').map((t) => t.id).sort());
    const b = await cli(['query', '--db', db(), '--json', '--status-codes', '499', '--all', '--fields', 'request_id']);
    expect(b.code).toBe(0);
    expect(ndjson(b.stdout).map((x) => x.request_id).sort()).toEqual(S.truth.filter((t) => derivedStatusCode(t) === 499).map((t) => t.id).sort());
    expect(ndjson(b.stdout).length).toBe(S.truth.filter((t) => t.status === 'cancelled').length);
  });

  it('the record of a cancelled row has its status code and error fields', async () => {
    const r = await cli(['export', '--db', db(), '--dest', 'stdout', '--format', 'jsonl', '--status', 'cancelled', '--fields', 'request_id,status,status_code,error_type,error_code,error_message']);
    expect(r.code).toBe(0);
    const recs = ndjson(r.stdout);
    const byId = new Map(S.truth.map((t) => [t.id, t]));
    expect(recs.length).toBe(S.truth.filter((t) => t.status === 'cancelled').length);
    for (const rec of recs) {
      const t = byId.get(rec.request_id as string)!;
      const e = JSON.parse(t.error_details);
      expect(rec.status).toBe('cancelled');
      expect(rec.status_code).toBe(499);
      expect(rec.error_code).toBeNull();
      expect(rec.error_type).toBe(e.error.type);
      expect(rec.error_message).toBe(e.error.message);
    }
  });
});
