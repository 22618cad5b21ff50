import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { SqliteSource } from '../../src/source/sqlite/sqlite-source.js';
import { createRecordMapper } from '../../src/record/mapper.js';
import { selectFields } from '../../src/record/fields.js';
import { createWarnings } from '../../src/record/json-cell.js';
import type { WindowFingerprint } from '../../src/source/types.js';

/**
 * Version 3 fingerprints: only the changeable columns the record reads, read
 * from Bifrost's covering index when the table has it, with the same result
 * as reading the rows.
 */
const T0 = Date.parse('2026-10-01T00:00:00Z');
const DAY = 86_400_000;
const days = [0, 1, 2].map((d) => ({ start: T0 + d * DAY, end: T0 + (d + 1) * DAY }));
const done = { completedOnly: true };
const columnsOf = (fields: string[] | undefined) => createRecordMapper(selectFields({ fields }), createWarnings()).columns;
const DEFAULT = columnsOf(undefined);
const WITH_CONTENT_STATE = columnsOf(['timestamp', 'request_id', 'cost_usd', 'content_state']);
let dir: string;
let indexed: string;
let plain: string;

/** The statements a block of code prepares on any connection (the source's own included). */
function preparing<T>(f: () => Promise<T>): Promise<{ out: T; sql: string[] }> {
  const sql: string[] = [];
  const orig = Database.prototype.prepare;
  Database.prototype.prepare = function (this: Database.Database, s: string) { sql.push(s); return orig.call(this, s); } as typeof orig;
  return f().then((out) => ({ out, sql })).finally(() => { Database.prototype.prepare = orig; });
}

async function fingerprints(db: string, columns: readonly string[], version?: 2 | 3): Promise<WindowFingerprint[]> {
  const s = SqliteSource.open(db);
  try { return await s.fingerprints(done, days, columns, undefined, version); } finally { await s.close(); }
}

function change(sql: string, day = 1): void {
  for (const db of [indexed, plain]) {
    const w = new Database(db);
    const id = w.prepare(`SELECT id FROM logs WHERE status = 'success' AND cost IS NOT NULL AND timestamp >= ? AND timestamp < ? ORDER BY id LIMIT 1`).pluck().get(new Date(T0 + day * DAY + 3_600_000).toISOString().slice(0, 10), new Date(T0 + (day + 1) * DAY).toISOString().slice(0, 10)) as string;
    w.prepare(`UPDATE logs SET ${sql} WHERE id = ?`).run(id);
    w.close();
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-fp3-'));
  indexed = join(dir, 'indexed.db');
  plain = join(dir, 'plain.db');
  writeSqlite(indexed, { rows: 3000, seed: 5, schema: 'newer', start: '2026-10-01T00:00:00Z', days: 3 });
  copyFileSync(indexed, plain);
  const p = new Database(plain);
  p.exec('DROP INDEX idx_logs_histogram_cover');
  p.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fingerprints, version 3', () => {
  it('read the covering index when the table has it, with the same fingerprints as reading the rows', async () => {
    const { out: viaIndex, sql } = await preparing(() => fingerprints(indexed, DEFAULT));
    expect(sql.some((s) => s.includes('INDEXED BY "idx_logs_histogram_cover"') && s.includes('GROUP BY'))).toBe(true);
    const { out: viaRows, sql: sql2 } = await preparing(() => fingerprints(plain, DEFAULT));
    expect(sql2.some((s) => s.includes('idx_logs_histogram_cover'))).toBe(false);
    expect(viaIndex).toEqual(viaRows);
    expect(viaIndex.every((f) => f.v === 3 && f.rows > 0)).toBe(true);
    expect(viaIndex[0]!.scope).toEqual(['status', 'cost', 'prompt_tokens', 'completion_tokens', 'total_tokens']);
    // The stored scope maps to itself: a stored fingerprint is recomputed exactly.
    expect(await fingerprints(indexed, viaIndex[0]!.scope!)).toEqual(viaIndex);
  });

  it('change with what the record reads, only in the changed window, and not with what it does not', async () => {
    const before = await fingerprints(indexed, DEFAULT);
    const v2Before = await fingerprints(indexed, DEFAULT, 2);
    // input_cost is not in the default record: version 3 stays, version 2 (every changeable column) moves.
    change('input_cost = ifnull(input_cost, 0) + 1');
    expect(await fingerprints(indexed, DEFAULT)).toEqual(before);
    expect((await fingerprints(indexed, DEFAULT, 2))[1]!.hash).not.toBe(v2Before[1]!.hash);
    // A reprice of cost, and deferred usage of the tokens, move their window only, on both paths alike.
    for (const [sql, day] of [['cost = cost * 3 + 0.5', 1], ['total_tokens = ifnull(total_tokens, 0) + 7', 2]] as const) {
      const was = await fingerprints(indexed, DEFAULT);
      change(sql, day);
      const now = await fingerprints(indexed, DEFAULT);
      expect(now[day]!.hash, sql).not.toBe(was[day]!.hash);
      expect(now.filter((_, i) => i !== day)).toEqual(was.filter((_, i) => i !== day));
      expect(await fingerprints(plain, DEFAULT)).toEqual(now);
    }
  });

  it('cover the offload flag when the record reads it', async () => {
    const was = await fingerprints(indexed, WITH_CONTENT_STATE);
    const wasDefault = await fingerprints(indexed, DEFAULT);
    expect(was[0]!.scope).toContain('has_object');
    change('has_object = 1 - ifnull(has_object, 0)', 0);
    expect((await fingerprints(indexed, WITH_CONTENT_STATE))[0]!.hash).not.toBe(was[0]!.hash);
    expect(await fingerprints(indexed, DEFAULT)).toEqual(wasDefault);
    expect(await fingerprints(plain, WITH_CONTENT_STATE)).toEqual(await fingerprints(indexed, WITH_CONTENT_STATE));
  });
});
