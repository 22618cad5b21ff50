import type { Filter } from './filter.js';
import { NEVER_READ, physicalColumn, type DetectedSchema } from './schema.js';
import { FINGERPRINT_COLUMNS } from './types.js';

/** What every source's `fingerprints` reads: the same columns and rows on every dialect. */
export interface FingerprintScope {
  /** Physical columns hashed per row: the changeable ones and every exported one. */
  cols: string[];
  /** The export's filter over the span of all the windows. */
  filter: Filter;
  /** Physical cost and total_tokens columns, where the DB has them. */
  cost: string | null;
  tokens: string | null;
}

export function fingerprintScope(schema: DetectedSchema, filter: Filter, windows: ReadonlyArray<{ start: number; end: number }>, columns: readonly string[]): FingerprintScope {
  const cols = [...new Set([...FINGERPRINT_COLUMNS, ...columns])].filter((c) => !NEVER_READ.has(c)).map((c) => physicalColumn(schema, c)).filter((p): p is string => !!p);
  const start = Math.min(...windows.map((w) => w.start));
  const end = Math.max(...windows.map((w) => w.end));
  return { cols, filter: { ...filter, start, end }, cost: physicalColumn(schema, 'cost') ?? null, tokens: physicalColumn(schema, 'total_tokens') ?? null };
}
