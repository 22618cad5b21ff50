import { usageError } from '../errors.js';
import { csvFormat } from './csv.js';
import { jsonFormat } from './json.js';
import { jsonlFormat } from './jsonl.js';
import { PARQUET_INFO } from './parquet-info.js';
import { reportFormat } from './report.js';
import type { Format } from './types.js';
import type * as ParquetModule from './parquet.js';

let parquet: typeof ParquetModule | null = null;

/** Parquet's writer loads on first use (`ready`), so JSONL and CSV exports and the other commands start without it. */
const parquetFormat: Format = {
  ...PARQUET_INFO,
  async ready() {
    parquet ??= await import('./parquet.js');
  },
  createEncoder(schema, opts) {
    if (!parquet) throw new Error('the Parquet writer was used before it was loaded (format.ready())');
    return parquet.parquetFormat.createEncoder(schema, opts);
  },
};

export const FORMATS: Record<string, Format> = { jsonl: jsonlFormat, json: jsonFormat, csv: csvFormat, parquet: parquetFormat, report: reportFormat };

export function formatByName(name: string): Format {
  const f = FORMATS[name];
  if (!f) throw usageError('parse --format', `unknown format "${name}"`, `formats: ${Object.keys(FORMATS).join(', ')}`);
  return f;
}
