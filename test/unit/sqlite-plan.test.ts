import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import Database from 'better-sqlite3';
import { SqliteSource } from '../../src/source/sqlite/sqlite-source.js';
import { parseStoreTimestamp } from '../../src/util/time.js';

let dir: string;
let src: SqliteSource;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-plan-'));
  writeSqlite(join(dir, 'logs.db'), { rows: 2000, seed: 1, schema: 'v1.5' });
  src = SqliteSource.open(join(dir, 'logs.db'));
});
afterAll(async () => { await src.close(); rmSync(dir, { recursive: true, force: true }); });

describe('time filters are exact and use the timestamp index', () => {
  it('EXPLAIN QUERY PLAN searches the timestamp index', () => {
    const plan = src.explain({ start: Date.parse('2026-10-02T00:00:00Z'), end: Date.parse('2026-10-03T00:00:00Z') });
    // e.g. "SEARCH logs USING COVERING INDEX idx_logs_timestamp (timestamp>? AND timestamp<?)"
    expect(plan.join('\n')).toMatch(/SEARCH logs USING (COVERING )?INDEX \S*timestamp\S* \(timestamp>\? AND timestamp<\?\)/);
    expect(plan.join('\n')).not.toMatch(/SCAN logs/);
  });
  it('an export page resumes a rowid range scan instead of re-sorting', async () => {
    const pages = [];
    for await (const p of src.read({ filter: { start: Date.parse('2026-10-02T00:00:00Z'), end: Date.parse('2026-10-03T00:00:00Z') }, columns: ['id'], pageSize: 50 })) pages.push(p);
    const pos = pages.flatMap((p) => p.rows.map((r) => r[p.columns.indexOf('__pos')] as number));
    expect(pages.length).toBeGreaterThan(2);
    expect([...pos].sort((a, b) => a - b)).toEqual(pos);
    expect(new Set(pos).size).toBe(pos.length);
  });

  it('the rowid span of a window is exactly its first and last row, found in the index', async () => {
    // Truth: every row's time parsed in JS (not by the SQL expression), and the rowids inside each window.
    const db = new Database(join(dir, 'logs.db'), { readonly: true });
    const all = db.prepare('SELECT rowid AS r, "timestamp" AS t FROM logs').all() as Array<{ r: number; t: string }>;
    db.close();
    const H = 3_600_000;
    const base = Date.parse('2026-10-01T00:00:00Z');
    const windows: Array<[number | undefined, number | undefined]> = [
      [base + 2 * 24 * H, base + 3 * 24 * H], // a day
      [base + 50 * H + 1234, base + 51 * H], // an hour, off the minute
      [base + 30 * H, base + 130 * H], // four days and a bit: an inner range and two margins
      [base - 5 * 24 * H, base + 24 * H + 17], // starts before the data
      [base + 100 * H, undefined], // open-ended
      [undefined, base + 40 * H],
      [base + 400 * H, base + 500 * H], // after the data
    ];
    for (const [start, end] of windows) {
      const inside = all.filter(({ t }) => { const ms = parseStoreTimestamp(t); return (start === undefined || ms >= start) && (end === undefined || ms < end); }).map((x) => x.r);
      const span = await src.readSpan({ filter: { start, end }, columns: [] });
      if (!inside.length) expect(span[1] - span[0]).toBeLessThanOrEqual(0);
      else expect(span, `${start}..${end}`).toEqual([Math.min(...inside) - 1, Math.max(...inside)]);
    }
  });
});
