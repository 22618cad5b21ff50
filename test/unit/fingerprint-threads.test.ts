import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { PARALLEL_MIN_ROWS, secondThreadShare, WARM_PARALLEL_MIN_ROWS } from '../../src/source/sqlite/fingerprint-threads.js';
import { createRecordMapper } from '../../src/record/mapper.js';
import { selectFields } from '../../src/record/fields.js';
import { createWarnings } from '../../src/record/json-cell.js';

/** The restatement check on two threads: the split, and a second thread's answer equal to this thread's. */
const T0 = Date.parse('2026-10-01T00:00:00Z');
const DAY = 86_400_000;
const week = Array.from({ length: 7 }, (_, d) => ({ start: T0 + d * DAY, end: T0 + (d + 1) * DAY }));
const COLUMNS = [...createRecordMapper(selectFields({}), createWarnings()).columns];
let dir: string;
let db: string;
// The second thread runs the built worker (dist/), as the CLI does.
const dist = (m: string) => import(`../../dist/source/sqlite/${m}.js`);
const { fingerprintOnSecondThread, startFingerprintThread, warmThreadReady } = (await dist('fingerprint-threads')) as typeof import('../../src/source/sqlite/fingerprint-threads.js');
const { SqliteSource } = (await dist('sqlite-source')) as typeof import('../../src/source/sqlite/sqlite-source.js');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-fpt-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, { rows: 4000, seed: 11, schema: 'newer', start: '2026-09-30T12:00:00Z', days: 8 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('secondThreadShare', () => {
  it('keeps a small span on one thread', () => {
    expect(secondThreadShare(week, PARALLEL_MIN_ROWS - 1)).toBe(0);
    expect(secondThreadShare(week.slice(0, 1), 10 * PARALLEL_MIN_ROWS)).toBe(0);
    // A thread started ahead costs less, so a smaller span is split.
    expect(secondThreadShare(week, WARM_PARALLEL_MIN_ROWS - 1, true)).toBe(0);
    expect(secondThreadShare(week, 270_000, true)).toBe(3);
    expect(secondThreadShare(week, 270_000)).toBe(0);
  });
  it('gives the second thread the oldest windows, a little under half, and never all of them', () => {
    expect(secondThreadShare(week, 1_333_000)).toBe(3);
    expect(secondThreadShare(week, 50_000_000)).toBe(3);
    expect(secondThreadShare(week.slice(0, 2), 5_000_000)).toBe(1);
    const uneven = [{ start: 0, end: 6 * DAY }, { start: 6 * DAY, end: 7 * DAY }];
    expect(secondThreadShare(uneven, 5_000_000)).toBe(1);
  });
});

describe('fingerprintOnSecondThread', () => {
  it('answers what this thread computes, window by window, in every version', async () => {
    const s = SqliteSource.open(db);
    try {
      for (const version of [1, 2, 3] as const) {
        const here = s.fingerprintsHere({ completedOnly: true }, week, COLUMNS, undefined, version);
        expect(here.reduce((n: number, f: { rows: number }) => n + f.rows, 0)).toBeGreaterThan(3000);
        const there = await fingerprintOnSecondThread({ path: db, table: 'logs', filter: { completedOnly: true }, windows: week, columns: COLUMNS, version });
        expect(there).toEqual(here);
      }
      // Positions and filters travel too.
      const upTo = { kind: 'rowid' as const, value: 2500 };
      const f = { completedOnly: true, providers: ['openai'] };
      expect(await fingerprintOnSecondThread({ path: db, table: 'logs', filter: f, windows: week, columns: COLUMNS, upTo })).toEqual(s.fingerprintsHere(f, week, COLUMNS, upTo));
    } finally { await s.close(); }
  });

  it('hands the task to a thread started ahead, once', async () => {
    startFingerprintThread();
    expect(warmThreadReady()).toBe(true);
    const s = SqliteSource.open(db);
    try {
      const there = await fingerprintOnSecondThread({ path: db, table: 'logs', filter: { completedOnly: true }, windows: week, columns: COLUMNS });
      expect(warmThreadReady()).toBe(false);
      expect(there).toEqual(s.fingerprintsHere({ completedOnly: true }, week, COLUMNS));
    } finally { await s.close(); }
  });

  it('rejects with the reason when its connection cannot open', async () => {
    await expect(fingerprintOnSecondThread({ path: join(dir, 'missing.db'), table: 'logs', filter: {}, windows: week, columns: COLUMNS })).rejects.toThrow(/does not exist/);
  });
});
