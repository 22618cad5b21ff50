import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { csvFormat } from '../../src/format/csv.js';
import type { RecordSchema } from '../../src/record/fields.js';

/** The row writer against the record encoder: the same values must give the same bytes. */
function both(rows: unknown[][], formulaGuard: boolean): { records: Buffer; rows: Buffer } {
  const n = rows[0]!.length;
  const schema: RecordSchema = Array.from({ length: n }, (_, i) => ({ name: `c${i}`, type: 'string', nullable: true }));
  const enc = csvFormat.createEncoder(schema, { formulaGuard, header: false });
  const records = enc.push(rows.map((r) => Object.fromEntries(r.map((v, i) => [`c${i}`, v])))) ?? Buffer.alloc(0);
  const cells = Array.from({ length: n }, (_, i) => (r: unknown[]) => r[i]);
  const written = csvFormat.createRowWriter!(schema, { formulaGuard }).push(rows, cells) ?? Buffer.alloc(0);
  return { records, rows: written };
}

const TRICKY: unknown[] = [
  null, undefined, '', 'plain', 'a,b', 'say "hi"', 'line\nbreak', 'cr\rhere', 'crlf\r\nend', '"', ',',
  '=SUM(A1)', '+1', '-1', '-12.5', '-1e-7', '-x', '@user', '\tTab', '\rCR', 'mid=dle', 'tab\tinside',
  'café', 'naïve, "quoted"', '日本語', '😀 emoji', '\ud800 lone', 'end \udfff', '=café',
  0, -0, 1, -1, 42, -2147483648, 2147483647, 2147483648, -2147483649, 9007199254740993, 1e21, -1e21,
  0.1 + 0.2, -0.5, 1e-7, -1.5e-9, NaN, Infinity, -Infinity,
  true, false, { a: 1, b: 'x,"y"' }, ['=1', 2], { n: null }, [],
];

/** Deterministic strings over the characters that matter to CSV and the guard. */
function fuzz(count: number, seed: number): string[] {
  const alphabet = ['a', 'Z', '0', '9', ',', '"', '\r', '\n', '\t', '=', '+', '-', '@', ' ', '.', 'é', '€', '😀', '\ud800', '\udc00', 'e'];
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: count }, () => Array.from({ length: Math.floor(next() * 12) }, () => alphabet[Math.floor(next() * alphabet.length)]).join(''));
}

describe('CSV row writer', () => {
  for (const guard of [true, false]) {
    it(`writes the record encoder's bytes for tricky values (formula guard ${guard ? 'on' : 'off'})`, () => {
      const rows = TRICKY.map((v, i) => [v, `row${i}`, TRICKY[(i * 7) % TRICKY.length]]);
      const out = both(rows, guard);
      expect(out.rows.toString('hex')).toBe(out.records.toString('hex'));
      expect(parse(out.rows, { relax_column_count: false })).toHaveLength(rows.length);
    });

    it(`writes the record encoder's bytes for 5,000 fuzzed rows (formula guard ${guard ? 'on' : 'off'})`, () => {
      const cells = fuzz(20_000, guard ? 7 : 11);
      const rows = Array.from({ length: 5000 }, (_, i) => [cells[i * 4], cells[i * 4 + 1], Number(cells[i * 4 + 2]) || i - 2500, cells[i * 4 + 3]]);
      const out = both(rows, guard);
      expect(out.rows.equals(out.records)).toBe(true);
      expect(parse(out.rows)).toHaveLength(5000);
    });
  }

  it('grows past its first buffer and returns bytes of their own', () => {
    const big = 'x'.repeat(200_000);
    const rows = [[big, 'é'.repeat(50_000)], ['a', 'b']];
    const out = both(rows, true);
    expect(out.rows.equals(out.records)).toBe(true);
    expect(out.rows.byteOffset).toBe(0);
    expect(out.rows.buffer.byteLength).toBe(out.rows.length);
    expect(csvFormat.createRowWriter!([], {}).push([], [])).toBeNull();
  });
});
