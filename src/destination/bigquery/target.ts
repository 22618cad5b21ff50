import type { TableMetadata } from '@google-cloud/bigquery';
import type { DestinationEnv } from '../types.js';
import type { TableLayout } from '../warehouse/layout.js';
import { evolveTable } from '../warehouse/staging.js';
import { bigqueryType, normalizeBqType, tableFields, targetTableMetadata, type BqTableRef, type LoadFormat } from './dialect.js';
import type { BigQueryApi } from './jobs.js';

/**
 * Creates the target when missing (partitioned by day on its time column),
 * or adds the layout's new columns as NULLABLE (a metadata patch; nothing is
 * dropped or retyped). Returns the target's column types (lower-case names,
 * standard type names).
 */
export function ensureTarget(api: BigQueryApi, target: BqTableRef, layout: TableLayout, format: LoadFormat, log: DestinationEnv['log']): Promise<Map<string, string>> {
  const where = `${target.projectId}.${target.datasetId}.${target.tableId}`;
  let meta: TableMetadata | null = null;
  return evolveTable(layout, {
    columns: async () => {
      try {
        meta = await api.metadata(target);
      } catch (err) {
        throw api.fail('read the table', err);
      }
      return new Map((meta?.schema?.fields ?? []).map((f) => [String(f.name).toLowerCase(), normalizeBqType(f.type)]));
    },
    fold: (n) => n.toLowerCase(),
    create: async () => {
      try {
        await api.createTable(target, targetTableMetadata(layout, format));
      } catch (err) {
        throw api.fail('create the table', err);
      }
      log.verbose(`bigquery: created ${where}`);
    },
    add: async (missing) => {
      const fields = [...((meta as TableMetadata | null)?.schema?.fields ?? []), ...tableFields(missing, (c) => bigqueryType(c.type, format))];
      try {
        await api.call(() => api.table(target).setMetadata({ schema: { fields } }), { attempts: 3 });
      } catch (err) {
        throw api.fail(`add the columns ${missing.map((c) => c.name).join(', ')}`, err);
      }
      log.verbose(`bigquery: added ${missing.map((c) => c.name).join(', ')} to ${where}`);
    },
  });
}
