import type { FieldType } from '../../record/fields.js';
import type { WarehouseDialect } from '../warehouse/dialect.js';
import type { TableRef } from '../warehouse/pg-wire.js';
import { PG_TYPES, POSTGRES_DIALECT } from '../postgres/dialect.js';

/**
 * Redshift: TEXT would mean VARCHAR(256) there, so strings are VARCHAR(65535)
 * (the largest, same as VARCHAR(MAX), and also valid PostgreSQL). JSON is
 * SUPER when loaded by COPY from S3 (`json: 'SUPER'`), and VARCHAR(65535)
 * holding the JSON text on the INSERT path, which must also run on plain
 * PostgreSQL. Names are folded to lower case; one plain ADD COLUMN per
 * statement; no indexes.
 */
export function redshiftDialect(json: 'SUPER' | 'VARCHAR(65535)'): WarehouseDialect<TableRef> {
  const types: Record<FieldType, string> = { ...PG_TYPES, string: 'VARCHAR(65535)', json };
  return {
    ...POSTGRES_DIALECT,
    name: 'redshift',
    columnType: (t) => types[t],
    addColumns: { combined: false, ifNotExists: false },
    // Values are bound as JSON.stringify'd text, always JSON: JSON_PARSE cannot fail on them.
    jsonFromText: (expr) => `JSON_PARSE(${expr})`,
    catalogName: (n) => n.toLowerCase(),
  };
}
