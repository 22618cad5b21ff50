import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { SqliteSource } from '../../src/source/sqlite/sqlite-source.js';

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
});
