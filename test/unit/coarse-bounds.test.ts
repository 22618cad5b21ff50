import { describe, expect, it } from 'vitest';
import { coarseBounds, createSqliteDialect } from '../../src/source/sqlite/sqlite-dialect.js';

/**
 * The text range on `timestamp` that picks a window's rows through the index
 * before the exact test: it must hold every row whose instant is in the
 * window, whatever its stored form and UTC offset (SQLite and the JS parser
 * read offsets up to ±14:59), and the inner piece only rows inside it.
 */
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** The text Bifrost (or a hand insert) stores for an instant at a UTC offset in minutes, in one of its forms. */
function stored(t: number, offsetMin: number, form: number): string {
  const l = new Date(t + offsetMin * 60_000);
  const date = `${l.getUTCFullYear()}-${pad(l.getUTCMonth() + 1)}-${pad(l.getUTCDate())}`;
  const time = `${pad(l.getUTCHours())}:${pad(l.getUTCMinutes())}:${pad(l.getUTCSeconds())}`;
  const off = `${offsetMin < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(offsetMin) / 60))}:${pad(Math.abs(offsetMin) % 60)}`;
  if (form === 0) return `${date} ${time}.${pad(l.getUTCMilliseconds(), 3)}${off}`;
  if (form === 1) return `${date}T${time}.${l.getUTCMilliseconds()}Z`;
  return `${date} ${time}`;
}

/** A small deterministic generator (the test needs no crypto). */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

describe('coarseBounds', () => {
  it('holds every row of the window, in every form and at every offset SQLite reads', () => {
    const r = rng(7);
    const base = Date.parse('2026-03-01T00:00:00Z');
    for (let i = 0; i < 20_000; i++) {
      const whole = r() < 0.5;
      const start = base + Math.floor(r() * 300) * (whole ? DAY : HOUR) + (whole ? 0 : Math.floor(r() * HOUR));
      const end = start + (r() < 0.5 ? DAY : Math.ceil(r() * 40 * HOUR));
      // Instants at the window's very edges, and anywhere in it.
      const pick = r();
      const t = pick < 0.3 ? start : pick < 0.6 ? end - 1 : start + Math.floor(r() * (end - start));
      const form = Math.floor(r() * 3);
      const offsetMin = form === 0 ? Math.round((r() * 2 - 1) * (14 * 60 + 59)) : 0;
      const text = stored(t, offsetMin, form);
      // The form with an offset stores local time: the row's instant is still t.
      const { from, to } = coarseBounds(start, end);
      expect(text >= from!, `${text} ≥ ${from} for [${new Date(start).toISOString()}, ${new Date(end).toISOString()})`).toBe(true);
      expect(text < to!, `${text} < ${to} for [${new Date(start).toISOString()}, ${new Date(end).toISOString()})`).toBe(true);
    }
  });

  it('reaches 15 hours either side of the window, to the hour', () => {
    const start = Date.parse('2026-09-24T00:00:00Z');
    expect(coarseBounds(start, start + DAY)).toEqual({ from: '2026-09-23 09', to: '2026-09-25T15' });
    expect(coarseBounds(start, start + 7 * DAY)).toEqual({ from: '2026-09-23 09', to: '2026-10-01T15' });
    // Off the hour, outward.
    expect(coarseBounds(start + 30 * 60_000, start + DAY + 1)).toEqual({ from: '2026-09-23 09', to: '2026-09-25T16' });
  });
});

describe('spanPieces', () => {
  it('puts in its inner piece only rows inside the window', () => {
    const d = createSqliteDialect(() => []);
    const r = rng(9);
    const base = Date.parse('2026-03-01T00:00:00Z');
    let inner = 0;
    for (let i = 0; i < 20_000; i++) {
      const start = base + Math.floor(r() * 300 * 24) * HOUR;
      const end = start + Math.ceil(r() * 6 * 24) * HOUR;
      const pieces = d.spanPieces(start, end);
      const p = pieces.find((x) => !x.exact);
      if (!p || p.params.length < 2) continue;
      const [lo, hi] = p.params as [string, string];
      // Any instant a few days around the window, at any offset: if its text falls in the inner piece, it is inside.
      const t = start - 2 * DAY + Math.floor(r() * (end - start + 4 * DAY));
      const text = stored(t, Math.round((r() * 2 - 1) * (14 * 60 + 59)), 0);
      if (text >= lo && text < hi) { inner++; expect(t >= start && t < end, `${text} in [${lo}, ${hi})`).toBe(true); }
    }
    expect(inner).toBeGreaterThan(1000);
  });
});
