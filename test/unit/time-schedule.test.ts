import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { createIsoFormatter, parseStoreTimestamp, parseTimeArg, compactStamp } from '../../src/util/time.js';
import { SQLITE_TS_MS } from '../../src/source/sqlite/sqlite-dialect.js';
import { dueWindows, nextSlot, slotAtOrBefore } from '../../src/run/schedule.js';
import { cronSpec } from '../../src/cli/commands/cron.js';
import type { Schedule } from '../../src/run/job.js';

const iso = (ms: number) => new Date(ms).toISOString();

describe('store timestamps', () => {
  const cases: Array<[string, string]> = [
    ['2026-05-12 06:59:08.123456789+00:00', '2026-05-12T06:59:08.123Z'],
    ['2026-05-12 06:59:08+00:00', '2026-05-12T06:59:08.000Z'],
    ['2026-05-12 06:59:08.1+00:00', '2026-05-12T06:59:08.100Z'],
    ['2026-05-12T06:59:08.5Z', '2026-05-12T06:59:08.005Z'],
    ['2026-05-12T06:59:08.50Z', '2026-05-12T06:59:08.050Z'],
    ['2026-05-12T06:59:08.500Z', '2026-05-12T06:59:08.500Z'],
    ['2025-11-19 17:25:04.12+05:30', '2025-11-19T11:55:04.120Z'],
    ['2025-11-19 01:00:00-07:00', '2025-11-19T08:00:00.000Z'],
    ['2026-05-12 06:59:08', '2026-05-12T06:59:08.000Z'],
  ];
  it.each(cases)('parses %s in JS', (text, want) => {
    expect(iso(parseStoreTimestamp(text))).toBe(want);
  });
  it.each(cases)('parses %s in SQL, identically', (text, want) => {
    const db = new Database(':memory:');
    const got = db.prepare(`SELECT ${SQLITE_TS_MS} AS ms FROM (SELECT ? AS "timestamp")`).get(text) as { ms: number };
    expect(iso(got.ms)).toBe(want);
    db.close();
  });
  it('formats instants exactly as toISOString, in any order', () => {
    const f = createIsoFormatter();
    let x = 7;
    const rand = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
    let t = Date.parse('2026-10-01T23:59:58.990Z');
    for (let i = 0; i < 20_000; i++) {
      t += i % 1000 === 0 ? -Math.floor(rand() * 86_400_000) : Math.floor(rand() * 900) - 100;
      expect(f(t)).toBe(new Date(t).toISOString());
    }
    for (const v of [0, 253402300799999, Date.parse('2024-02-29T12:00:00Z'), -1, 253402300800000]) expect(f(v)).toBe(new Date(v).toISOString());
  });
  it('rejects text that is not a time', () => {
    expect(parseStoreTimestamp('yesterdayish')).toBeNaN();
  });
});

describe('time arguments', () => {
  const now = Date.parse('2026-10-05T12:00:00Z');
  it('takes RFC 3339, dates and relative forms', () => {
    expect(iso(parseTimeArg('2026-10-05T00:00:00Z', now))).toBe('2026-10-05T00:00:00.000Z');
    expect(iso(parseTimeArg('2026-10-05', now))).toBe('2026-10-05T00:00:00.000Z');
    expect(iso(parseTimeArg('2026-10-05', now, 'Europe/Berlin'))).toBe('2026-10-04T22:00:00.000Z');
    expect(iso(parseTimeArg('24h', now))).toBe('2026-10-04T12:00:00.000Z');
    expect(iso(parseTimeArg('7d', now))).toBe('2026-09-28T12:00:00.000Z');
  });
  it('refuses nonsense with a usage error (64)', () => {
    expect(() => parseTimeArg('yesterdayish', now)).toThrow(expect.objectContaining({ exitCode: 64 }));
  });
  it('names windows compactly', () => {
    expect(compactStamp(Date.parse('2026-10-01T02:00:00Z'))).toBe('20261001T020000Z');
  });
});

