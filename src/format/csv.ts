import type { Cell } from '../record/mapper.js';
import type { Format, RowWriter } from './types.js';
import { ByteWriter } from './byte-writer.js';

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
class CsvRowWriter extends ByteWriter implements RowWriter {
  constructor(private readonly guard: boolean) { super(); }

  push(rows: readonly unknown[][], cells: readonly Cell[]): Buffer | null {
    if (!rows.length) return null;
    const n = cells.length;
    for (const r of rows) {
      for (let i = 0; i < n; i++) {
        if (i) this.byte(0x2c);
        const v = cells[i]!(r);
        if (v !== null && v !== undefined) this.cell(v);
      }
      this.byte(0x0d);
      this.byte(0x0a);
    }
    return this.take();
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
    if (this.guard && c0 < 128 && GUARDED[c0] === 1) return this.utf8(csvCell(guardFormula(s)));
    const b = this.buf;
    let o = this.off;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 128 && PLAIN[c] === 1) b[o++] = c;
      else return this.utf8(csvCell(this.guard ? guardFormula(s) : s)); // what was copied is written over
    }
    this.off = o;
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
  createRowWriter: (_schema, opts) => new CsvRowWriter(opts.formulaGuard !== false),
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
