import { DateTime, Info } from './luxon.js';
import { usageError } from '../errors.js';

const DAY_MS = 86_400_000;

/**
 * Parses every text form Bifrost's SQLite store holds, to epoch milliseconds,
 * with the same rounding SQLite's own date functions use (nearest ms, capped at
 * .999 so a second never carries). Returns NaN for text that is not a time.
 *
 *  1. `2026-05-12 06:59:08.123456789+00:00` (fraction trimmed, may be absent)
 *  2. `2026-05-12T06:59:08.5Z`: the migrated form, whose fraction is the
 *     milliseconds as an unpadded integer (`.5` is 5 ms)
 *  3. `2025-11-19 17:25:04.12+05:30`: a local offset
 *  4. `2026-05-12 06:59:08`: no zone, which means UTC
 */
export function parseStoreTimestamp(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
  if (!m) return NaN;
  const [, y, mo, d, h, mi, s = '0', frac, zone] = m;
  let ms = 0;
  if (frac) {
    if (zone === 'Z' && text.charAt(10) === 'T') ms = Math.min(999, Number.parseInt(frac, 10));
    // Truncated, not rounded: 23:59:59.9996 stays in its second (and its window).
    else ms = Number(frac.slice(0, 3).padEnd(3, '0'));
  }
  let t = Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +s, ms);
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    t -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4))) * 60_000;
  }
  return t;
}

/** ISO 8601 UTC with milliseconds: `2026-10-01T00:01:32.001Z`. */
export function isoMs(ms: number): string {
  return new Date(ms).toISOString();
}

const pad2 = (i: number) => String(i).padStart(2, '0');
/** "MM:SS." for every second of an hour, and "mmmZ" for every millisecond. */
const MIN_SEC = Array.from({ length: 3600 }, (_, i) => `${pad2(Math.floor(i / 60))}:${pad2(i % 60)}.`);
const MS_Z = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);
const HOUR_MS = 3_600_000;

/**
 * `isoMs` for a stream of nearby instants: the text up to the hour is reused
 * while the hour stays the same (log rows come in near time order), and the
 * rest comes from tables, which saves a Date and its formatting per row.
 * One per reader, not shared.
 */
export function createIsoFormatter(): (ms: number) => string {
  let hour = NaN;
  let head = '';
  return (ms) => {
    const h = Math.floor(ms / HOUR_MS);
    if (h !== hour) {
      if (!Number.isInteger(ms) || ms < 0 || ms >= 253402300800000) return new Date(ms).toISOString();
      hour = h;
      head = new Date(h * HOUR_MS).toISOString().slice(0, 14);
    }
    const inHour = ms - h * HOUR_MS;
    const sec = Math.floor(inHour / 1000);
    return head + MIN_SEC[sec]! + MS_Z[inHour - sec * 1000]!;
  };
}

/** Compact UTC stamp used in object names: `20261001T000000Z`. */
export function compactStamp(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

const PART = /(\d+(?:\.\d+)?)\s*(ms|secs|sec|s|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|w)\s*/iy;
const UNIT_MS: Record<string, number> = {
  ms: 1, s: 1000, sec: 1000, secs: 1000, m: 60_000, min: 60_000, mins: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: DAY_MS, day: DAY_MS, days: DAY_MS, w: 7 * DAY_MS, week: 7 * DAY_MS, weeks: 7 * DAY_MS,
};

/** Parses a duration like `10m`, `6h`, `7d`, `1d12h` to milliseconds, or returns undefined. */
export function parseDuration(text: string): number | undefined {
  // One or more parts: `90m`, `1d12h`, `1h 30m`.
  const t = text.trim();
  if (!t) return undefined;
  PART.lastIndex = 0;
  let total = 0;
  while (PART.lastIndex < t.length) {
    const m = PART.exec(t);
    if (!m) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]!.toLowerCase()]!;
  }
  return Math.round(total);
}

/**
 * Parses a time given on the command line: RFC 3339 (a date alone means
 * midnight in `zone`), `now`, or a duration meaning "that long ago".
 */
export function parseTimeArg(text: string, now: number, zone = 'UTC', flag = '--since'): number {
  const v = text.trim();
  if (v === 'now') return now;
  if (v === 'today' || v === 'yesterday') return resolveNamedRange(v, now, zone).start;
  const rel = parseDuration(v);
  if (rel !== undefined) return now - rel;
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const dt = DateTime.fromISO(v, { zone });
    if (dt.isValid) return dt.toMillis();
  }
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/i.test(v)) {
    // A local time without an offset is in `zone`.
    const dt = DateTime.fromISO(v.replace(' ', 'T'), { zone });
    if (dt.isValid) return dt.toMillis();
  }
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(v)) {
    const ms = Date.parse(v.replace(' ', 'T'));
    if (!Number.isNaN(ms)) return ms;
  }
  throw usageError(`parse ${flag}`, `"${text}" is not a time`, 'use RFC 3339 (2026-10-05T00:00:00Z), a local time in --tz (2026-10-05 10:00), a date (2026-10-05), today, yesterday, now, or a relative form (24h, 7d, 1d12h)');
}

export type NamedRange = 'last_24_hours' | 'last_7_days' | 'last_30_days' | 'today' | 'yesterday';
export const NAMED_RANGES: readonly NamedRange[] = ['last_24_hours', 'last_7_days', 'last_30_days', 'today', 'yesterday'];

/** Resolves a named `date_range` to [start, end) at `now` in `zone`. */
export function resolveNamedRange(name: NamedRange, now: number, zone = 'UTC'): { start: number; end: number } {
  switch (name) {
    case 'last_24_hours': return { start: now - DAY_MS, end: now };
    case 'last_7_days': return { start: now - 7 * DAY_MS, end: now };
    case 'last_30_days': return { start: now - 30 * DAY_MS, end: now };
    case 'today': {
      const d = DateTime.fromMillis(now, { zone }).startOf('day');
      return { start: d.toMillis(), end: d.plus({ days: 1 }).toMillis() };
    }
    case 'yesterday': {
      const d = DateTime.fromMillis(now, { zone }).startOf('day');
      return { start: d.minus({ days: 1 }).toMillis(), end: d.toMillis() };
    }
  }
}

export function isValidZone(zone: string): boolean {
  // The zone alone (what DateTime#setZone checks), without resolving the system locale a DateTime needs.
  return Info.normalizeZone(zone)?.isValid ?? false;
}

export { DAY_MS };
