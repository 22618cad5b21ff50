import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parquetReadObjects } from 'hyparquet';
// @ts-expect-error plain JS module
import { generateRows, writeSqlite } from '../../fixtures/generator.mjs';
import { cli, ndjson } from '../support/cli.js';
import { checkParquetLayout, duckdb } from '../support/parquet.js';
import { isCompleted, type TruthRow } from '../support/truth.js';

// Above the size at which exports start encoding threads (PARALLEL_MIN_ROWIDS).
const OPTS = { rows: 90_000, seed: 33, schema: 'newer', start: '2026-10-01T00:00:00Z', days: 6 };
const SINCE = '2026-10-01T09:00:00Z';
const UNTIL = '2026-10-06T15:00:00Z';
let dir: string;
let db: string;
let want: string[];
let n = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-par-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, OPTS);
  want = ([...generateRows(OPTS)] as TruthRow[])
    .filter((t) => t.__ts_ms >= Date.parse(SINCE) && t.__ts_ms < Date.parse(UNTIL) && isCompleted(t))
    .map((t) => t.id).sort();
}, 180_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const dataFiles = (d: string) => readdirSync(d).filter((f) => !f.startsWith('.') && !f.endsWith('.manifest.json')).sort();
const manifest = (d: string) => JSON.parse(readFileSync(join(d, readdirSync(d).find((f) => f.endsWith('.manifest.json'))!), 'utf8'));

async function exportWith(threads: number, args: string[], transforms = ['--anonymize', 'customer_id', '--hash-key-env', 'HK']) {
  const out = join(dir, `out${++n}`);
  const r = await cli(['export', '--db', db, '--since', SINCE, '--until', UNTIL, '--dest', 'file', '--out', out, '--state-dir', join(dir, 'state'),
    '--max-rows-per-file', '7777', '--verbose', ...transforms, ...args], { env: { BIFROST_LOGS_THREADS: String(threads), HK: 'k3y' } });
  expect(r.code, r.stderr).toBe(0);
  // Proof of which path ran: one thread never starts the encoding threads.
  if (threads > 1) expect(r.stderr).toMatch(args.includes('parquet') ? new RegExp(`reading and encoding Parquet row groups on ${threads} threads`) : new RegExp(`reading and encoding on ${threads} threads`));
  else expect(r.stderr).not.toContain('encoding');
  return out;
}

