import { parseStoreTimestamp } from '../../util/time.js';

const DAY_MS = 86_400_000;
/** Offsets stay within ±14 h, and a fraction adds under a second. */
const SLACK_MS = 14 * 3_600_000 + 1_000;

interface Entry { ms: number; rowid: number }

/** The wall-clock reading of a stored text, as if it were UTC (its first 19 characters). */
function naive(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(text);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN;
}

function dayStart(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(text);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!) : NaN;
}

/**
 * The rowids of the first `k` rows by exact instant (then rowid), newest or
 * oldest first, from (rowid, timestamp text) pairs that arrive in the text
 * index's order in the same direction.
 *
 * Text order is not time order: offsets shift a reading by up to ±14 h, and on
 * one date every migrated `…T…Z` text sorts after every `… …+00:00` one. So the
 * scan keeps going until no row still to come can beat the k-th best: every
 * remaining text is at most (or at least) the current one, which bounds its
 * reading, and the reading bounds its instant within the slack. It returns how
 * many pairs it read, so callers can stop the underlying statement.
 */
export function topByTime(pairs: Iterable<[number, string]>, k: number, order: 'asc' | 'desc'): { rowids: number[]; scanned: number } {
  const best: Entry[] = [];
  const desc = order === 'desc';
  // a before b in the result. SQLite orders a NULL instant lowest; NaN stands for it.
  const before = (a: Entry, b: Entry): boolean => {
    const am = Number.isNaN(a.ms) ? -Infinity : a.ms;
    const bm = Number.isNaN(b.ms) ? -Infinity : b.ms;
    if (am !== bm) return desc ? am > bm : am < bm;
    return desc ? a.rowid > b.rowid : a.rowid < b.rowid;
  };
  let scanned = 0;
  if (k <= 0) return { rowids: [], scanned };
  for (const [rowid, text] of pairs) {
    scanned++;
    if (best.length === k) {
      const worst = best[k - 1]!;
      if (!Number.isNaN(worst.ms)) {
        // The furthest reading any remaining row can have.
        const limit = desc
          ? (text.charAt(10) === 'T' ? dayStart(text) + DAY_MS : naive(text) + 1_000)
          : (text.charAt(10) === 'T' ? naive(text) : dayStart(text));
        if (!Number.isNaN(limit) && (desc ? limit + SLACK_MS < worst.ms : limit - SLACK_MS > worst.ms)) break;
      }
    }
    const e: Entry = { ms: typeof text === 'string' ? parseStoreTimestamp(text) : NaN, rowid };
    if (best.length === k && !before(e, best[k - 1]!)) continue;
    let lo = 0;
    let hi = best.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(best[mid]!, e)) lo = mid + 1;
      else hi = mid;
    }
    best.splice(lo, 0, e);
    if (best.length > k) best.pop();
  }
  return { rowids: best.map((e) => e.rowid), scanned };
}
