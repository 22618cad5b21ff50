/**
 * mcp_tool_logs over the three Bifrost log stores: the same generated tool
 * calls in SQLite, Postgres and ClickHouse (there with several versions of
 * some calls, as Bifrost's MCP logging leaves them) give equal answers to
 * every read, count, record and aggregate, and equal the truth computed here
 * from the raw rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import type { ClickHouseServer } from '../support/clickhouse-server.js';
import { mostCommon, openThreeStores, readIds, type ThreeStores } from '../support/three-stores.js';
import { derivedStatusCode, percentileCont, type TruthRow } from '../support/truth.js';
import { expectSameGroups, mcpRows } from '../support/mcp-truth.js';
import type { Filter } from '../../src/source/filter.js';
import { createRecordMapper } from '../../src/record/mapper.js';
import { createWarnings } from '../../src/record/json-cell.js';
import { resolveFields } from '../../src/record/select.js';

const OPTS = { rows: 3000, seed: 41, schema: 'newer', start: '2026-10-01T00:00:00Z', days: 3 };
const START = Date.parse('2026-10-02T00:00:00Z');
const END = Date.parse('2026-10-03T00:00:00Z');
const STORES = ['sqlite', 'postgres', 'clickhouse'] as const;

let stores: ThreeStores;
let sqlitePath: string;
let ch: ClickHouseServer;
let sources: ThreeStores['sources'];
/** The raw rows of the SQLite store's mcp_tool_logs, read with plain SQL. */
let truth: TruthRow[];

beforeAll(async () => {
  stores = await openThreeStores(OPTS, 'mcp_tool_logs', 'bl-mcp-src-');
  ({ sqlitePath, ch, sources } = stores);
  truth = mcpRows(sqlitePath);
}, 300_000);
afterAll(async () => { await stores?.close(); });

const most = (key: string) => mostCommon(truth, key);
const done = (r: TruthRow) => r.status === 'success' || r.status === 'error';

/** Each filter, and which raw rows it selects (written from Bifrost's column meanings, not our SQL). */
const filters: Array<[string, () => Filter, (r: TruthRow) => boolean]> = [
  ['everything', () => ({}), () => true],
  ['window', () => ({ start: START, end: END }), (r) => r.__ts_ms >= START && r.__ts_ms < END],
  ['errors', () => ({ hasErrors: true }), (r) => r.status === 'error'],
  ['status codes', () => ({ statusCodes: [404, 504] }), (r) => [404, 504].includes(derivedStatusCode(r) ?? 0)],
  ['latency range', () => ({ minLatencyMs: 200, maxLatencyMs: 600 }), (r) => r.latency !== null && r.latency >= 200 && r.latency <= 600],
  ['cost', () => ({ minCost: 0.001, maxCost: 0.003 }), (r) => r.cost !== null && r.cost >= 0.001 && r.cost <= 0.003],
  ['virtual key + team', () => ({ virtualKeys: [most('virtual_key_id')], teams: [most('team_id')] }), (r) => r.virtual_key_id === most('virtual_key_id') && r.team_id === most('team_id')],
  ['users', () => ({ users: [most('user_id')] }), (r) => r.user_id === most('user_id')],
  ['customers', () => ({ customers: [most('customer_id')] }), (r) => r.customer_id === most('customer_id')],
  ['servers', () => ({ servers: ['filesystem', 'brave'] }), (r) => ['filesystem', 'brave'].includes(r.server_label)],
  ['tools', () => ({ tools: ['get_weather'], status: ['success'] }), (r) => r.tool_name === 'get_weather' && r.status === 'success'],
  ['completed only', () => ({ completedOnly: true }), (r) => r.status !== 'processing'],
];

