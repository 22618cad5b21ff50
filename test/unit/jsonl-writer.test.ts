import { describe, expect, it } from 'vitest';
import { jsonlFormat } from '../../src/format/jsonl.js';
import type { RecordSchema } from '../../src/record/fields.js';

/** The row writer against the record encoder (JSON.stringify of each record): the same values, the same bytes. */
function both(rows: unknown[][]): { records: Buffer; rows: Buffer } {
  const n = rows[0]!.length;
  const schema: RecordSchema = Array.from({ length: n }, (_, i) => ({ name: i === 1 ? 'quo"ted\\name' : `c${i}`, type: 'string', nullable: true }));
  const enc = jsonlFormat.createEncoder(schema, {});
  const records = enc.push(rows.map((r) => Object.fromEntries(r.map((v, i) => [schema[i]!.name, v])))) ?? Buffer.alloc(0);
  const cells = Array.from({ length: n }, (_, i) => (r: unknown[]) => r[i]);
  const written = jsonlFormat.createRowWriter!(schema, {}).push(rows, cells) ?? Buffer.alloc(0);
  return { records, rows: written };
}

const TRICKY: unknown[] = [
  null, undefined, '', 'plain', 'say "hi"', 'back\\slash', 'line\nbreak', 'tab\there', '\u0000nul', '\u001f', '\u007f del',
  'café', '日本語', '😀 emoji', '\ud800 lone', 'end \udfff', '\u2028 line sep', '</script>',
  0, -0, 1, -1, 42, -2147483648, 2147483647, 2147483648, -2147483649, 9007199254740993, 1e21, -1e21,
  0.1 + 0.2, -0.5, 1e-7, -1.5e-9, NaN, Infinity, -Infinity,
  true, false, { a: 1, b: 'x,"y"', u: undefined }, ['=1', 2, undefined], { n: null }, [], new Date(0),
];

function fuzz(count: number, seed: number): string[] {
  const alphabet = ['a', 'Z', '0', '"', '\\', '\n', '\r', '\t', '\u0001', ' ', '/', 'é', '€', '😀', '\ud800', '\udc00', '\u2028', '~', '\u007f'];
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: count }, () => Array.from({ length: Math.floor(next() * 12) }, () => alphabet[Math.floor(next() * alphabet.length)]).join(''));
}

describe('JSONL row writer', () => {
  it("writes JSON.stringify's bytes for tricky values, leaving out undefined fields", () => {
    const rows = TRICKY.map((v, i) => [v, `row${i}`, TRICKY[(i * 7) % TRICKY.length]]);
    const out = both(rows);
    expect(out.rows.toString('hex')).toBe(out.records.toString('hex'));
    for (const line of out.rows.toString('utf8').trimEnd().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
  });

  it("writes JSON.stringify's bytes for 5,000 fuzzed rows", () => {
    const cells = fuzz(20_000, 5);
    const rows = Array.from({ length: 5000 }, (_, i) => [cells[i * 4], cells[i * 4 + 1], Number(cells[i * 4 + 2]) || (i - 2500) / 7, cells[i * 4 + 3]]);
    const out = both(rows);
    expect(out.rows.equals(out.records)).toBe(true);
    expect(out.rows.toString('utf8').trimEnd().split('\n')).toHaveLength(5000);
  });

  it('grows past its first buffer and returns bytes of their own', () => {
    const rows = [['x'.repeat(200_000), 'é'.repeat(50_000)], ['a', 'b']];
    const out = both(rows);
    expect(out.rows.equals(out.records)).toBe(true);
    expect(out.rows.byteOffset).toBe(0);
    expect(out.rows.buffer.byteLength).toBe(out.rows.length);
    expect(jsonlFormat.createRowWriter!([], {}).push([], [])).toBeNull();
  });
});
