import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { parse as parseCsv } from 'csv-parse/sync';
import { parquetReadObjects } from 'hyparquet';
// @ts-expect-error plain JS module
import { SCHEMAS } from '../../fixtures/generator.mjs';
// @ts-expect-error plain JS module
import { loadClickHouse } from '../../fixtures/clickhouse.mjs';
import { cli, ndjson } from '../support/cli.js';
import { useTwoStores } from '../support/source-db.js';
import { startClickHouse, type ClickHouseServer } from '../support/clickhouse-server.js';
import { allMetrics, csvText, expectedRecord, filterCases, METRIC_NAMES, type FilterCase } from '../support/bifrost-truth.js';
import type { TruthRow } from '../support/truth.js';

/**
 * Every filter of the README's table and every `stats` metric, grouped and not, on the newest schema
 * (117 columns, four statuses, repriced rows, several teams per row) in SQLite and Postgres, against
 * Bifrost's definitions written out independently (test/support/bifrost-truth.ts); and the record of
 * every row, with every group, in JSONL, CSV and Parquet (and from ClickHouse).
 */
const START = '2026-10-01T00:00:00Z';
const DAYS = 2;
const OPTS = { rows: 2500, seed: 61, schema: 'newer', start: START, days: DAYS };
const SPAN = ['--since', START, '--until', new Date(Date.parse(START) + DAYS * 86_400_000).toISOString()];
const GROUPS = 'request_logs,response_logs,error_logs,metrics,traces';
const COLUMNS: ReadonlySet<string> = new Set(SCHEMAS.newer.columnNames);

const S = useTwoStores('bl-bft-', OPTS);
let ch: ClickHouseServer;
beforeAll(async () => {
  ch = await startClickHouse();
  await loadClickHouse((sql: string) => ch.exec(sql), OPTS);
}, 300_000);
afterAll(async () => { await ch?.stop(); });
const chUrl = () => { const u = new URL(ch.url); return `clickhouse://${ch.user}:${ch.password}@${u.host}/${ch.database}`; };

const cases = (): FilterCase[] => filterCases(S.truth, Date.parse(START), DAYS);
/** The cases of filterCases(), by name (it.each needs them before the rows exist). */
const caseNames = [
  'date_range [since, until)', 'providers', 'models: model', 'models: canonical_model_name', 'customers: customer_id or customer_ids',
  'status_codes (499 of cancelled rows)', 'min/max latency', 'has_errors true', 'has_errors false', 'status cancelled',
  'status processing,error', 'objects (both spellings)', 'virtual_keys', 'teams: team_id or team_ids', 'business_units: business_unit_id or business_unit_ids', 'users', 'min/max tokens',
  'min_cost (NULL never matches)', 'max_cost (NULL never matches)', 'search: substring, LIKE wildcards literal',
  'search: underscore literal', 'metadata string', 'metadata boolean', 'several filters at once',
];
const byName = (name: string) => cases().find((c) => c.name === name)!;

function expectMetrics(got: Record<string, unknown>, want: Record<string, number | null>, where: string) {
  for (const [k, v] of Object.entries(want)) {
    if (v === null) expect(got[k], `${where} ${k}`).toBeNull();
    else expect(got[k] as number, `${where} ${k}`).toBeCloseTo(v, 6);
  }
}

describe('the fixtures are the store the README describes', () => {
  it('four statuses, 499 cancellations, repriced rows, several teams, canonical models that differ', () => {
    const st = new Set(S.truth.map((t) => t.status));
    expect([...st].sort()).toEqual(['cancelled', 'error', 'processing', 'success']);
    expect(S.truth.some((t) => t.status === 'cancelled' && JSON.parse(t.error_details).status_code === 499)).toBe(true);
    expect(S.truth.some((t) => t.__repriced && JSON.parse(t.token_usage).cost.total_cost !== t.cost)).toBe(true);
    expect(S.truth.some((t) => String(t.team_ids ?? '').includes(','))).toBe(true);
    expect(S.truth.some((t) => t.canonical_model_name && t.canonical_model_name !== t.model)).toBe(true);
    expect(S.truth.some((t) => t.cost === null) && S.truth.some((t) => t.cost !== null)).toBe(true);
    expect(COLUMNS.size).toBe(117);
  });
});

