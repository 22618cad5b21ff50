import { DateTime } from './luxon.js';

/** A stretch of time during which a zone has one UTC offset. */
export interface OffsetSegment {
  /** Epoch ms where the segment starts (the first one starts at -Infinity). */
  readonly from: number;
  readonly offsetMs: number;
}

const HOUR = 3_600_000;

function offsetAt(zone: string, ms: number): number {
  return DateTime.fromMillis(ms, { zone }).offset * 60_000;
}

/**
 * The UTC offsets of `zone` between start and end, with each DST transition
 * found to the minute. Lets SQL without time-zone support bucket by local time.
 */
export function offsetSegments(zone: string, start: number, end: number): OffsetSegment[] {
  const segs: OffsetSegment[] = [{ from: -Infinity, offsetMs: offsetAt(zone, start) }];
  const step = 6 * HOUR;
  let prevT = start;
  let prevOff = segs[0]!.offsetMs;
  for (let t = start + step; prevT < end; t += step) {
    const off = offsetAt(zone, t);
    if (off !== prevOff) {
      let lo = prevT;
      let hi = t;
      while (hi - lo > 60_000) {
        const mid = Math.floor((lo + hi) / 2 / 60_000) * 60_000;
        if (mid <= lo) break;
        if (offsetAt(zone, mid) === prevOff) lo = mid;
        else hi = mid;
      }
      segs.push({ from: hi, offsetMs: off });
      prevOff = off;
    }
    prevT = t;
  }
  return segs;
}
