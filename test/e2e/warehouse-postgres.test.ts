import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, ROOT } from '../support/cli.js';
import { startPostgres } from '../support/services.js';

/**
 * `export --dest postgres` end to end: the built binary reads a Bifrost SQLite
 * DB and loads one window into embedded PostgreSQL, twice; the table must hold
 * exactly the window's completed rows, counted here independently.
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
      const ms = start + Math.floor(rnd() * 3 * 3_600_000);
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
  for (const rel of ['fixtures/generator.mjs', 'test/fixtures/generator.mjs']) {
    const file = join(ROOT, rel);
    if (!existsSync(file)) continue;
    const gen = (await import(pathToFileURL(file).href)) as { writeSqlite?: (p: string, o: { rows: number; seed: number; schema: string }) => unknown };
    if (typeof gen.writeSqlite === 'function') {
      await gen.writeSqlite(path, { rows: 1500, seed: 42, schema: 'v1.5' });
      return `fixtures generator (${rel})`;
    }
  }
  writeOwnSqlite(path, 600);
  return 'built in the test';
}

/** Store timestamps to epoch ms, independently of the CLI's parser (the forms Bifrost writes). */
function tsMs(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
  if (!m) return NaN;
  const [, d, t, frac, zone] = m;
  let ms = 0;
  if (frac) ms = zone === 'Z' && text.charAt(10) === 'T' ? Math.min(999, Number.parseInt(frac, 10)) : Math.min(999, Math.round(Number(`0.${frac}`) * 1000));
  const z = !zone || zone === 'Z' ? 'Z' : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
  return Date.parse(`${d}T${t}${z}`) + ms;
}

let server: Awaited<ReturnType<typeof startPostgres>>;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-e2e-pg-'));
  server = await startPostgres();
}, 180_000);

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('export --dest postgres', () => {
  it('loads exactly the window\'s completed rows, and again on a re-run', async () => {
    const dbPath = join(dir, 'logs.db');
    const origin = await writeSourceDb(dbPath);
    const url = await server.createDatabase('e2e_export');

    // The window: whole hours in the middle half of the data, measured from the DB itself.
    const src = new Database(dbPath, { readonly: true });
    const all = (src.prepare('SELECT "id", "timestamp", "status", "cost", "prompt_tokens" FROM logs').all() as Array<{ id: string; timestamp: string; status: string; cost: number | null; prompt_tokens: number | null }>)
      .map((r) => ({ ...r, ms: tsMs(r.timestamp) }));
    src.close();
    expect(all.every((r) => Number.isFinite(r.ms))).toBe(true);
    const first = Math.min(...all.map((r) => r.ms));
    const last = Math.max(...all.map((r) => r.ms));
    const HOUR = 3_600_000;
    const since = Math.ceil((first + (last - first) / 4) / HOUR) * HOUR;
    const until = Math.max(since + HOUR, Math.floor((last - (last - first) / 4) / HOUR) * HOUR);
    const expected = all.filter((r) => r.ms >= since && r.ms < until && r.status !== 'processing');
    expect(expected.length, `rows in the window (${origin})`).toBeGreaterThan(10);

    const args = ['export', '--db', dbPath, '--dest', 'postgres', '--url', url, '--schema', 'public', '--table', 'logs_export',
      '--since', new Date(since).toISOString(), '--until', new Date(until).toISOString()];
    const envs = { XDG_STATE_HOME: join(dir, 'state'), NO_COLOR: '1' };

    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      for (let run = 1; run <= 2; run++) {
        const r = await cli(args, { env: envs });
        expect(r.code, `run ${run}: ${r.stderr}`).toBe(0);
        expect(r.stderr).not.toContain(new URL(url).password);
        const rows = (await admin.query('SELECT request_id, "timestamp", cost_usd, input_tokens FROM public.logs_export ORDER BY request_id')).rows;
        expect(rows.map((x) => x.request_id)).toEqual(expected.map((x) => x.id).sort());
        for (const x of rows) {
          const ms = (x.timestamp as Date).getTime();
          expect(ms >= since && ms < until).toBe(true);
        }
        const sums = (await admin.query('SELECT SUM(cost_usd) AS cost, SUM(input_tokens)::bigint::text AS tokens FROM public.logs_export')).rows[0];
        expect(Number(sums.cost ?? 0)).toBeCloseTo(expected.reduce((a, x) => a + (x.cost ?? 0), 0), 9);
        expect(sums.tokens ?? '0').toBe(String(expected.reduce((a, x) => a + (x.prompt_tokens ?? 0), 0)));
      }
      const types = Object.fromEntries((await admin.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'logs_export'`)).rows.map((c) => [c.column_name, c.data_type]));
      expect(types).toMatchObject({ timestamp: 'timestamp with time zone', request_id: 'text', status_code: 'integer', cost_usd: 'double precision' });
      const idx = await admin.query(`SELECT indexdef FROM pg_indexes WHERE tablename = 'logs_export'`);
      expect(idx.rows.map((r) => r.indexdef).join('\n')).toMatch(/UNIQUE INDEX .* \(request_id\)/);

      // Every include group (JSON payloads, booleans, traces…) into a second table: the same row set.
      const wide = await cli([...args.slice(0, -6), '--table', 'logs_wide', '--include', 'request_logs,response_logs,error_logs,metrics,traces', ...args.slice(-4)], { env: envs });
      expect(wide.code, wide.stderr).toBe(0);
      const ids = (await admin.query('SELECT request_id FROM public.logs_wide ORDER BY request_id')).rows.map((x) => x.request_id);
      expect(ids).toEqual(expected.map((x) => x.id).sort());
      const wideTypes = Object.fromEntries((await admin.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'logs_wide'`)).rows.map((c) => [c.column_name, c.data_type]));
      expect(wideTypes).toMatchObject({ messages: 'jsonb', params: 'jsonb', stream: 'boolean', total_tokens: 'integer', cache_hit: 'boolean', routing_engines: 'jsonb' });
    } finally {
      await admin.end();
    }
  }, 180_000);
});
