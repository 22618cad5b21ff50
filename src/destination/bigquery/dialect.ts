import type { TableField, TableMetadata } from '@google-cloud/bigquery';
import { configError } from '../../errors.js';
import type { FieldType } from '../../record/fields.js';
import type { WarehouseDialect } from '../warehouse/dialect.js';
import { WINDOW_START, type TableColumn, type TableLayout } from '../warehouse/layout.js';

export type LoadFormat = 'jsonl' | 'parquet';

const BQ_TYPES: Record<FieldType, string> = {
  timestamp: 'TIMESTAMP',
  string: 'STRING',
  int32: 'INT64',
  int64: 'INT64',
  double: 'FLOAT64',
  bool: 'BOOL',
  json: 'JSON',
};

/** The legacy names the API answers with, to the standard ones. */
const TYPE_ALIASES: Record<string, string> = { INTEGER: 'INT64', FLOAT: 'FLOAT64', BOOLEAN: 'BOOL' };
export const normalizeBqType = (t: string | undefined): string => {
  const u = String(t ?? '').toUpperCase();
  return TYPE_ALIASES[u] ?? u;
};

/**
 * The column type of a field in the target table. JSON fields are JSON
 * columns when loaded from NDJSON, which carries them as JSON. Parquet carries
 * them as text, and that text is not always JSON (a malformed cell is exported
 * as it is), so with Parquet they are STRING columns holding the text
 * (SAFE.PARSE_JSON reads them); an existing JSON column is filled by SAFE.PARSE_JSON,
 * text that is not JSON kept as a JSON string.
 */
export function bigqueryType(t: FieldType, format: LoadFormat = 'jsonl'): string {
  return t === 'json' && format === 'parquet' ? 'STRING' : BQ_TYPES[t];
}

/** The column type of a field in the staging table: what the load format carries. */
export function stageType(t: FieldType, format: LoadFormat): string {
  return bigqueryType(t, format);
}

/** `` `name` `` (field names are letters, digits and _; backticks are refused anyway). */
export function bqIdent(name: string): string {
  if (/[`\\\n]/.test(name)) throw configError('set up the BigQuery table', `"${name}" cannot be a column name`);
  return `\`${name}\``;
}

export interface BqTableRef { readonly projectId: string; readonly datasetId: string; readonly tableId: string }

/** `` `project.dataset.table` ``. */
export function bqTable(t: BqTableRef): string {
  return `\`${t.projectId}.${t.datasetId}.${t.tableId}\``;
}

export function bigqueryDialect(format: LoadFormat): WarehouseDialect<BqTableRef> {
  return {
    name: 'bigquery',
    ident: bqIdent,
    table: bqTable,
    columnType: (t) => bigqueryType(t, format),
    params: 'named',
    aliasWithAs: true,
    addColumns: { combined: true, ifNotExists: true },
    jsonFromText: (expr) => `IF(${expr} IS NULL, NULL, COALESCE(SAFE.PARSE_JSON(${expr}), TO_JSON(${expr})))`,
    catalogName: (n) => n.toLowerCase(),
  };
}

/** How a stage value becomes a target value of an (existing) column type. */
export function convert(expr: string, from: string, to: string | undefined): string {
  if (!to || from === to) return expr;
  // Text that is not JSON (a malformed cell, exported as it is) is kept as a JSON string, never fails the load.
  if (to === 'JSON' && from === 'STRING') return bigqueryDialect('jsonl').jsonFromText(expr);
  if (to === 'STRING' && from === 'JSON') return `TO_JSON_STRING(${expr})`;
  return expr;
}

/** The schema fields of a table's columns (all NULLABLE). */
export function tableFields(columns: readonly TableColumn[], typeOf: (c: TableColumn) => string): TableField[] {
  return columns.map((c) => ({ name: c.name, type: typeOf(c), mode: 'NULLABLE' }));
}

/** Creation metadata of the target: partitioned by DAY on its time column. */
export function targetTableMetadata(layout: TableLayout, format: LoadFormat = 'jsonl'): TableMetadata {
  return {
    schema: { fields: tableFields(layout.columns, (c) => bigqueryType(c.type, format)) },
    timePartitioning: { type: 'DAY', field: layout.mode === 'timestamp' ? 'timestamp' : WINDOW_START },
    labels: { created_by: 'bifrost-logs' },
  };
}

/** The @window_start/@window_end TIMESTAMP parameters. */
export function windowParams(w: { start: number; end: number }): Record<string, Date> {
  return { window_start: new Date(w.start), window_end: new Date(w.end) };
}
