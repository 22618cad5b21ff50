import { usageError } from '../errors.js';
import { csvFormat } from './csv.js';
import { jsonFormat } from './json.js';
import { jsonlFormat } from './jsonl.js';
import { parquetFormat } from './parquet.js';
import type { Format } from './types.js';

export const FORMATS: Record<string, Format> = { jsonl: jsonlFormat, json: jsonFormat, csv: csvFormat, parquet: parquetFormat };

export function formatByName(name: string): Format {
  const f = FORMATS[name];
  if (!f) throw usageError('parse --format', `unknown format "${name}"`, `formats: ${Object.keys(FORMATS).join(', ')}`);
  return f;
}
