import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { PARALLEL_MIN_ROWS, secondThreadShare, WARM_PARALLEL_MIN_ROWS } from '../../src/source/sqlite/fingerprint-threads.js';
import { combineFingerprints, planSqliteFingerprints, sqliteFingerprints } from '../../src/source/sqlite/fingerprint-sql.js';
import { runFingerprintStatement } from '../../src/source/sqlite/fingerprint-run.js';
import { openSqliteLogDb } from '../../src/source/sqlite/sqlite-open.js';
import { createSqliteDialect } from '../../src/source/sqlite/sqlite-dialect.js';
import { createRecordMapper } from '../../src/record/mapper.js';
import { selectFields } from '../../src/record/fields.js';
import { createWarnings } from '../../src/record/json-cell.js';
import { sameCost } from '../../src/source/fingerprint.js';
import type { WindowFingerprint } from '../../src/source/types.js';

/**
 * The restatement check on two threads: the rows cut in two parts whose sums
 * add up to the one-statement answer, on every read path, and a second
 * thread's part equal to this thread's.
 */
const T0 = Date.parse('2026-10-01T00:00:00Z');
const DAY = 86_400_000;
const week = Array.from({ length: 7 }, (_, d) => ({ start: T0 + d * DAY, end: T0 + (d + 1) * DAY }));
const COLUMNS = [...createRecordMapper(selectFields({}), createWarnings()).columns];
const d = createSqliteDialect(() => []);
/** Fingerprints equal but for the last digits of the cost sums (the order rows were added in). */
function expectSame(a: WindowFingerprint[], b: WindowFingerprint[], what?: string) {
  expect(a.map((f) => ({ ...f, cost: 0 })), what).toEqual(b.map((f) => ({ ...f, cost: 0 })));
  a.forEach((f, i) => expect(sameCost(f.cost, b[i]!.cost), `${what} cost ${f.cost} vs ${b[i]!.cost}`).toBe(true));
}
let dir: string;
/** The three read paths of the plan: Bifrost's covering index, a dense rowid range, and rows spread over rowids. */
const dbs: Record<'cover' | 'dense' | 'sparse', string> = { cover: '', dense: '', sparse: '' };
// The second thread runs the built worker (dist/), as the CLI does.
const dist = (m: string) => import(`../../dist/source/sqlite/${m}.js`);
const { fingerprintOnSecondThread, startFingerprintThread, warmThreadReady } = (await dist('fingerprint-threads')) as typeof import('../../src/source/sqlite/fingerprint-threads.js');
const { SqliteSource } = (await dist('sqlite-source')) as typeof import('../../src/source/sqlite/sqlite-source.js');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-fpt-'));
  dbs.cover = join(dir, 'cover.db');
  writeSqlite(dbs.cover, { rows: 4000, seed: 11, schema: 'newer', start: '2026-09-30T12:00:00Z', days: 8 });
  dbs.dense = join(dir, 'dense.db');
  copyFileSync(dbs.cover, dbs.dense);
  const dense = new Database(dbs.dense);
  dense.exec('DROP INDEX idx_logs_histogram_cover');
  dense.close();
  dbs.sparse = join(dir, 'sparse.db');
  copyFileSync(dbs.dense, dbs.sparse);
  const sparse = new Database(dbs.sparse);
  // Rowids ten apart: any window's rows span ten times their number.
  sparse.exec('UPDATE logs SET rowid = rowid * 10 + 1000000; UPDATE logs SET rowid = rowid - 1000000');
  sparse.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('secondThreadShare', () => {
  it('keeps a small span on one thread', () => {
    expect(secondThreadShare(PARALLEL_MIN_ROWS - 1)).toBe(0);
    // A thread started ahead costs less, so a smaller span is split.
    expect(secondThreadShare(WARM_PARALLEL_MIN_ROWS - 1, true)).toBe(0);
    expect(secondThreadShare(270_000)).toBe(0);
    expect(secondThreadShare(270_000, true)).toBeGreaterThan(0.45);
  });
  it('gives the second thread a little under half, less for one that must start first', () => {
    for (const rows of [600_000, 1_333_000, 50_000_000]) {
      const cold = secondThreadShare(rows);
      const warm = secondThreadShare(rows, true);
      expect(cold).toBeGreaterThan(0);
      expect(cold).toBeLessThan(warm);
      expect(warm).toBeLessThan(0.5);
    }
  });
});

