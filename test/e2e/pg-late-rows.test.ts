import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
// @ts-expect-error plain JS module
import { generateRows, loadPostgres } from '../../fixtures/generator.mjs';
import { cli, ndjson } from '../support/cli.js';
import { startPostgres } from '../support/services.js';
import { isCompleted, type TruthRow } from '../support/truth.js';

/**
 * A Postgres store as Bifrost's `logs_add_inc_number_column` migration leaves it: the rows written before
 * the migration keep a NULL inc_number, later inserts take the sequence (from 1). Scheduled exports deliver
 * every row once, and rows inserted after an export (stamped inside delivered windows) arrive as late parts
 * of their own windows, exactly once; a pre-migration row that was still processing is delivered once it
 * finishes.
 */
const OPTS = { rows: 1600, seed: 71, schema: 'newer', start: '2026-10-01T00:00:00Z', days: 3 };
const OLD = 700; // rows inserted before the migration

let dir: string;
let url: string;
let stop: (() => Promise<void>) | undefined;
let truth: TruthRow[];

async function sql<T = any>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try { return (await c.query(text, params)).rows as T[]; } finally { await c.end(); }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-pglate-'));
  const p = await startPostgres();
  stop = p.stop;
  url = await p.createDatabase('bifrost');
  await loadPostgres(url, OPTS);
  truth = [...generateRows(OPTS)] as TruthRow[];
  // Before the migration: no counter. After it: the sequence, restarted at 1 for the later inserts.
  await sql('ALTER TABLE logs ALTER COLUMN inc_number DROP NOT NULL');
  await sql('UPDATE logs SET inc_number = NULL WHERE inc_number <= $1', [OLD]);
  await sql('UPDATE logs SET inc_number = inc_number - $1 WHERE inc_number IS NOT NULL', [OLD]);
  await sql(`SELECT setval(pg_get_serial_sequence('logs', 'inc_number'), (SELECT max(inc_number) FROM logs))`);
}, 300_000);
afterAll(async () => {
  await stop?.();
  rmSync(dir, { recursive: true, force: true });
});

const out = () => join(dir, 'out');
const state = () => join(dir, 'state');
const cfg = () => join(dir, 'cfg.json');
const run = (now: string) => cli(['run', '--config', cfg(), '--state-dir', state(), '--now', now, '--json']);
const files = (d: string) => (existsSync(d) ? readdirSync(d, { recursive: true }).map(String).sort() : []);
function delivered(): string[] {
  const ids: string[] = [];
  for (const f of files(out()).filter((x) => x.endsWith('.jsonl.gz'))) for (const r of ndjson(gunzipSync(readFileSync(join(out(), f))).toString())) ids.push(r.request_id);
  return ids.sort();
}
const expectedIds = (start: string, end: string) => truth.filter((t) => isCompleted(t) && t.__ts_ms >= Date.parse(start) && t.__ts_ms < Date.parse(end)).map((t) => t.id).sort();

describe('late rows on a Postgres table whose first rows have no inc_number', () => {
  it('delivers every row once, then late inserts as late parts of their windows, and a finished pre-migration row', async () => {
    const nulls = await sql<{ n: number; m: number }>('SELECT count(*) FILTER (WHERE inc_number IS NULL)::int AS n, max(inc_number)::int AS m FROM logs');
    expect(nulls[0]).toEqual({ n: OLD, m: OPTS.rows - OLD });
    // A pre-migration row still processing when the windows are delivered (NULL inc_number, inside a window).
    const proc = truth.find((t, i) => i < OLD && t.status === 'processing' && t.__ts_ms >= Date.parse('2026-10-01T02:00:00Z'))!;
    expect(proc).toBeDefined();
    writeFileSync(cfg(), JSON.stringify({
      source: { url },
      log_exports: {
        enabled: true,
        exports: [{
          name: 'daily', enabled: true,
          schedule: { frequency: 'daily', time: '02:00', timezone: 'UTC' },
          backfill_from: '2026-10-01',
          destination: { type: 'file', config: { path: out(), prefix: '{year}/{month}/{day}/' } },
          data: { format: 'jsonl', compression: 'gzip' },
        }],
      },
    }));
    const first = await run('2026-10-04T03:00:00Z');
    expect(first.code, first.stderr).toBe(0);
    const all = expectedIds('2026-10-01T00:00:00Z', '2026-10-04T02:00:00Z');
    expect(delivered()).toEqual(all);
    expect(all.filter((id) => truth.findIndex((t) => t.id === id) < OLD).length).toBeGreaterThan(0);

    // Late inserts take the sequence; their timestamps fall in windows already delivered.
    const cols = (await sql<{ column_name: string }>(`SELECT column_name FROM information_schema.columns WHERE table_name = 'logs' AND column_name <> 'inc_number' ORDER BY ordinal_position`)).map((c) => `"${c.column_name}"`);
    const base = truth.find((t) => t.status === 'success')!.id;
    const late = [['late-a', '2026-10-01T10:00:00.250Z'], ['late-b', '2026-10-02T01:59:59.999Z'], ['late-c', '2026-10-02T02:00:00Z']] as const;
    for (const [id, ts] of late) {
      await sql(`INSERT INTO logs (${cols.join(',')}) SELECT ${cols.map((c) => (c === '"id"' ? '$1' : c === '"timestamp"' || c === '"created_at"' ? '$2::timestamptz' : c)).join(',')} FROM logs WHERE id = $3`, [id, ts, base]);
    }
    expect((await sql('SELECT inc_number FROM logs WHERE id LIKE $1 ORDER BY inc_number', ['late-%'])).map((r) => Number(r.inc_number))).toEqual([901, 902, 903]);
    const second = await run('2026-10-04T03:10:00Z');
    expect(second.code, second.stderr).toBe(0);
    const ev = ndjson(second.stdout).filter((e) => e.event === 'finished');
    expect(ev.map((e) => [e.kind, e.window_start, e.rows])).toEqual([['late', '2026-10-01T02:00:00.000Z', 2], ['late', '2026-10-02T02:00:00.000Z', 1]]);
    const want = [...all, ...late.map((l) => l[0])].sort();
    expect(delivered()).toEqual(want);

    // The pre-migration processing row finishes (inc_number stays NULL): delivered once, in its window.
    await sql(`UPDATE logs SET status = 'success' WHERE id = $1`, [proc.id]);
    const third = await run('2026-10-04T03:20:00Z');
    expect(third.code, third.stderr).toBe(0);
    expect(delivered()).toEqual([...want, proc.id].sort());
    const idle = await run('2026-10-04T03:30:00Z');
    expect(ndjson(idle.stdout).filter((e) => e.event === 'finished')).toEqual([]);
    expect(delivered()).toEqual([...want, proc.id].sort());
    const v = await cli(['verify', '--config', cfg(), '--state-dir', state()]);
    expect(v.code, v.stderr).toBe(0);
  });
});
