import type { RowPage } from '../source/types.js';
import { truthy, type ExportRecord, type FieldDef, type RecordSchema, type RowAccess } from './fields.js';
import type { RecordWarnings } from './json-cell.js';

export type Cell = (row: unknown[]) => unknown;

export interface RecordMapper {
  readonly schema: RecordSchema;
  /** Canonical DB columns the reader must select. */
  readonly columns: readonly string[];
  map(page: RowPage): ExportRecord[];
  /**
   * Each field's value of a row of this page layout, in schema order, for
   * writers that skip records (content fields are null for content_hidden rows).
   */
  cells(pageColumns: readonly string[]): readonly Cell[];
}

/**
 * Compiles the chosen fields into a page mapper. Column lookups happen once
 * per page layout, not per row.
 */
export function createRecordMapper(fields: readonly FieldDef[], warnings: RecordWarnings): RecordMapper {
  const hasContent = fields.some((f) => f.content);
  const columns = new Set<string>(['id']);
  for (const f of fields) for (const d of f.deps) if (!d.startsWith('__')) columns.add(d);
  if (hasContent) columns.add('content_hidden').add('has_object');
  const names = fields.map((f) => f.name);

  let layout: { columns: readonly string[]; cells: Cell[]; record: (r: unknown[]) => ExportRecord } | null = null;

  function compile(pageColumns: readonly string[]) {
    if (layout?.columns === pageColumns) return layout;
    const index = new Map(pageColumns.map((c, i) => [c, i]));
    const access: RowAccess = { idx: (c) => index.get(c) ?? -1, warnings };
    const hidden = hasContent ? index.get('content_hidden') ?? -1 : -1;
    const cells = fields.map((f): Cell => {
      const get = f.make(access);
      return hidden >= 0 && f.content ? (r) => (truthy(r[hidden]) ? null : get(r)) : get;
    });
    const n = names.length;
    const record = (r: unknown[]): ExportRecord => {
      const rec: ExportRecord = {};
      for (let i = 0; i < n; i++) rec[names[i]!] = cells[i]!(r);
      return rec;
    };
    return (layout = { columns: pageColumns, cells, record });
  }

  return {
    schema: fields.map(({ name, type, nullable }) => ({ name, type, nullable })),
    columns: [...columns],
    map(page) {
      const f = compile(page.columns).record;
      const out = new Array<ExportRecord>(page.rows.length);
      for (let i = 0; i < page.rows.length; i++) out[i] = f(page.rows[i]!);
      return out;
    },
    cells: (pageColumns) => compile(pageColumns).cells,
  };
}