describe('mcp_tool_logs contract: SQLite, Postgres and ClickHouse give equal answers', () => {
  it('ClickHouse holds several versions of some calls; every read and count sees each call once, in its latest version', async () => {
    expect(truth.length).toBeGreaterThanOrEqual(300);
    const raw = Number((await ch.exec('SELECT count() FROM mcp_tool_logs')).trim());
    expect(raw).toBeGreaterThan(truth.length);
    const ids = await readIds(sources.clickhouse, {});
    expect(ids.length).toBe(truth.length);
    expect(new Set(ids).size).toBe(truth.length);
    expect(await sources.clickhouse.count({ status: ['processing'] })).toBe(0);
    expect((await sources.clickhouse.position()).kind).toBe('ver');
    expect((await sources.sqlite.position()).kind).toBe('rowid');
    // Bifrost's mcp_tool_logs has no inc_number: Postgres has no insert position for it.
    expect((await sources.postgres.position()).kind).toBe('none');
  });

  for (const [name, f, pick] of filters) {
    it(`${name}: same rows on every store, equal to the raw rows`, async () => {
      const want = truth.filter(pick).map((r) => r.id as string).sort();
      expect(want.length, name).toBeGreaterThan(0);
      const got = (await Promise.all(STORES.map((k) => readIds(sources[k], f())))).map((x) => x.sort());
      const n = await Promise.all(STORES.map((k) => sources[k].count(f())));
      for (const g of got) expect(g).toEqual(want);
      expect(n).toEqual([want.length, want.length, want.length]);
    });
  }

  it('records with every group are equal on every store; arguments and result as JSON, redaction_mapping never read', async () => {
    const fields = resolveFields({ include: ['tool_io', 'error_logs', 'identity', 'traces'] }, 'mcp_tool_logs');
    const all = await Promise.all(STORES.map(async (k) => {
      const mapper = createRecordMapper(fields, createWarnings());
      expect(mapper.columns).not.toContain('redaction_mapping');
      const out: Record<string, unknown>[] = [];
      for await (const p of sources[k].read({ filter: {}, columns: mapper.columns })) out.push(...mapper.map(p));
      return out.sort((a, b) => String(a.request_id).localeCompare(String(b.request_id)));
    }));
    expect(all[1]).toEqual(all[0]);
    expect(all[2]).toEqual(all[0]);
    const byId = new Map(all[0]!.map((r) => [r.request_id, r]));
    for (const t of truth) {
      const r = byId.get(t.id)!;
      expect(r.llm_request_id).toBe(t.llm_request_id);
      expect(r.server).toBe(t.server_label);
      expect(r.tool).toBe(t.tool_name);
      expect(r.status_code).toBe(derivedStatusCode(t));
      expect(r.latency_ms).toBe(Math.round(t.latency));
      expect(r.timestamp).toBe(new Date(t.__ts_ms).toISOString());
      expect(r.arguments).toEqual(t.arguments ? JSON.parse(t.arguments) : null);
      expect(r.result).toEqual(t.result ? JSON.parse(t.result) : null);
      expect(r.content_state).toBe(t.has_object ? 'offloaded' : 'inline');
      expect(r.error_message).toBe(t.status === 'error' ? JSON.parse(t.error_details).error.message : null);
    }
  });

  it('aggregates: every MCP metric, grouped and not, equal across stores', async () => {
    const metrics = ['calls', 'count', 'success_count', 'error_count', 'success_rate', 'error_rate', 'average_latency', 'p50_latency', 'p95_latency', 'p99_latency', 'max_latency', 'total_cost', 'avg_cost'];
    for (const groupBy of [[], ['server'], ['tool'], ['server', 'tool'], ['status', 'status_code'], ['date'], ['hour', 'server'], ['virtual_key_id', 'team_id'], ['customer_id']]) {
      const spec = { groupBy, metrics, timezone: 'Europe/Berlin' };
      const [a, b, c] = await Promise.all(STORES.map((k) => sources[k].aggregate({ start: START - 86_400_000, end: END }, spec)));
      expect(a!.length, JSON.stringify(groupBy)).toBeGreaterThan(0);
      expectSameGroups(a!, b!, `postgres ${groupBy}`);
      expectSameGroups(a!, c!, `clickhouse ${groupBy}`);
    }
  });

  it('stats by server and tool equal the truth computed from the raw rows', async () => {
    const groups = new Map<string, TruthRow[]>();
    for (const r of truth) {
      const k = `${r.server_label}\u0000${r.tool_name}`;
      groups.set(k, [...(groups.get(k) ?? []), r]);
    }
    for (const k of STORES) {
      const rows = await sources[k].aggregate({}, { groupBy: ['server', 'tool'], metrics: ['calls', 'error_rate', 'p50_latency', 'p95_latency', 'p99_latency', 'total_cost'], timezone: 'UTC' });
      expect(rows.length, k).toBe(groups.size);
      for (const row of rows) {
        const g = groups.get(`${row.server}\u0000${row.tool}`)!;
        const d = g.filter(done);
        const lat = d.map((r) => Number(r.latency));
        expect(row.calls, k).toBe(g.length);
        expect(row.error_rate as number, k).toBeCloseTo((100 * d.filter((r) => r.status === 'error').length) / d.length, 9);
        expect(row.p50_latency as number, k).toBeCloseTo(percentileCont(lat, 0.5)!, 9);
        expect(row.p95_latency as number, k).toBeCloseTo(percentileCont(lat, 0.95)!, 9);
        expect(row.p99_latency as number, k).toBeCloseTo(percentileCont(lat, 0.99)!, 9);
        expect(row.total_cost as number, k).toBeCloseTo(d.reduce((a, r) => a + Number(r.cost ?? 0), 0), 9);
      }
    }
  });

  it('window fingerprints agree; a newer ClickHouse version of one call moves its window only', async () => {
    const days = [0, 1, 2].map((d) => ({ start: Date.parse('2026-10-01T00:00:00Z') + d * 86_400_000, end: Date.parse('2026-10-01T00:00:00Z') + (d + 1) * 86_400_000 }));
    const cols = ['id', 'status', 'cost', 'latency', 'arguments', 'result'];
    const f: Filter = { completedOnly: true };
    const fps = Object.fromEntries(await Promise.all(STORES.map(async (k) => [k, await sources[k].fingerprints(f, days, cols)] as const)));
    for (const [i, w] of days.entries()) {
      const rows = truth.filter((r) => r.__ts_ms >= w.start && r.__ts_ms < w.end && done(r));
      for (const k of STORES) {
        expect(fps[k]![i]!.rows, `${k} day ${i}`).toBe(rows.length);
        expect(fps[k]![i]!.cost, `${k} day ${i}`).toBeCloseTo(rows.reduce((a, r) => a + Number(r.cost ?? 0), 0), 6);
        expect(fps[k]![i]!.tokens, `${k} day ${i}`).toBe(0);
      }
    }
    const s = sources.clickhouse;
    const call = truth.find((r) => r.status === 'success' && r.__ts_ms >= days[1]!.start && r.__ts_ms < days[1]!.end)!;
    const before = await s.position();
    await ch.exec(`INSERT INTO mcp_tool_logs SELECT * REPLACE (now64(9) AS ver, 0.75 AS cost) FROM mcp_tool_logs FINAL WHERE id = '${call.id}'`);
    const moved = await s.fingerprints(f, days, cols);
    expect(moved[0]).toEqual(fps.clickhouse![0]);
    expect(moved[2]).toEqual(fps.clickhouse![2]);
    expect(moved[1]!.hash).not.toBe(fps.clickhouse![1]!.hash);
    expect(moved[1]!.cost).toBeCloseTo(fps.clickhouse![1]!.cost - Number(call.cost ?? 0) + 0.75, 6);
    // ver is the position: the changed call is read once after the old one.
    const after = await s.position();
    expect(after.value).toBeGreaterThan(before.value);
    expect(await readIds(s, {}).then((x) => x.length)).toBe(truth.length);
    const late: string[] = [];
    for await (const p of s.read({ filter: {}, columns: ['id'], after: before, upTo: after })) for (const r of p.rows) late.push(r[0] as string);
    expect(late).toEqual([call.id]);
    await ch.exec(`INSERT INTO mcp_tool_logs SELECT * REPLACE (now64(9) AS ver, ${call.cost === null ? 'NULL' : Number(call.cost)} AS cost) FROM mcp_tool_logs FINAL WHERE id = '${call.id}'`);
    expect(await s.fingerprints(f, days, cols)).toEqual(fps.clickhouse);
  });

  it('a call inserted into SQLite after a position is the only one read after it (rowid)', async () => {
    const s = sources.sqlite;
    const before = await s.position();
    const w = new Database(sqlitePath);
    try {
      const cols = (w.prepare('PRAGMA table_info(mcp_tool_logs)').all() as Array<{ name: string }>).map((c) => c.name);
      const src = w.prepare('SELECT * FROM mcp_tool_logs LIMIT 1').get() as Record<string, unknown>;
      const row: Record<string, unknown> = { ...src, id: 'late-call-1', timestamp: '2026-10-01 01:00:00.000+00:00' };
      w.prepare(`INSERT INTO mcp_tool_logs (${cols.map((c) => `"${c}"`).join(',')}) VALUES (${cols.map(() => '?').join(',')})`).run(...cols.map((c) => row[c] ?? null));
    } finally { w.close(); }
    const after = await s.position();
    expect(after.value).toBe(before.value + 1);
    expect(await readIds(s, { start: Date.parse('2026-10-01T00:00:00Z'), end: Date.parse('2026-10-01T02:00:00Z') }).then((x) => x.includes('late-call-1'))).toBe(true);
    const late: string[] = [];
    for await (const p of s.read({ filter: {}, columns: ['id'], after: before, upTo: after })) for (const r of p.rows) late.push(r[0] as string);
    expect(late).toEqual(['late-call-1']);
  });
});
