/**
 * MCP tool logs through the built CLI, from every store: query, stats and
 * export (JSONL, CSV, Parquet; files, S3 and the Postgres warehouse) read
 * mcp_tool_logs with --log-table (or query/stats --table NAME), and `run`
 * delivers a configured export of mcp_tool_logs exactly once beside one of
 * logs, with late calls, finished in-flight calls and restatement. Expected
 * values come from the raw rows, read here with plain SQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
// @ts-expect-error plain JS module
import { writeSqlite, loadPostgres } from '../../fixtures/generator.mjs';
// @ts-expect-error plain JS module
import { loadClickHouse } from '../../fixtures/clickhouse.mjs';
import { startClickHouse, type ClickHouseServer } from '../support/clickhouse-server.js';
import { cli, ndjson } from '../support/cli.js';
import { startPostgres, startS3, type PostgresService } from '../support/services.js';
import { duckdb } from '../support/parquet.js';
import { derivedStatusCode, percentileCont, type TruthRow } from '../support/truth.js';
import { mcpRows, s3Ndjson } from '../support/mcp-truth.js';

const OPTS = { rows: 2000, seed: 57, schema: 'newer', start: '2026-10-01T00:00:00Z', days: 3 };
const SINCE = '2026-10-02T00:00:00Z';
const UNTIL = '2026-10-03T00:00:00Z';
const win = ['--since', SINCE, '--until', UNTIL];
const MCP = ['--log-table', 'mcp_tool_logs'];

let dir: string;
let sqlite: string;
let pgs: PostgresService;
let pgUrl: string;
let ch: ClickHouseServer;
let chUrl: string;
let truth: TruthRow[];
let n = 0;
const dbs = () => ({ sqlite, postgres: pgUrl, clickhouse: chUrl });
const files = (d: string) => readdirSync(d, { recursive: true }).map(String).filter((f) => !f.startsWith('.')).sort();
const inWindow = (r: TruthRow) => r.__ts_ms >= Date.parse(SINCE) && r.__ts_ms < Date.parse(UNTIL);
const windowIds = () => truth.filter(inWindow).map((r) => r.id as string).sort();
const MCP_BASE = ['timestamp', 'request_id', 'llm_request_id', 'server', 'tool', 'status', 'status_code', 'latency_ms', 'cost_usd', 'virtual_key_id', 'user_id', 'team_id', 'customer_id'];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-mcp-'));
  sqlite = join(dir, 'logs.db');
  writeSqlite(sqlite, OPTS);
  truth = mcpRows(sqlite);
  pgs = await startPostgres();
  pgUrl = await pgs.createDatabase('bifrost');
  await loadPostgres(pgUrl, OPTS);
  ch = await startClickHouse();
  await loadClickHouse((sql: string) => ch.exec(sql), OPTS);
  chUrl = `clickhouse://${ch.user}:${ch.password}@127.0.0.1:${ch.port}/${ch.database}`;
}, 300_000);
afterAll(async () => {
  await ch?.stop();
  await pgs?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('mcp_tool_logs through the CLI', () => {
  it('query --log-table mcp_tool_logs: the MCP record, equal on every store and to the raw rows', async () => {
    const got: Record<string, Record<string, unknown>[]> = {};
    for (const [k, db] of Object.entries(dbs())) {
      const r = await cli(['query', '--db', db, ...MCP, ...win, '--all', '--json', '--include', 'tool_io,error_logs,identity,traces']);
      expect(r.code, r.stderr).toBe(0);
      got[k] = ndjson(r.stdout).sort((a, b) => String(a.request_id).localeCompare(String(b.request_id)));
    }
    expect(got.postgres).toEqual(got.sqlite);
    expect(got.clickhouse).toEqual(got.sqlite);
    const recs = got.sqlite!;
    expect(recs.map((x) => x.request_id)).toEqual(windowIds());
    expect(Object.keys(recs[0]!).slice(0, MCP_BASE.length)).toEqual(MCP_BASE);
    expect(JSON.stringify(recs)).not.toContain('redaction_mapping');
    expect(JSON.stringify(recs)).not.toContain('dana@example.com');
    const byId = new Map(truth.map((t) => [t.id, t]));
    for (const x of recs) {
      const t = byId.get(x.request_id)!;
      expect([x.llm_request_id, x.server, x.tool, x.status, x.status_code]).toEqual([t.llm_request_id, t.server_label, t.tool_name, t.status, derivedStatusCode(t)]);
      expect(x.arguments).toEqual(t.arguments ? JSON.parse(t.arguments) : null);
      expect(x.gateway_request_id).toBe(t.request_id);
    }
    // The link to the LLM request: llm_request_id is a request_id of the logs table.
    const linked = recs.find((x) => x.llm_request_id)!;
    const llm = await cli(['query', '--db', sqlite, '--all', '--json', '--fields', 'request_id']);
    expect(ndjson(llm.stdout).map((x) => x.request_id)).toContain(linked.llm_request_id);
  });

  it('content_hidden calls export no arguments or result; anonymize redacts MCP fields as for LLM logs', async () => {
    const copy = join(dir, 'hidden.db');
    writeSqlite(copy, OPTS);
    const hidden = truth.find((t) => t.status === 'success' && t.arguments && inWindow(t))!;
    const w = new Database(copy);
    try {
      w.exec('ALTER TABLE mcp_tool_logs ADD COLUMN content_hidden numeric DEFAULT false');
      w.prepare('UPDATE mcp_tool_logs SET content_hidden = 1 WHERE id = ?').run(hidden.id);
    } finally { w.close(); }
    const r = await cli(['query', '--db', copy, ...MCP, ...win, '--all', '--json', '--include', 'tool_io']);
    expect(r.code, r.stderr).toBe(0);
    const recs = ndjson(r.stdout);
    const h = recs.find((x) => x.request_id === hidden.id)!;
    expect([h.arguments, h.result, h.content_state]).toEqual([null, null, 'hidden']);
    expect(h.tool).toBe(hidden.tool_name);
    expect(recs.filter((x) => x.content_state === 'hidden')).toHaveLength(1);
    expect(recs.filter((x) => x.arguments !== null).length).toBe(truth.filter((t) => inWindow(t) && t.arguments).length - 1);
    const e = await cli(['export', '--db', copy, ...MCP, ...win, '--dest', 'stdout', '--format', 'jsonl', '--anonymize', 'user_id,virtual_key_id', '--anonymize-method', 'redact']);
    expect(e.code, e.stderr).toBe(0);
    const out = ndjson(e.stdout);
    expect(out.length).toBe(windowIds().length);
    for (const x of out) {
      const t = truth.find((y) => y.id === x.request_id)!;
      expect(x.user_id).toBe(t.user_id === null ? null : '[REDACTED]');
      expect(x.virtual_key_id).toBe(t.virtual_key_id === null ? null : '[REDACTED]');
    }
  });

  it('query --table: no value is table output of logs as before; a log-table name is that table, as a table; a wrong name is exit 64', async () => {
    const a = await cli(['query', '--db', sqlite, '--table', '--limit', '3']);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toContain('│ provider');
    const b = await cli(['query', '--db', sqlite, '--table', 'mcp_tool_logs', '--limit', '3']);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/│ server\s+│ tool/);
    expect(b.stdout).not.toContain('provider');
    const c = await cli(['query', '--db', sqlite, '--table', 'mcp_tool_log']);
    expect(c.code).toBe(64);
    expect(c.stderr.trim().split('\n')[0]).toBe('bifrost-logs: could not parse --table: unknown log table "mcp_tool_log" (did you mean "mcp_tool_logs"?)');
    const d = await cli(['stats', '--db', sqlite, '--log-table', 'mpc_tool_logs']);
    expect(d.code).toBe(64);
    expect(d.stderr).toContain('(did you mean "mcp_tool_logs"?)');
    const e = await cli(['query', '--db', sqlite, '--log-table', 'logs', '--table', 'mcp_tool_logs']);
    expect(e.code).toBe(64);
  });

  it('stats --group-by server,tool: calls, error rate, percentiles and cost equal the raw rows on every store', async () => {
    const groups = new Map<string, TruthRow[]>();
    for (const r of truth.filter(inWindow)) groups.set(`${r.server_label}/${r.tool_name}`, [...(groups.get(`${r.server_label}/${r.tool_name}`) ?? []), r]);
    for (const db of Object.values(dbs())) {
      const r = await cli(['stats', '--db', db, '--table', 'mcp_tool_logs', ...win, '--group-by', 'server,tool', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const rows = ndjson(r.stdout);
      expect(rows.length).toBe(groups.size);
      for (const row of rows) {
        const g = groups.get(`${row.server}/${row.tool}`)!;
        const lat = g.map((x) => Number(x.latency));
        expect(row.calls).toBe(g.length);
        expect(row.error_rate).toBeCloseTo((100 * g.filter((x) => x.status === 'error').length) / g.length, 9);
        expect(row.success_rate).toBeCloseTo((100 * g.filter((x) => x.status === 'success').length) / g.length, 9);
        expect(row.average_latency).toBeCloseTo(lat.reduce((a, b) => a + b, 0) / lat.length, 9);
        expect(row.p50_latency).toBeCloseTo(percentileCont(lat, 0.5)!, 9);
        expect(row.p99_latency).toBeCloseTo(percentileCont(lat, 0.99)!, 9);
        expect(row.total_cost).toBeCloseTo(g.reduce((a, x) => a + Number(x.cost ?? 0), 0), 9);
      }
    }
  });

  it('filters and metrics that do not apply to MCP calls: one clear line, exit 64', async () => {
    for (const [args, msg] of [
      [['query', ...MCP, '--providers', 'openai'], 'could not apply the filters: --providers does not apply to mcp_tool_logs'],
      [['stats', ...MCP, '--min-tokens', '5', '--models', 'gpt-4o'], 'could not apply the filters: --models, --min-tokens do not apply to mcp_tool_logs'],
      [['query', '--servers', 'brave'], 'could not apply the filters: --servers does not apply to logs'],
      [['stats', ...MCP, '--metrics', 'calls,total_tokens'], 'could not parse --metrics: total_tokens does not apply to mcp_tool_logs'],
      [['stats', ...MCP, '--group-by', 'servr'], 'could not parse --group-by: cannot group by "servr" (did you mean "server"?)'],
      [['query', ...MCP, '--sort', 'tokens'], 'could not parse --sort: mcp_tool_logs has no tokens to sort by'],
      [['export', ...MCP, '--dest', 'stdout', '--include', 'request_logs'], 'could not parse --include: unknown group "request_logs" of mcp_tool_logs'],
    ] as Array<[string[], string]>) {
      const r = await cli([...args, '--db', sqlite]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(64);
      expect(r.stderr.split('\n')[0]).toContain(msg);
      expect(r.stdout).toBe('');
    }
  });

  for (const format of ['jsonl', 'csv', 'parquet'] as const) {
    it(`export --log-table mcp_tool_logs as ${format} to files from every store: each call of the window once, with a manifest`, async () => {
      for (const db of Object.values(dbs())) {
        const out = join(dir, `out${++n}`);
        const r = await cli(['export', '--db', db, ...MCP, '--dest', 'file', '--out', out, '--state-dir', join(dir, `state${n}`), ...win, '--format', format, '--include', 'tool_io']);
        expect(r.code, r.stderr).toBe(0);
        const f = files(out).find((x) => x.endsWith(`.${format}`))!;
        expect(f, files(out).join(',')).toContain('mcp_tool_logs');
        const manifest = files(out).find((x) => x.endsWith('manifest.json'))!;
        const m = JSON.parse(readFileSync(join(out, manifest), 'utf8'));
        expect(m.rows).toBe(windowIds().length);
        expect(m.source.table).toBe('mcp_tool_logs');
        expect(m.schema.map((x: { name: string }) => x.name)).toEqual([...MCP_BASE, 'arguments', 'result', 'content_state']);
        let recs: Record<string, unknown>[];
        if (format === 'jsonl') recs = ndjson(readFileSync(join(out, f), 'utf8'));
        else if (format === 'csv') {
          const lines = readFileSync(join(out, f), 'utf8').trim().split(/\r?\n/);
          const head = lines[0]!.split(',');
          expect(head).toEqual([...MCP_BASE, 'arguments', 'result', 'content_state']);
          recs = lines.slice(1).map((l) => ({ request_id: l.split(',')[1] }));
        } else recs = await duckdb(`SELECT request_id, tool, cost_usd FROM read_parquet('${join(out, f)}')`);
        expect(recs.map((x) => String(x.request_id)).sort()).toEqual(windowIds());
      }
    });
  }

  it('export to S3 (JSONL, gzip) and to the Postgres warehouse (--table still names the warehouse table)', async () => {
    const s3 = await startS3({ buckets: ['mcp'] });
    try {
      const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none') };
      const r = await cli(['export', '--db', pgUrl, ...MCP, ...win, '--dest', 's3', '--bucket', 'mcp', '--endpoint', s3.endpoint, '--force-path-style', '--region', 'us-east-1', '--prefix', 'mcp/', '--format', 'jsonl', '--gzip', '--state-dir', join(dir, 's3state')], { env });
      expect(r.code, r.stderr).toBe(0);
      const ids = (await s3Ndjson(s3.clientConfig, 'mcp', 'mcp/')).map((x) => x.request_id as string);
      expect(ids.sort()).toEqual(windowIds());
    } finally { await s3.destroy(); }

    const target = await pgs.createDatabase('wh');
    const w = await cli(['export', '--db', chUrl, ...MCP, ...win, '--dest', 'postgres', '--url', target, '--schema', 'public', '--table', 'mcp_calls', '--state-dir', join(dir, 'pgstate')]);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stderr).not.toContain(ch.password);
    const admin = new pg.Client({ connectionString: target });
    await admin.connect();
    try {
      const rows = (await admin.query('SELECT request_id, server, tool, status_code, cost_usd FROM public.mcp_calls')).rows;
      expect(rows.map((x) => x.request_id).sort()).toEqual(windowIds());
      const byId = new Map(truth.map((t) => [t.id, t]));
      for (const x of rows) {
        const t = byId.get(x.request_id)!;
        expect([x.server, x.tool, x.status_code]).toEqual([t.server_label, t.tool_name, derivedStatusCode(t)]);
        expect(x.cost_usd === null ? null : Number(x.cost_usd)).toBe(t.cost);
      }
    } finally { await admin.end(); }
  }, 240_000);
});

/** A config with a daily export of each table into one directory, prefixed by export. */
function runConfig(name: string, source: Record<string, unknown>): { cfg: string; out: string; state: string } {
  const out = join(dir, `${name}-out`);
  const cfg = join(dir, `${name}.json`);
  const exp = (ename: string, table?: string) => ({
    name: ename, enabled: true, schedule: { frequency: 'daily', time: '02:00', timezone: 'UTC' }, backfill_from: '2026-10-01',
    destination: { type: 'file', config: { path: out, prefix: '{export}/{year}/{month}/{day}/' } }, data: { format: 'jsonl', compression: 'none', ...(table ? { table } : {}) },
  });
  writeFileSync(cfg, JSON.stringify({ source, log_exports: { enabled: true, exports: [exp('llm_daily'), exp('mcp_daily', 'mcp_tool_logs')] } }));
  return { cfg, out, state: join(dir, `${name}-state`) };
}
const delivered = (out: string, exportName: string) => files(out).filter((f) => f.startsWith(`${exportName}/`) && f.endsWith('.jsonl')).flatMap((f) => ndjson(readFileSync(join(out, f), 'utf8')));
const dayEnd = Date.parse('2026-10-04T00:00:00Z');

