import type { FieldType } from '../../record/fields.js';
import type { WarehouseDialect } from '../warehouse/dialect.js';
import { qualified, quoteIdent, type TableRef } from '../warehouse/pg-wire.js';

export const PG_TYPES: Record<FieldType, string> = {
  timestamp: 'TIMESTAMPTZ',
  string: 'TEXT',
  int32: 'INTEGER',
  int64: 'BIGINT',
  double: 'DOUBLE PRECISION',
  bool: 'BOOLEAN',
  json: 'JSONB',
};

/** PostgreSQL: names as given, `$n` parameters, one ALTER … ADD COLUMN IF NOT EXISTS for all new columns. */
export const POSTGRES_DIALECT: WarehouseDialect<TableRef> = {
  name: 'postgres',
  ident: quoteIdent,
  table: qualified,
  columnType: (t) => PG_TYPES[t],
  params: 'dollar',
  aliasWithAs: false,
  addColumns: { combined: true, ifNotExists: true },
  // Staged documents are jsonb already; a malformed cell arrives as a JSON string.
  jsonFromText: (expr) => expr,
  catalogName: (n) => n,
};

/** The name of the unique index on request_id (PostgreSQL truncates past 63 bytes, consistently). */
export function requestIdIndexName(t: TableRef): string {
  return `${t.table}_request_id_key`;
}

export function uniqueIndexSql(t: TableRef): string {
  return `CREATE UNIQUE INDEX IF NOT EXISTS ${quoteIdent(requestIdIndexName(t))} ON ${qualified(t)} (${quoteIdent('request_id')})`;
}
