import { describe, expect, it } from 'vitest';
import { excluder } from '../../src/source/types.js';

const names = ['id', '__pos'];
const page = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => [`id${from + k}`, from + k]);
const kept = (f: (rows: unknown[][]) => unknown[][], rows: unknown[][]) => f(rows).map((r) => r[1]);

describe('excluder', () => {
  it('drops excluded positions at a page\'s edges and inside it, and leaves other pages as they are', () => {
    const f = excluder({ exclude: { positions: Float64Array.from([3, 10, 11, 20]) } }, names)!;
    expect(kept(f, page(1, 5))).toEqual([1, 2, 4, 5]);
    expect(kept(f, page(10, 12))).toEqual([12]);
    expect(kept(f, page(15, 20))).toEqual([15, 16, 17, 18, 19]);
    const other = page(12, 19);
    expect(f(other)).toBe(other);
    expect(f(page(21, 30))).toHaveLength(10);
    expect(f([])).toEqual([]);
  });

  it('drops exactly the excluded positions from pages in any order (a read in time order), dense or sparse', () => {
    for (const positions of [
      Float64Array.from({ length: 3000 }, (_, k) => 5 + k * 3), // dense: the bitmap
      Float64Array.from([1, 2 ** 30, 2 ** 31 + 7]), // a span too wide for it: the binary search
    ]) {
      const f = excluder({ exclude: { positions } }, names)!;
      const set = new Set(positions);
      const rows = [...positions, 0, 4, 6, 2 ** 30 + 1, 9001, 9002, 2 ** 31 + 8].flatMap((p) => [p, p + 1]).reverse().map((p) => [`id${p}`, p]);
      expect(kept(f, rows)).toEqual(rows.map((r) => r[1]).filter((p) => !set.has(p as number)));
    }
  });

  it('drops excluded ids, and is null when nothing is excluded', () => {
    const f = excluder({ exclude: { ids: ['id2', 'id9'] } }, names)!;
    expect(kept(f, page(1, 4))).toEqual([1, 3, 4]);
    expect(excluder({}, names)).toBeNull();
    expect(excluder({ exclude: { positions: new Float64Array(0), ids: [] } }, names)).toBeNull();
  });
});