for (const dialect of ['sqlite', 'postgres'] as const) {
  const db = () => (dialect === 'sqlite' ? S.sqlitePath : S.pgUrl);
  describe(`every filter and metric on ${dialect}`, () => {
    it.each(caseNames.map((n) => [n] as const))('%s', async (name) => {
      const c = byName(name);
      if (c.sqliteOnly && dialect === 'postgres') return; // Postgres search: below
      const want = S.truth.filter(c.keep);
      expect(want.length, name).toBeGreaterThan(0);
      const q = await cli(['query', '--db', db(), '--all', '--json', '--fields', 'request_id', ...c.args]);
      expect(q.stderr).toBe('');
      expect(q.code).toBe(0);
      expect(ndjson(q.stdout).map((x) => x.request_id).sort()).toEqual(want.map((t) => t.id).sort());

      const st = await cli(['stats', '--db', db(), '--json', '--metrics', METRIC_NAMES.join(','), ...c.args]);
      expect(st.code, st.stderr).toBe(0);
      expectMetrics(JSON.parse(st.stdout), allMetrics(want), name);

      for (const key of ['provider', 'status'] as const) {
        const g = await cli(['stats', '--db', db(), '--json', '--group-by', key, '--metrics', METRIC_NAMES.join(','), ...c.args]);
        expect(g.code, g.stderr).toBe(0);
        const rows = ndjson(g.stdout);
        const groups = new Map<string, TruthRow[]>();
        for (const t of want) groups.set(t[key], [...(groups.get(t[key]) ?? []), t]);
        expect(rows.map((r) => r[key]).sort()).toEqual([...groups.keys()].sort());
        for (const row of rows) expectMetrics(row, allMetrics(groups.get(row[key] as string)!), `${name} / ${key}=${row[key]}`);
      }
    });

    it('stats with no matching row give 0, as Bifrost does', async () => {
      const st = await cli(['stats', '--db', db(), '--json', '--metrics', METRIC_NAMES.join(','), '--providers', 'nobody']);
      expect(st.code).toBe(0);
      expectMetrics(JSON.parse(st.stdout), allMetrics([]), 'empty');
    });
  });
}

describe('search on Postgres is Bifrost\'s full-text match', () => {
  const bifrostSearch = async (text: string): Promise<string[]> => {
    const c = new pg.Client({ connectionString: S.pgUrl });
    await c.connect();
    try {
      // framework/logstore/rdb.go, verbatim
      const r = await c.query(`SELECT id FROM logs WHERE to_tsvector('simple', left(content_summary, 250000)) @@ plainto_tsquery('simple', $1)`, [text]);
      return r.rows.map((x) => x.id as string).sort();
    } finally { await c.end(); }
  };
  it.each([['refund'], ['days refund'], ['the'], ['ticket']])('--search %s', async (text) => {
    const want = await bifrostSearch(text);
    expect(want.length).toBeGreaterThan(0);
    const q = await cli(['query', '--db', S.pgUrl, '--all', '--json', '--fields', 'request_id', '--search', text]);
    expect(q.code, q.stderr).toBe(0);
    expect(ndjson(q.stdout).map((x) => x.request_id).sort()).toEqual(want);
    const st = await cli(['stats', '--db', S.pgUrl, '--json', '--metrics', METRIC_NAMES.join(','), '--search', text]);
    const ids = new Set(want);
    expectMetrics(JSON.parse(st.stdout), allMetrics(S.truth.filter((t) => ids.has(t.id))), text);
  });
  it('whole words, not substrings: "the" leaves out "there" and "other"', async () => {
    const words = await bifrostSearch('the');
    const substr = S.truth.filter((t) => String(t.content_summary).toLowerCase().includes('the')).length;
    expect(words.length).toBeLessThan(substr);
  });
});