describe('schedules', () => {
  const daily = (time: string, timezone = 'UTC'): Schedule => ({ frequency: 'daily', time, timezone });
  it('daily at 02:00 covers the 24 hours before 02:00', () => {
    const s = daily('02:00');
    const slot = slotAtOrBefore(s, Date.parse('2026-10-05T03:00:00Z'));
    expect(iso(slot)).toBe('2026-10-05T02:00:00.000Z');
    expect(iso(nextSlot(s, slot))).toBe('2026-10-06T02:00:00.000Z');
  });
  it('daily at 02:30 in New York survives the spring-forward day that has no 02:30', () => {
    const s = daily('02:30', 'America/New_York');
    // 2026-03-08 is the US spring-forward day: 02:30 does not exist, the slot moves to 03:30 EDT.
    const w = dueWindows(s, { now: Date.parse('2026-03-10T12:00:00Z'), settleLagMs: 0, lastEnd: Date.parse('2026-03-06T07:30:00Z') });
    expect(w.map((x) => [iso(x.start), iso(x.end)])).toEqual([
      ['2026-03-06T07:30:00.000Z', '2026-03-07T07:30:00.000Z'],
      ['2026-03-07T07:30:00.000Z', '2026-03-08T07:30:00.000Z'],
      ['2026-03-08T07:30:00.000Z', '2026-03-09T06:30:00.000Z'],
      ['2026-03-09T06:30:00.000Z', '2026-03-10T06:30:00.000Z'],
    ]);
    // The DST day is 23 hours long; no window is lost or doubled.
    expect((w[2]!.end - w[2]!.start) / 3_600_000).toBe(23);
  });
  it('daily in New York across fall-back is 25 hours long', () => {
    const s = daily('02:30', 'America/New_York');
    const w = dueWindows(s, { now: Date.parse('2026-11-03T12:00:00Z'), settleLagMs: 0, lastEnd: Date.parse('2026-10-31T06:30:00Z') });
    expect(w.map((x) => (x.end - x.start) / 3_600_000)).toEqual([25, 24, 24]) // 2026-11-01 is the fall-back day;
  });
  it('monthly on day 31 clamps to the last day of short months', () => {
    const s: Schedule = { frequency: 'monthly', time: '00:00', timezone: 'UTC', day: 31 };
    const w = dueWindows(s, { now: Date.parse('2026-05-01T00:00:00Z'), settleLagMs: 0, lastEnd: Date.parse('2026-01-31T00:00:00Z') });
    expect(w.map((x) => iso(x.end).slice(0, 10))).toEqual(['2026-02-28', '2026-03-31', '2026-04-30']);
  });
  it('weekly on a weekday', () => {
    const s: Schedule = { frequency: 'weekly', time: '06:00', timezone: 'UTC', day: 'monday' };
    expect(iso(slotAtOrBefore(s, Date.parse('2026-10-08T00:00:00Z')))).toBe('2026-10-05T06:00:00.000Z');
  });
  it('hourly at minute 15', () => {
    const s: Schedule = { frequency: 'hourly', time: '00:15', timezone: 'UTC' };
    expect(iso(slotAtOrBefore(s, Date.parse('2026-10-08T10:14:00Z')))).toBe('2026-10-08T09:15:00.000Z');
  });
  it('waits for the settle lag', () => {
    const s = daily('02:00');
    const lastEnd = Date.parse('2026-10-04T02:00:00Z');
    expect(dueWindows(s, { now: Date.parse('2026-10-05T02:05:00Z'), settleLagMs: 600_000, lastEnd })).toEqual([]);
    expect(dueWindows(s, { now: Date.parse('2026-10-05T02:10:00Z'), settleLagMs: 600_000, lastEnd })).toHaveLength(1);
  });
  it('a new export without backfill starts at the latest due slot', () => {
    const w = dueWindows(daily('02:00'), { now: Date.parse('2026-10-05T12:00:00Z'), settleLagMs: 600_000 });
    expect(w.map((x) => [iso(x.start), iso(x.end)])).toEqual([['2026-10-04T02:00:00.000Z', '2026-10-05T02:00:00.000Z']]);
  });
  it('backfill_from starts at that instant and ends at the first slot after it', () => {
    const w = dueWindows(daily('02:00'), { now: Date.parse('2026-10-03T12:00:00Z'), settleLagMs: 0, backfillFrom: Date.parse('2026-10-01T00:00:00Z') });
    expect(w.map((x) => [iso(x.start), iso(x.end)])).toEqual([
      ['2026-10-01T00:00:00.000Z', '2026-10-01T02:00:00.000Z'],
      ['2026-10-01T02:00:00.000Z', '2026-10-02T02:00:00.000Z'],
      ['2026-10-02T02:00:00.000Z', '2026-10-03T02:00:00.000Z'],
    ]);
  });
});

describe('cron', () => {
  it('turns durations into crontab fields', () => {
    expect(cronSpec('15m')).toBe('*/15 * * * *');
    expect(cronSpec('1h')).toBe('0 * * * *');
    expect(cronSpec('5m')).toBe('*/5 * * * *');
    expect(() => cronSpec('7m')).toThrow(expect.objectContaining({ exitCode: 64 }));
  });
});
