import type { FieldType } from '../../record/fields.js';
import type { WarehouseDialect } from '../warehouse/dialect.js';

const SF_TYPES: Record<FieldType, string> = {
  timestamp: 'TIMESTAMP_TZ',
  string: 'VARCHAR',
  int32: 'INTEGER',
  int64: 'INTEGER',
  double: 'FLOAT',
  bool: 'BOOLEAN',
  json: 'VARIANT',
};

export function snowflakeType(t: FieldType): string {
  return SF_TYPES[t];
}

/** The stage holds JSON as its text (parsed into VARIANT by the INSERT). */
export function snowflakeStageType(t: FieldType): string {
  return t === 'json' ? 'VARCHAR' : SF_TYPES[t];
}

/**
 * Columns are upper-cased and quoted: reserved words (`timestamp`) are safe,
 * and unquoted queries (`select request_id from …`) still find them.
 */
export function sfColumn(name: string): string {
  return `"${name.toUpperCase().replace(/"/g, '""')}"`;
}

export interface SfTableRef { readonly database: string; readonly schema: string; readonly table: string }

/** `DB.SCHEMA.TABLE`: config identifiers are plain (validated), so unquoted, as Snowflake users write them. */
export function sfTable(t: SfTableRef): string {
  return `${t.database}.${t.schema}.${t.table}`;
}

export const SNOWFLAKE_DIALECT: WarehouseDialect<SfTableRef> = {
  name: 'snowflake',
  ident: sfColumn,
  table: sfTable,
  columnType: snowflakeType,
  params: 'question',
  aliasWithAs: false,
  addColumns: { combined: false, ifNotExists: true },
  // A malformed cell is exported as its text: kept as a VARIANT string rather than failing the window.
  jsonFromText: (expr) => `COALESCE(TRY_PARSE_JSON(${expr}), TO_VARIANT(${expr}))`,
  catalogName: (n) => n.toUpperCase(),
};

/** The stage table: the record's columns, JSON as text. */
export const SNOWFLAKE_STAGE_DIALECT: WarehouseDialect<SfTableRef> = { ...SNOWFLAKE_DIALECT, columnType: snowflakeStageType };
