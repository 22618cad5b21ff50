import type { RowPage } from '../source/types.js';
import { truthy, type ExportRecord, type FieldDef, type RecordSchema, type RowAccess } from './fields.js';
import type { RecordWarnings } from './json-cell.js';

export interface RecordMapper {
  readonly schema: RecordSchema;
  /** Canonical DB columns the reader must select. */
  readonly columns: readonly string[];
  map(page: RowPage): ExportRecord[];
}

/**
 * Compiles the chosen fields into a page mapper. Column lookups happen once
 * per page layout, not per row.
 */
export function createRecordMapper(fields: readonly FieldDef[], warnings: RecordWarnings): RecordMapper {
  const hasContent = fields.some((f) => f.content);
  const columns = new Set<string>(['id', 'status']);
  for (const f of fields) for (const d of f.deps) if (!d.startsWith('__')) columns.add(d);
  if (hasContent) columns.add('content_hidden').add('has_object');

  let compiledFor: readonly string[] | null = null;
  let compiled: ((r: unknown[]) => ExportRecord) | null = null;

  function compile(pageColumns: readonly string[]) {
    const index = new Map(pageColumns.map((c, i) => [c, i]));
    const access: RowAccess = { idx: (c) => index.get(c) ?? -1, warnings };
    const getters = fields.map((f) => f.make(access));
    const names = fields.map((f) => f.name);
    const contentMask = fields.map((f) => !!f.content);
    const hidden = index.get('content_hidden') ?? -1;
    const n = names.length;
    return (r: unknown[]): ExportRecord => {
      const rec: ExportRecord = {};
      const hide = hasContent && hidden >= 0 && truthy(r[hidden]);
      for (let i = 0; i < n; i++) rec[names[i]!] = hide && contentMask[i] ? null : getters[i]!(r);
      return rec;
    };
  }

  return {
    schema: fields.map(({ name, type, nullable }) => ({ name, type, nullable })),
    columns: [...columns],
    map(page) {
      if (compiledFor !== page.columns) {
        compiled = compile(page.columns);
        compiledFor = page.columns;
      }
      const f = compiled!;
      const out = new Array<ExportRecord>(page.rows.length);
      for (let i = 0; i < page.rows.length; i++) out[i] = f(page.rows[i]!);
      return out;
    },
  };
}
