import type { Cell } from '../record/mapper.js';
import type { Format, RowWriter } from './types.js';

const FORMULA = /^[=+\-@\t\r]/;

/**
 * Spreadsheet formula-injection guard (OWASP): a cell starting with = + - @
 * tab or CR gets a leading apostrophe, so Excel and Sheets show it as text.
 * Plain negative numbers are left alone.
 */
export function guardFormula(cell: string): string {
  const c = cell.charCodeAt(0);
  // = + - @ TAB CR: the common case is none of them, decided on one char code.
  if (c !== 61 && c !== 43 && c !== 45 && c !== 64 && c !== 9 && c !== 13) return cell;
  if (!FORMULA.test(cell)) return cell;
  if (/^-\d+(\.\d+)?(e[+-]?\d+)?$/i.test(cell)) return cell;
  return `'${cell}`;
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const NEEDS_QUOTES = /[",\r\n]/;
const QUOTE = /"/g;

/** One RFC 4180 cell: quoted when it holds a quote, comma, CR or LF; quotes doubled. */
export function csvCell(text: string): string {
  return NEEDS_QUOTES.test(text) ? `"${text.replace(QUOTE, '""')}"` : text;
}

/** ASCII characters a cell can hold unquoted: all but the quote, the comma, CR and LF. */
const PLAIN = new Uint8Array(128).fill(1);
for (const c of [0x22, 0x2c, 0x0a, 0x0d]) PLAIN[c] = 0;
/** The first characters the formula guard looks at: = + - @ TAB CR. */
const GUARDED = new Uint8Array(128);
for (const c of [0x3d, 0x2b, 0x2d, 0x40, 0x09, 0x0d]) GUARDED[c] = 1;

/**
 * CSV rows written as bytes straight from row arrays, with no record objects
 * and no string building: ASCII text that needs neither quotes nor the
 * formula guard, and int32 numbers, are copied byte by byte. Any other cell
 * goes through `csvCell(guardFormula(text))` and a UTF-8 write, so the bytes
 * always equal the record encoder's.
 */
class CsvRowWriter implements RowWriter {
  private buf = Buffer.allocUnsafeSlow(1 << 16);
  private off = 0;

  constructor(private readonly guard: boolean) {}

  push(rows: readonly unknown[][], cells: readonly Cell[]): Buffer | null {
    if (!rows.length) return null;
    const n = cells.length;
    this.off = 0;
    for (const r of rows) {
      for (let i = 0; i < n; i++) {
        if (i) this.byte(0x2c);
        const v = cells[i]!(r);
        if (v !== null && v !== undefined) this.cell(v);
      }
      this.byte(0x0d);
      this.byte(0x0a);
    }
    // Bytes of their own (never Node's shared pool), so an encoding thread can transfer them.
    const out = Buffer.allocUnsafeSlow(this.off);
    this.buf.copy(out, 0, 0, this.off);
    return out;
  }

  /** One value, as the record encoder writes it: numbers by String(), objects as JSON, null as nothing. */
  private cell(v: unknown): void {
    switch (typeof v) {
      case 'string': return this.text(v);
      case 'number': return (v | 0) === v ? this.int(v) : this.text(String(v));
      case 'object': return this.text(JSON.stringify(v));
      default: return this.text(String(v));
    }
  }

  private text(s: string): void {
    const n = s.length;
    if (n === 0) return;
    if (this.off + n > this.buf.length) this.grow(n);
    const c0 = s.charCodeAt(0);
    if (this.guard && c0 < 128 && GUARDED[c0] === 1) return this.slow(s);
    const b = this.buf;
    let o = this.off;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 128 && PLAIN[c] === 1) b[o++] = c;
      else return this.slow(s); // what was copied is written over
    }
    this.off = o;
  }

  private slow(t: string): void {
    const cell = csvCell(this.guard ? guardFormula(t) : t);
    if (this.off + cell.length * 3 > this.buf.length) this.grow(cell.length * 3);
    this.off += this.buf.write(cell, this.off);
  }

  /** An int32 in decimal, as String() writes it (-0 as 0; a negative number is never guarded). */
  private int(v: number): void {
    if (this.off + 12 > this.buf.length) this.grow(12);
    const b = this.buf;
    let o = this.off;
    if (v < 0) { b[o++] = 0x2d; v = -v; }
    let digits = 1;
    for (let x = v; x >= 10; x = (x / 10) | 0) digits++;
    o += digits;
    this.off = o;
    do {
      const q = (v / 10) | 0;
      b[--o] = 0x30 + v - q * 10;
      v = q;
    } while (v > 0);
  }

  private byte(c: number): void {
    if (this.off >= this.buf.length) this.grow(1);
    this.buf[this.off++] = c;
  }

  private grow(n: number): void {
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.off + n + 1024));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }
}

/**
 * RFC 4180 CSV with a header row and CRLF line ends; JSON columns become JSON
 * text. The rows are written by `csvCell` rather than csv-stringify: the
 * export is the hot path, and the quoting rule is the whole of RFC 4180 here
 * (see "Decisions"). Tests parse every output with csv-parse.
 */
export const csvFormat: Format = {
  name: 'csv',
  extension: 'csv',
  contentType: 'text/csv; charset=utf-8',
  wrapsGzip: true,
  createEncoder(schema, opts) {
    const names = schema.map((f) => f.name);
    const n = names.length;
    const guard = opts.formulaGuard !== false;
    let header = opts.header !== false;
    const headerLine = names.map(csvCell).join(',') + '\r\n';
    return {
      push(records) {
        let s = '';
        if (header) { s = headerLine; header = false; }
        for (const r of records) {
          for (let i = 0; i < n; i++) {
            const v = r[names[i]!];
            if (i) s += ',';
            if (v === null || v === undefined) continue;
            const t = typeof v === 'number' ? String(v) : cellText(v);
            s += csvCell(guard ? guardFormula(t) : t);
          }
          s += '\r\n';
        }
        return s ? Buffer.from(s) : null;
      },
      finish() {
        if (!header) return null;
        header = false;
        return Buffer.from(headerLine);
      },
    };
  },
  createRowWriter: (opts) => new CsvRowWriter(opts.formulaGuard !== false),
  // A record ends at a line feed outside quotes ("" inside a quoted cell toggles twice).
  rowEnd(bytes, n) {
    let quoted = false;
    let seen = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b === 0x22) quoted = !quoted;
      else if (b === 0x0a && !quoted && ++seen === n) return i + 1;
    }
    throw new Error(`encoded CSV holds fewer than ${n} records`);
  },
};