describe('encoding threads', () => {
  // Payload columns put quotes, commas and (in malformed JSON kept as text) line breaks into CSV cells,
  // and odd part sizes cut pre-encoded chunks in the middle.
  it.each([
    ['jsonl', ['--format', 'jsonl', '--include', 'request_logs,response_logs,error_logs']],
    ['csv', ['--format', 'csv', '--include', 'request_logs,response_logs,error_logs,traces']],
    ['csv.gz', ['--format', 'csv', '--gzip']],
  ])('%s: the same bytes, parts and warnings as one thread, and exactly the SQL row set', async (kind, args) => {
    const one = await exportWith(1, args);
    const two = await exportWith(2, args);
    const files = dataFiles(one);
    expect(files.length).toBe(Math.ceil(want.length / 7777));
    expect(dataFiles(two)).toEqual(files);
    for (const f of files) expect(readFileSync(join(two, f)).equals(readFileSync(join(one, f))), f).toBe(true);
    const m1 = manifest(one);
    const m2 = manifest(two);
    expect(m2.files.map((f: { rows: number; sha256: string }) => [f.rows, f.sha256])).toEqual(m1.files.map((f: { rows: number; sha256: string }) => [f.rows, f.sha256]));
    expect(m2.warnings).toEqual(m1.warnings);
    expect(m2.rows).toBe(want.length);
    const ids: string[] = [];
    let lineBreaks = 0;
    for (const f of files) {
      const raw = readFileSync(join(two, f));
      const text = (f.endsWith('.gz') ? gunzipSync(raw) : raw).toString();
      const recs = kind === 'jsonl' ? ndjson(text) : parseCsv(text, { columns: true }) as Array<Record<string, string>>;
      for (const r of recs) {
        ids.push(r.request_id as string);
        if (Object.values(r).some((v) => typeof v === 'string' && v.includes('\n'))) lineBreaks++;
      }
    }
    expect(ids.sort()).toEqual(want);
    // The quote-aware cut of CSV chunks is exercised by cells that hold line breaks.
    if (kind === 'csv') expect(lineBreaks).toBeGreaterThan(1000);
  });

  it('csv without transforms: cells written straight from the rows equal the record path\'s, on one thread and on two', async () => {
    const args = ['--format', 'csv', '--include', 'request_logs,response_logs,error_logs,traces'];
    const one = await exportWith(1, args, []);
    const two = await exportWith(2, args, []);
    // The same export through the record path (a transform turns the row writer off), for every column but the transformed one.
    const viaRecords = await exportWith(2, args);
    const files = dataFiles(one);
    expect(dataFiles(two)).toEqual(files);
    for (const f of files) expect(readFileSync(join(two, f)).equals(readFileSync(join(one, f))), f).toBe(true);
    let rows = 0;
    for (const f of files) {
      const direct = parseCsv(readFileSync(join(one, f)), { columns: true }) as Array<Record<string, string>>;
      const records = parseCsv(readFileSync(join(viaRecords, f)), { columns: true }) as Array<Record<string, string>>;
      expect(direct.length).toBe(records.length);
      direct.forEach((r, i) => {
        expect(r.customer_id === '').toBe(records[i]!.customer_id === '');
        expect({ ...r, customer_id: null }).toEqual({ ...records[i], customer_id: null });
      });
      rows += direct.length;
    }
    expect(rows).toBe(want.length);
    expect(manifest(two).warnings).toEqual(manifest(viaRecords).warnings);
  });

  const text = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  const readParquet = (file: string) => { const b = readFileSync(file); return parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer }); };

  it('parquet: row groups made on the threads and stitched into each part hold the same rows and values', async () => {
    const args = ['--format', 'parquet', '--include', 'request_logs,error_logs'];
    const one = await exportWith(1, args);
    const two = await exportWith(2, args);
    const files = dataFiles(one);
    expect(files.length).toBe(Math.ceil(want.length / 7777));
    expect(dataFiles(two)).toEqual(files);
    const ids: string[] = [];
    const stitched: number[] = [];
    for (const f of files) {
      const a = await readParquet(join(one, f));
      const b = await readParquet(join(two, f));
      expect(text(b), f).toBe(text(a));
      for (const r of b) ids.push(r.request_id as string);
      const groups = checkParquetLayout(readFileSync(join(two, f)));
      stitched.push(groups.length);
      expect(groups.reduce((x, g) => x + g.rows, 0)).toBe(b.length);
    }
    // Parts stitched from several groups: a part is cut inside a thread's range, which is encoded again up to the
    // cut, and the next part starts with the rest of it (the first may fit in the first range's rows).
    expect(stitched.slice(1).every((g) => g > 1), stitched.join()).toBe(true);
    expect(ids.sort()).toEqual(want);
    expect(manifest(two).files.map((f: { rows: number }) => f.rows)).toEqual(manifest(one).files.map((f: { rows: number }) => f.rows));
    expect(manifest(two).warnings).toEqual(manifest(one).warnings);
    // DuckDB reads the stitched files, types and all, to the same totals.
    const totals = (d: string) => duckdb(`SELECT count(*)::INT AS n, count(DISTINCT request_id)::INT AS ids, round(sum(cost_usd), 6) AS cost, sum(input_tokens)::BIGINT AS input, sum(output_tokens)::BIGINT AS output,
      any_value(typeof("timestamp")) AS ts FROM read_parquet('${d}/*.parquet')`);
    const [t2] = await totals(two);
    expect(t2).toEqual((await totals(one))[0]);
    expect(t2).toMatchObject({ n: want.length, ids: want.length, ts: 'TIMESTAMP WITH TIME ZONE' });
  });

  it('parquet: rows with large payloads are cut into row groups by bytes, on the threads and on one', async () => {
    // About 75 MB of message text in 1,500 rows in the middle of the window.
    const heavy = join(dir, 'heavy.db');
    copyFileSync(db, heavy);
    const h = new Database(heavy);
    const big = h.prepare(`UPDATE logs SET input_history = json_array(json_object('role', 'user', 'content', printf('%.*c', 50000, 'x') || id)) WHERE rowid IN (SELECT rowid FROM logs WHERE status <> 'processing' AND rowid > 30000 ORDER BY rowid LIMIT 1500)`).run();
    h.close();
    expect(big.changes).toBe(1500);
    const run = async (threads: number) => {
      const out = join(dir, `heavy${threads}`);
      const r = await cli(['export', '--db', heavy, '--since', SINCE, '--until', UNTIL, '--dest', 'file', '--out', out, '--state-dir', join(dir, 'state'),
        '--format', 'parquet', '--include', 'request_logs', '--verbose'], { env: { BIFROST_LOGS_THREADS: String(threads) } });
      expect(r.code, r.stderr).toBe(0);
      return out;
    };
    const one = await run(1);
    const two = await run(2);
    const [f] = dataFiles(two);
    const a = await readParquet(join(one, f!));
    const b = await readParquet(join(two, f!));
    expect(b.length).toBe(want.length);
    expect(text(b)).toBe(text(a));
    // Some of the updated rows lie outside the window or keep their content hidden.
    const long = (rows: Array<Record<string, unknown>>) => rows.filter((r) => String(r.messages).length > 50_000).length;
    expect(long(b)).toBe(long(a));
    expect(long(b)).toBeGreaterThan(1000);
    // About 16 MB of values per group: the heavy rows make groups of a few hundred rows on both paths.
    for (const d of [one, two]) {
      const groups = checkParquetLayout(readFileSync(join(d, f!)));
      expect(Math.max(...groups.map((g) => g.bytes)), d).toBeLessThan(17 << 20);
      expect(groups.filter((g) => g.bytes > 15 << 20 && g.rows < 400).length, d).toBeGreaterThanOrEqual(3);
    }
    const [t] = await duckdb(`SELECT count(*)::INT AS n, max(length(messages))::INT AS longest FROM read_parquet('${two}/*.parquet')`);
    expect(t).toMatchObject({ n: want.length });
    expect(t!.longest).toBeGreaterThan(50_000);
  });
});
