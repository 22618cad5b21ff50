import { stringify } from 'csv-stringify/sync';
import type { Format } from './types.js';

const FORMULA = /^[=+\-@\t\r]/;

/**
 * Spreadsheet formula-injection guard (OWASP): a cell starting with = + - @
 * tab or CR gets a leading apostrophe, so Excel and Sheets show it as text.
 * Plain negative numbers are left alone.
 */
export function guardFormula(cell: string): string {
  if (!FORMULA.test(cell)) return cell;
  if (/^-\d+(\.\d+)?(e[+-]?\d+)?$/i.test(cell)) return cell;
  return `'${cell}`;
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** RFC 4180 CSV with a header row; JSON columns become JSON text. */
export const csvFormat: Format = {
  name: 'csv',
  extension: 'csv',
  contentType: 'text/csv; charset=utf-8',
  wrapsGzip: true,
  createEncoder(schema, opts) {
    const names = schema.map((f) => f.name);
    const guard = opts.formulaGuard !== false;
    let header = true;
    const rows = (records: readonly Record<string, unknown>[]) => records.map((r) => names.map((n) => {
      const t = cellText(r[n]);
      return guard ? guardFormula(t) : t;
    }));
    return {
      push(records) {
        if (!records.length && !header) return null;
        const out = stringify(header ? [names, ...rows(records)] : rows(records), { record_delimiter: '\r\n' });
        header = false;
        return Buffer.from(out);
      },
      finish() {
        if (!header) return null;
        header = false;
        return Buffer.from(stringify([names], { record_delimiter: '\r\n' }));
      },
    };
  },
};