describe('a fingerprint plan cut in two', () => {
  // Positions as shares of the DB's last rowid, so they cut rows out on every copy.
  const cases = (last: number) => [
    { name: 'the week', windows: week, filter: { completedOnly: true } },
    { name: 'one window, a filter and a position', windows: week.slice(2, 3), filter: { completedOnly: true, providers: ['openai'] }, upTo: { kind: 'rowid' as const, value: Math.round(last * 0.8) } },
    { name: 'windows with their own positions', windows: week.map((w, i) => ({ ...w, upTo: { kind: 'rowid' as const, value: Math.round(last * (0.4 + i * 0.08)) } })), filter: { completedOnly: true } },
    { name: 'windows of unequal length', windows: [{ start: T0, end: T0 + 2 * DAY + 3_600_000 }, { start: T0 + 2 * DAY + 3_600_000, end: T0 + 5 * DAY }], filter: { completedOnly: true } },
  ];
  for (const path of ['cover', 'dense', 'sparse'] as const) {
    it(`adds up to the one-statement fingerprints (${path} read)`, () => {
      const { db, schema } = openSqliteLogDb(dbs[path], 'logs');
      try {
        for (const c of cases(db.prepare('SELECT max(rowid) FROM logs').pluck().get() as number)) {
          for (const version of [2, 3] as const) {
            const whole = sqliteFingerprints(db, d, schema, c.filter, c.windows, COLUMNS, c.upTo, version);
            expect(whole.reduce((n, f) => n + f.rows, 0), c.name).toBeGreaterThan(0);
            for (const share of [0.1, 0.48, 0.9]) {
              const plan = planSqliteFingerprints(db, d, schema, c.filter, c.windows, COLUMNS, c.upTo, version, share);
              expect(plan.parts, `${c.name} v${version}`).toHaveLength(2);
              const parts = plan.parts.map((st) => runFingerprintStatement(db, st));
              // Cut near the middle, both parts hold rows of the windows.
              if (share === 0.48) for (const p of parts) expect(p.reduce((n, r) => n + r.n, 0), `${c.name} v${version} ${share}`).toBeGreaterThan(0);
              expectSame(combineFingerprints(plan, parts), whole, `${c.name} v${version} ${share}`);
            }
          }
        }
        // The plan read the path this DB was made for.
        const sql = planSqliteFingerprints(db, d, schema, { completedOnly: true }, week, COLUMNS, undefined, 3, 0.5).parts[0]!.sql;
        expect(sql.includes('INDEXED BY'), sql).toBe(path === 'cover');
        expect(sql.includes('NOT INDEXED'), sql).toBe(path === 'dense');
      } finally { db.close(); }
    });
  }

  it('stays one statement in version 1 (its sums are not cut)', () => {
    const { db, schema } = openSqliteLogDb(dbs.cover, 'logs');
    try {
      const plan = planSqliteFingerprints(db, d, schema, { completedOnly: true }, week, COLUMNS, undefined, 1, 0.5);
      expect(plan.parts).toHaveLength(1);
      expect(combineFingerprints(plan, plan.parts.map((st) => runFingerprintStatement(db, st)))).toEqual(sqliteFingerprints(db, d, schema, { completedOnly: true }, week, COLUMNS, undefined, 1));
    } finally { db.close(); }
  });
});

describe('fingerprintOnSecondThread', () => {
  it('answers what this thread reads for the same statement, in every version', async () => {
    const { db, schema } = openSqliteLogDb(dbs.cover, 'logs');
    try {
      for (const version of [1, 2, 3] as const) {
        const plan = planSqliteFingerprints(db, d, schema, { completedOnly: true }, week, COLUMNS, undefined, version, 0.4);
        for (const st of plan.parts) expect(await fingerprintOnSecondThread({ path: dbs.cover, statement: st })).toEqual(runFingerprintStatement(db, st));
      }
    } finally { db.close(); }
  });

  it('hands the task to a thread started ahead, once', async () => {
    startFingerprintThread();
    expect(warmThreadReady()).toBe(true);
    const { db, schema } = openSqliteLogDb(dbs.cover, 'logs');
    try {
      const st = planSqliteFingerprints(db, d, schema, { completedOnly: true }, week, COLUMNS).parts[0]!;
      const there = await fingerprintOnSecondThread({ path: dbs.cover, statement: st });
      expect(warmThreadReady()).toBe(false);
      expect(there).toEqual(runFingerprintStatement(db, st));
    } finally { db.close(); }
  });

  it('rejects with the reason when its connection cannot open', async () => {
    const { db, schema } = openSqliteLogDb(dbs.cover, 'logs');
    const st = planSqliteFingerprints(db, d, schema, {}, week, COLUMNS).parts[0]!;
    db.close();
    await expect(fingerprintOnSecondThread({ path: join(dir, 'missing.db'), statement: st })).rejects.toThrow(/unable to open/);
  });
});

describe('SqliteSource.fingerprints on two threads', () => {
  it('splits a large span with a thread started ahead and answers as one thread does', async () => {
    const big = join(dir, 'big.db');
    writeSqlite(big, { rows: WARM_PARALLEL_MIN_ROWS + 20_000, seed: 5, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 7 });
    const s = SqliteSource.open(big);
    try {
      const here = s.fingerprintsHere({ completedOnly: true }, week, COLUMNS);
      startFingerprintThread();
      const both = await s.fingerprints({ completedOnly: true }, week, COLUMNS);
      // The thread started ahead took its part.
      expect(warmThreadReady()).toBe(false);
      expectSame(both, here);
      expect(both.reduce((n, f) => n + f.rows, 0)).toBeGreaterThan(WARM_PARALLEL_MIN_ROWS);
    } finally { await s.close(); }
  });
});
