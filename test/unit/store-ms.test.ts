import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { storeMs } from '../../src/source/sqlite/store-ms.js';
import { SQLITE_TS_MS } from '../../src/source/sqlite/sqlite-dialect.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

// The truth is SQLite evaluating the SQL expression every other read uses.
const db = new Database(':memory:');
const sql = db.prepare(`SELECT ${SQLITE_TS_MS} FROM (SELECT ? AS "timestamp")`).pluck();

describe('storeMs', () => {
  it('equals SQLITE_TS_MS on every form Bifrost writes, and reads each of them itself', () => {
    const r = rng(42);
    for (let i = 0; i < 20000; i++) {
      const ms = Date.UTC(2020, 0, 1) + Math.floor(r() * 8 * 365 * 86_400_000);
      const off = [0, 0, -840, -720, -570, -300, 60, 330, 345, 540, 840][Math.floor(r() * 11)]!;
      const local = new Date(ms + off * 60_000);
      const date = `${local.getUTCFullYear()}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}`;
      const time = `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}`;
      const digits = String(Math.floor(r() * 1e9)).padStart(9, '0').slice(0, 1 + Math.floor(r() * 9)).replace(/0+$/, '');
      const frac = digits ? `.${digits}` : '';
      const zone = off === 0 ? (r() < 0.5 ? 'Z' : '+00:00') : `${off < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
      const form = Math.floor(r() * 4);
      const text = form === 0 ? `${date} ${time}${frac}${zone}` // Go's default
        : form === 1 ? `${date}T${time}.${local.getUTCMilliseconds()}Z` // migrated, unpadded milliseconds
          : form === 2 ? `${date}T${time}${frac}${zone}`
            : `${date} ${time}${frac}`;
      const got = storeMs(text);
      expect(got, text).not.toBeUndefined();
      expect(got, text).toBe(sql.get(text));
    }
  });

  it('leaves every other text to SQLite, and never disagrees with it', () => {
    const odd = ['2026-09-01', '2026-09-01 10:00', '2026-02-30 10:00:00', '2026-13-01 10:00:00', '2026-09-01 24:00:00', '2026-09-01 10:60:00',
      '2026-09-01 10:00:00+0200', '2026-09-01 10:00:00 +02:00', '2026-09-01 10:00:00+15:00', '2026-09-01t10:00:00z', 'now', '', 'garbage',
      '2026-09-01 10:00:00.', '2026-09-01T10:00:00.Z', '2026-09-01T10:00:00.1234567890123456Z', '0999-09-01 10:00:00', '2026-09-01 10:00:00.5Zjunk',
      '2024-02-29 23:59:59.9999999+00:00', '2026-09-01T10:00:00.999999Z', '2026-09-01T10:00:00.000001Z', '2026-09-01 10:00:00.5+14:00'];
    for (const text of odd) {
      const got = storeMs(text);
      if (got !== undefined) expect(got, text).toBe(sql.get(text));
    }
    expect(storeMs('2024-02-29 23:59:59.9999999+00:00')).toBe(Date.UTC(2024, 1, 29, 23, 59, 59, 999));
    expect(storeMs('2026-09-01T10:00:00.5Z')).toBe(Date.UTC(2026, 8, 1, 10, 0, 0, 5));
    expect(storeMs('2026-02-30 10:00:00')).toBeUndefined();
  });
});
