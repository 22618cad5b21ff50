import type { Format } from './types.js';

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