describe('run: a configured export of mcp_tool_logs beside one of logs', () => {
  it('SQLite: both delivered, each with its own ledger; a late call and a finished in-flight call arrive once', async () => {
    const copy = join(dir, 'run.db');
    writeSqlite(copy, OPTS);
    const { cfg, out, state } = runConfig('sq', { type: 'sqlite', config: { path: copy } });
    const w = new Database(copy);
    const cols = (w.prepare('PRAGMA table_info(mcp_tool_logs)').all() as Array<{ name: string }>).map((c) => c.name);
    const insert = (row: Record<string, unknown>) => w.prepare(`INSERT INTO mcp_tool_logs (${cols.map((c) => `"${c}"`).join(',')}) VALUES (${cols.map(() => '?').join(',')})`).run(...cols.map((c) => row[c] ?? null));
    const proto = w.prepare("SELECT * FROM mcp_tool_logs WHERE status = 'success' LIMIT 1").get() as Record<string, unknown>;
    // A call still running when the run starts: left out, delivered once it ends.
    insert({ ...proto, id: 'inflight-1', status: 'processing', latency: null, cost: null, result: '', timestamp: '2026-10-02 10:00:00.000+00:00' });
    try {
      const r = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-04T03:00:00Z']);
      expect(r.code, r.stderr).toBe(0);
      const want = truth.filter((t) => t.__ts_ms < dayEnd).map((t) => t.id as string).sort();
      expect(delivered(out, 'mcp_daily').map((x) => x.request_id).sort()).toEqual(want);
      expect(delivered(out, 'llm_daily').length).toBeGreaterThan(want.length);
      expect(delivered(out, 'llm_daily')[0]).toHaveProperty('provider');
      const jobs = ndjson((await cli(['jobs', 'list', '--config', cfg, '--state-dir', state, '--json'])).stdout);
      expect(new Set(jobs.map((j) => j.export))).toEqual(new Set(['llm_daily', 'mcp_daily']));
      expect(jobs.filter((j) => j.export === 'mcp_daily').reduce((a, j) => a + j.rows, 0)).toBe(want.length);

      // A call written late into a delivered day, and the in-flight call finishing.
      insert({ ...proto, id: 'late-1', timestamp: '2026-10-01 05:00:00.000+00:00' });
      w.prepare("UPDATE mcp_tool_logs SET status = 'success', latency = 12.5, cost = 0.001 WHERE id = 'inflight-1'").run();
      const r2 = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-04T04:00:00Z']);
      expect(r2.code, r2.stderr).toBe(0);
      const ids = delivered(out, 'mcp_daily').map((x) => x.request_id as string);
      expect(ids.filter((x) => x === 'late-1')).toHaveLength(1);
      expect(ids.filter((x) => x === 'inflight-1')).toHaveLength(1);
      expect(ids.sort()).toEqual([...want, 'inflight-1', 'late-1'].sort());
      // The logs export saw nothing new.
      expect(delivered(out, 'llm_daily').length).toBe(jobs.filter((j) => j.export === 'llm_daily').reduce((a, j) => a + j.rows, 0));
      const r3 = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-04T05:00:00Z']);
      expect(r3.code, r3.stderr).toBe(0);
      expect(delivered(out, 'mcp_daily').map((x) => x.request_id).sort()).toEqual([...want, 'inflight-1', 'late-1'].sort());
      const v = await cli(['verify', 'mcp_daily', '--config', cfg, '--state-dir', state]);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    } finally { w.close(); }
  }, 240_000);

  it('Postgres (no insert position in mcp_tool_logs): a call added to a delivered day restates that day, once', async () => {
    const src = await pgs.createDatabase('runsrc');
    await loadPostgres(src, OPTS);
    const { cfg, out, state } = runConfig('pg', { url: src });
    const r = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-04T03:00:00Z']);
    expect(r.code, r.stderr).toBe(0);
    const want = truth.filter((t) => t.__ts_ms < dayEnd).map((t) => t.id as string).sort();
    expect(delivered(out, 'mcp_daily').map((x) => x.request_id).sort()).toEqual(want);
    const c = new pg.Client({ connectionString: src });
    await c.connect();
    try {
      const others = (await c.query("SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) AS l FROM information_schema.columns WHERE table_name = 'mcp_tool_logs' AND column_name <> 'id'")).rows[0].l as string;
      await c.query(`INSERT INTO mcp_tool_logs (id, ${others}) SELECT 'pg-late-1', ${others} FROM mcp_tool_logs WHERE status = 'success' AND "timestamp" < '2026-10-02' LIMIT 1`);
    } finally { await c.end(); }
    const r2 = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-04T04:00:00Z']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout + r2.stderr).toContain('restated');
    const ids = delivered(out, 'mcp_daily').map((x) => x.request_id as string);
    expect(ids.sort()).toEqual([...want, 'pg-late-1'].sort());
  }, 240_000);

  it('ClickHouse: a newer version of a delivered call restates its day; the files hold it once, with its new value', async () => {
    const { cfg, out, state } = runConfig('ch', { type: 'clickhouse', config: { host: '127.0.0.1', port: ch.port, protocol: 'http', username: ch.user, password: ch.password, database: ch.database } });
    const r = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-04T03:00:00Z']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(ch.password);
    const want = truth.filter((t) => t.__ts_ms < dayEnd).map((t) => t.id as string).sort();
    expect(delivered(out, 'mcp_daily').map((x) => x.request_id).sort()).toEqual(want);
    const call = truth.find((t) => t.status === 'success' && t.__ts_ms < dayEnd)!;
    await ch.exec(`INSERT INTO mcp_tool_logs SELECT * REPLACE (now64(9) AS ver, 4242 AS latency) FROM mcp_tool_logs FINAL WHERE id = '${call.id}'`);
    const r2 = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-04T04:00:00Z']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout + r2.stderr).toContain('restated as revision 2');
    const again = delivered(out, 'mcp_daily').filter((x) => x.request_id === call.id);
    expect(again.map((x) => x.latency_ms)).toEqual([4242]);
    expect(delivered(out, 'mcp_daily').map((x) => x.request_id).sort()).toEqual(want);
    // The logs export of the same store is untouched by the MCP change.
    expect(r2.stdout + r2.stderr).not.toMatch(/llm_daily[^\n]*restated/);
  }, 240_000);
});