/** Every exported (completed) row, with its expected record. */
const exported = () => S.truth.filter((t) => t.status !== 'processing');
const filesOf = (dir: string, ext: string) => readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith(ext)).sort().map((f) => join(dir, f));

async function exportAll(db: string, format: string, extra: string[] = []): Promise<string> {
  const out = mkdtempSync(join(S.dir, `out-${format}-`));
  const r = await cli(['export', '--db', db, '--dest', 'file', '--out', out, '--format', format, '--include', GROUPS, ...SPAN,
    '--state-dir', mkdtempSync(join(S.dir, 'state-')), ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return out;
}

function compareRecords(got: Array<Record<string, unknown>>, norm: (field: string, want: unknown) => unknown, where: string, want = exported()) {
  expect(got.length, where).toBe(want.length);
  const byId = new Map(got.map((g) => [g.request_id as string, g]));
  const fields = Object.keys(expectedRecord(want[0]!, COLUMNS)).sort();
  const statuses = new Set<string>();
  for (const t of want) {
    const rec = byId.get(t.id);
    expect(rec, `${where} ${t.id}`).toBeDefined();
    expect(Object.keys(rec!).sort(), where).toEqual(fields);
    const exp = expectedRecord(t, COLUMNS);
    for (const f of fields) expect(rec![f], `${where} ${t.id} ${t.status} ${f}`).toEqual(norm(f, exp[f]));
    statuses.add(t.status);
  }
  expect([...statuses].sort()).toEqual([...new Set(want.map((t) => t.status))].sort());
  expect(statuses.has('cancelled') && statuses.has('error') && statuses.has('success')).toBe(true);
}

const identity = (_f: string, v: unknown) => v;

for (const dialect of ['sqlite', 'postgres', 'clickhouse'] as const) {
  describe(`the record of every row from ${dialect}`, () => {
    const db = () => (dialect === 'sqlite' ? S.sqlitePath : dialect === 'postgres' ? S.pgUrl : chUrl());
    it('jsonl', async () => {
      const out = await exportAll(db(), 'jsonl');
      compareRecords(filesOf(out, '.jsonl').flatMap((f) => ndjson(readFileSync(f, 'utf8'))), identity, `${dialect} jsonl`);
    });
    it('query: every row, all four statuses (processing rows too)', async () => {
      const q = await cli(['query', '--db', db(), '--all', '--json', '--include', GROUPS]);
      expect(q.code, q.stderr).toBe(0);
      compareRecords(ndjson(q.stdout), identity, `${dialect} query`, S.truth);
      expect(new Set(S.truth.map((t) => t.status)).size).toBe(4);
    });
    if (dialect === 'clickhouse') return;
    it('csv', async () => {
      const out = await exportAll(db(), 'csv', ['--no-formula-guard']);
      const rows = filesOf(out, '.csv').flatMap((f) => parseCsv(readFileSync(f), { columns: true }) as Record<string, string>[]);
      compareRecords(rows, (_f, v) => csvText(v), `${dialect} csv`);
    });
    it('parquet', async () => {
      const out = await exportAll(db(), 'parquet');
      const rows: Array<Record<string, unknown>> = [];
      for (const f of filesOf(out, '.parquet')) {
        const buf = readFileSync(f);
        rows.push(...(await parquetReadObjects({ file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) })));
      }
      // Parquet: timestamps are instants, JSON is UTF8 text, absent values null.
      const got = rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v === undefined ? null : v])));
      compareRecords(got, (f, v) => (v === null ? null : typeof v === 'object' ? JSON.stringify(v) : v), `${dialect} parquet`);
    });
  });
}
