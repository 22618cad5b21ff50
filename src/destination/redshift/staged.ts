import type { TableColumn, TableLayout, Window } from '../warehouse/layout.js';
import { qualified, quoteIdent, quoteLiteral, type TableRef } from '../warehouse/pg-wire.js';
import { insertFromStageSql } from '../warehouse/sql.js';
import type { Statement } from '../warehouse/dialect.js';
import { redshiftDialect } from './dialect.js';

export const S3_STAGE = 'bifrost_logs_stage';
export const LATE_STAGE = 'bifrost_logs_late';

export interface StagedObject { readonly bucket: string; readonly key: string }
export interface StagedCopyOptions { readonly iamRole: string; readonly region?: string }

/** `COPY … FROM 's3://…' IAM_ROLE … FORMAT AS JSON 'auto ignorecase'`: keys matched to columns by name. */
export function redshiftCopySql(target: string, columns: readonly TableColumn[], obj: StagedObject, o: StagedCopyOptions): string {
  return [
    `COPY ${target} (${columns.map((c) => quoteIdent(c.name)).join(', ')})`,
    `FROM ${quoteLiteral(`s3://${obj.bucket}/${obj.key}`)}`,
    `IAM_ROLE ${quoteLiteral(o.iamRole)}`,
    // Text over a VARCHAR's bytes is cut to fit rather than failing the window.
    `FORMAT AS JSON 'auto ignorecase' TIMEFORMAT 'auto' TRUNCATECOLUMNS`,
    ...(o.region ? [`REGION ${quoteLiteral(o.region)}`] : []),
  ].join(' ');
}

/** `CREATE TEMP TABLE stage (LIKE target)`: a session stage of the table's own columns. */
export const createStageSql = (t: TableRef, stage: string) => `CREATE TEMP TABLE ${quoteIdent(stage)} (LIKE ${qualified(t)})`;

/**
 * The statements of a staged (S3) load, after the table is ensured and the
 * window deleted: raw windows COPY straight into the table; late parts and
 * aggregated rows go through a TEMP stage (LIKE the table) so that late rows
 * skip known request_ids and aggregated rows get their window.
 */
export function stagedLoadStatements(t: TableRef, layout: TableLayout, c: { late: boolean; window: Window }, objects: readonly StagedObject[], o: StagedCopyOptions): Statement[] {
  if (!objects.length) return [];
  const direct = !layout.columns.some((col) => col.window) && !(c.late && layout.keyed);
  if (direct) return objects.map((obj) => ({ text: redshiftCopySql(qualified(t), layout.recordColumns, obj, o), values: [] }));
  const out: Statement[] = [{ text: createStageSql(t, S3_STAGE), values: [] }];
  for (const obj of objects) out.push({ text: redshiftCopySql(quoteIdent(S3_STAGE), layout.recordColumns, obj, o), values: [] });
  out.push(insertFromStageSql(redshiftDialect('SUPER'), { target: t, stage: quoteIdent(S3_STAGE), layout, window: c.window, late: c.late }));
  out.push({ text: `DROP TABLE ${quoteIdent(S3_STAGE)}`, values: [] });
  return out;
}
