import { describe, expect, it } from 'vitest';
import { narrowing, sortByTime, topByTime } from '../../src/source/sqlite/top-by-time.js';

// A small seeded PRNG, so a failure can be replayed.
function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Renders an instant in one of the store's text forms; the instant is the truth. */
function render(ms: number, form: number, offsetMin: number): string {
  const local = new Date(ms + offsetMin * 60_000);
  const date = `${local.getUTCFullYear()}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}`;
  const time = `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}`;
  const milli = local.getUTCMilliseconds();
  if (form === 0) return `${date} ${time}${milli ? `.${pad(milli, 3)}`.replace(/0+$/, '') : ''}+00:00`;
  if (form === 1) return `${date}T${time}.${milli}Z`; // migrated: unpadded milliseconds
  const sign = offsetMin < 0 ? '-' : '+';
  const a = Math.abs(offsetMin);
  return `${date} ${time}${milli ? `.${pad(milli, 3)}` : ''}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

describe('topByTime', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`equals a full sort by instant on mixed text forms (seed ${seed})`, () => {
      const r = rng(seed);
      const base = Date.UTC(2026, 8, 1);
      const rows: Array<{ rowid: number; ms: number; text: string }> = [];
      for (let i = 1; i <= 3000; i++) {
        const ms = base + Math.floor(r() * 5 * 86_400_000);
        const form = r() < 0.5 ? 0 : r() < 0.6 ? 1 : 2;
        const off = form === 2 ? [-720, -480, -300, 330, 540, 840][Math.floor(r() * 6)]! : 0;
        rows.push({ rowid: i, ms, text: render(ms, form, form === 2 ? off : 0) });
      }
      for (const order of ['desc', 'asc'] as const) {
        // The index order: text (binary collation), then rowid.
        const byText = [...rows].sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : a.rowid - b.rowid));
        if (order === 'desc') byText.reverse();
        const truth = [...rows].sort((a, b) => (order === 'desc' ? b.ms - a.ms || b.rowid - a.rowid : a.ms - b.ms || a.rowid - b.rowid));
        for (const k of [1, 10, 100, 700]) {
          const got = topByTime(byText.map((x) => [x.rowid, x.text] as [number, string]), k, order);
          expect(got.rowids).toEqual(truth.slice(0, k).map((x) => x.rowid));
          if (k <= 100) expect(got.scanned).toBeLessThan(rows.length);
        }
      }
    });
  }

  for (const seed of [11, 12, 13]) {
    it(`narrowing keeps every row that can make the first k, on mixed text forms (seed ${seed})`, () => {
      const r = rng(seed);
      const base = Date.UTC(2026, 8, 1);
      const rows: Array<{ rowid: number; ms: number; text: string }> = [];
      for (let i = 1; i <= 4000; i++) {
        const ms = base + Math.floor(r() * 3 * 86_400_000);
        const form = r() < 0.4 ? 0 : r() < 0.5 ? 1 : 2;
        const off = form === 2 ? [-840, -720, -300, 330, 540, 840][Math.floor(r() * 6)]! : 0;
        rows.push({ rowid: i, ms, text: render(ms, form, off) });
      }
      for (const order of ['desc', 'asc'] as const) {
        const byText = [...rows].sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : a.rowid - b.rowid));
        if (order === 'desc') byText.reverse();
        const truth = [...rows].sort((a, b) => (order === 'desc' ? b.ms - a.ms || b.rowid - a.rowid : a.ms - b.ms || a.rowid - b.rowid));
        for (const k of [1, 10, 100]) {
          const head = byText.slice(0, k).map((x) => [x.rowid, x.text] as [number, string]);
          const b = narrowing(head, k, order)!;
          // What the SQL keeps: the text range, then the instant's second within two of the bound's.
          const rest = byText.filter((x) => (order === 'desc' ? x.text >= b.text && Math.floor(x.ms / 1000) >= Math.floor(b.ms / 1000) - 2 : x.text < b.text && Math.floor(x.ms / 1000) <= Math.floor(b.ms / 1000) + 2));
          expect(rest.length).toBeLessThan(rows.length / 4);
          const ids = new Set(rest.map((x) => x.rowid));
          const pairs = [...rest.map((x) => [x.rowid, x.text] as [number, string]), ...head.filter(([id]) => !ids.has(id))];
          expect(sortByTime(pairs, k, order)).toEqual(truth.slice(0, k).map((x) => x.rowid));
        }
      }
    });
  }

  it('narrowing leaves a short or unreadable head to the full scan', () => {
    expect(narrowing([[1, '2026-09-01 00:00:00+00:00']], 2, 'desc')).toBeNull();
    expect(narrowing([[1, 'not a time']], 1, 'desc')).toBeNull();
  });

  it('reads every entry when fewer rows than the limit exist, and none for a limit of 0', () => {
    const pairs: Array<[number, string]> = [[1, '2026-09-01 00:00:00+00:00'], [2, '2026-09-01T00:00:00.5Z']];
    // '.5Z' is 5 ms past the second, so row 2 is the newer one.
    expect(topByTime(pairs, 5, 'desc')).toEqual({ rowids: [2, 1], scanned: 2 });
    expect(topByTime(pairs, 0, 'desc').rowids).toEqual([]);
  });
});
