import { DAY_MS, parseStoreTimestamp } from '../../util/time.js';
import { OFFSET_MS } from './sqlite-dialect.js';

/** Offsets stay within ±14:59 (the most SQLite and our parser read: OFFSET_MS), and a fraction adds under a second. */
const SLACK_MS = OFFSET_MS + 1_000;

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
 * Text order is not time order: offsets shift a reading by up to ±15 h, and on
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

/** 'YYYY-MM-DD HH:MM:SS' of an instant read as UTC: the text every stored form of it starts like. */
function naiveText(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * From the first `k` entries in text order (`head`), the bounds that leave
 * SQL a short list of candidates for the first `k` by instant: the k-th best
 * instant among them, `ms`, which the true k-th matches or beats, and a text
 * bound past which no row can reach `ms`. Newest first, a text below
 * `text` reads earlier than `ms` − 15 h − 1 s (a ' ' form on the same date
 * compares by time; a 'T' form sorts after every ' ' form of its date), so
 * its instant is before `ms`. Oldest first, a text of a later date than
 * `ms` + 15 h + 1 s reads, and so lies, after `ms`. Null when the head holds
 * fewer than `k` rows or its k-th instant is unreadable: the caller scans.
 */
export function narrowing(head: ReadonlyArray<[number, string]>, k: number, order: 'asc' | 'desc'): { text: string; ms: number } | null {
  if (k <= 0 || head.length < k) return null;
  const ms = head.map(([, t]) => (typeof t === 'string' ? parseStoreTimestamp(t) : NaN));
  if (ms.some(Number.isNaN)) return null;
  ms.sort((a, b) => (order === 'desc' ? b - a : a - b));
  const kth = ms[k - 1]!;
  if (order === 'desc') return { text: naiveText(kth - SLACK_MS), ms: kth };
  return { text: new Date((Math.floor((kth + SLACK_MS) / DAY_MS) + 1) * DAY_MS).toISOString().slice(0, 10), ms: kth };
}

/** The first `k` of `pairs` (any order) by exact instant, then rowid. */
export function sortByTime(pairs: ReadonlyArray<[number, string]>, k: number, order: 'asc' | 'desc'): number[] {
  const e = pairs.map(([rowid, t]) => ({ rowid, ms: typeof t === 'string' ? parseStoreTimestamp(t) : NaN }));
  const key = (x: number) => (Number.isNaN(x) ? -Infinity : x);
  e.sort((a, b) => (order === 'desc' ? key(b.ms) - key(a.ms) || b.rowid - a.rowid : key(a.ms) - key(b.ms) || a.rowid - b.rowid));
  return e.slice(0, k).map((x) => x.rowid);
}