describe('configured exports of mcp_tool_logs: config errors and check', () => {
  const write = (name: string, data: Record<string, unknown>) => {
    const cfg = join(dir, `${name}.json`);
    writeFileSync(cfg, JSON.stringify({ source: { path: sqlite }, log_exports: { enabled: true, exports: [{
      name: 'mcp', enabled: true, schedule: { frequency: 'daily', time: '02:00', timezone: 'UTC' },
      destination: { type: 'file', config: { path: join(dir, `${name}-out`) } }, data: { format: 'jsonl', ...data },
    }] } }));
    return cfg;
  };

  it('a wrong data.table, an LLM filter, group or aggregate key on mcp_tool_logs: one line, exit 78', async () => {
    for (const [data, msg] of [
      [{ table: 'mcp_tool_log' }, 'data.table'],
      [{ table: 'mcp_tool_logs', filters: { providers: ['openai'] } }, 'log_exports.exports[0].data.filters.providers does not apply to mcp_tool_logs'],
      [{ table: 'mcp_tool_logs', include: ['request_logs'] }, 'unknown group "request_logs" of mcp_tool_logs'],
      [{ table: 'mcp_tool_logs', transformations: [{ type: 'aggregate', group_by: ['provider'], metrics: ['calls'] }] }, 'cannot group mcp_tool_logs by "provider"'],
      [{ table: 'mcp_tool_logs', transformations: [{ type: 'aggregate', group_by: ['tool'], metrics: ['total_tokens'] }] }, 'total_tokens does not apply to mcp_tool_logs'],
      [{ table: 'mcp_tool_logs', format: 'report' }, 'the report covers LLM requests'],
      [{ filters: { tools: ['web_search'] } }, 'filters.tools does not apply to logs'],
    ] as Array<[Record<string, unknown>, string]>) {
      const r = await cli(['run', '--config', write(`bad${++n}`, data), '--state-dir', join(dir, `bad-state${n}`), '--now', '2026-10-04T03:00:00Z']);
      expect(r.code, `${JSON.stringify(data)}: ${r.stderr}`).toBe(78);
      expect(r.stderr).toContain(msg);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('bifrost-logs:'))).toHaveLength(1);
    }
  });

  it('check proves mcp_tool_logs readable; an aggregate of MCP calls by server exports cost per server', async () => {
    const cfg = write('agg', { table: 'mcp_tool_logs', transformations: [{ type: 'aggregate', group_by: ['server'], metrics: ['calls', 'total_cost'] }] });
    const c = await cli(['check', '--config', cfg, '--state-dir', join(dir, 'agg-state')]);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    expect(c.stdout).toMatch(new RegExp(`ok {3}log table mcp_tool_logs: ${truth.length} rows`));
    const r = await cli(['export', '--name', 'mcp', '--config', cfg, '--state-dir', join(dir, 'agg-state'), ...win]);
    expect(r.code, r.stderr).toBe(0);
    const out = join(dir, 'agg-out');
    const rows = files(out).filter((f) => f.endsWith('.jsonl')).flatMap((f) => ndjson(readFileSync(join(out, f), 'utf8')));
    const servers = new Set(truth.filter(inWindow).map((t) => t.server_label));
    expect(rows.map((x) => x.server).sort()).toEqual([...servers].sort());
    for (const x of rows) {
      const g = truth.filter((t) => inWindow(t) && t.server_label === x.server);
      expect(x.calls).toBe(g.length);
      expect(x.total_cost).toBeCloseTo(g.reduce((a, t) => a + Number(t.cost ?? 0), 0), 9);
    }
  });
});
