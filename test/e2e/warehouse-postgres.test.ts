import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { startPostgres } from '../support/services.js';
import { writeSourceDb } from '../support/source-db.js';

/**
 * `export --dest postgres` end to end: the built binary reads a Bifrost SQLite
 * DB and loads one window into embedded PostgreSQL, twice; the table must hold
 * exactly the window's completed rows, counted here independently.
 */

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
    const all = writeSourceDb(dbPath, { rows: 1500 });
    const url = await server.createDatabase('e2e_export');

    // The window: whole hours in the middle half of the data, measured from the DB itself.
    expect(all.every((r) => Number.isFinite(r.ms))).toBe(true);
    const first = Math.min(...all.map((r) => r.ms));
    const last = Math.max(...all.map((r) => r.ms));
    const HOUR = 3_600_000;
    const since = Math.ceil((first + (last - first) / 4) / HOUR) * HOUR;
    const until = Math.max(since + HOUR, Math.floor((last - (last - first) / 4) / HOUR) * HOUR);
    const expected = all.filter((r) => r.ms >= since && r.ms < until && r.status !== 'processing');
    expect(expected.length, 'rows in the window').toBeGreaterThan(10);

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
