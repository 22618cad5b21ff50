import { CliError, configError } from '../errors.js';
import { resolveFields, type RecordTable } from '../record/select.js';
import type { FieldDef } from '../record/fields.js';
import type { TransformConfig } from '../config/schema.js';
import { GROUPABLE_FIELDS, TIME_BUCKETS, normaliseMetric } from '../source/aggregate-sql.js';
import type { LogTableName } from '../source/log-table.js';
import { LLM_ONLY_METRICS, MCP_GROUPABLE_FIELDS } from '../source/mcp-groups.js';
import { suggest } from '../util/suggest.js';

/** The fields an aggregate of this table can group on. */
export function groupableFields(table: LogTableName): string[] {
  return [...(table === 'mcp_tool_logs' ? MCP_GROUPABLE_FIELDS : GROUPABLE_FIELDS), ...TIME_BUCKETS];
}

/** A metric the table cannot compute (tokens of MCP calls), or undefined. */
export function metricOutsideTable(table: LogTableName, metrics: readonly string[]): string | undefined {
  return table === 'mcp_tool_logs' ? metrics.find((m) => LLM_ONLY_METRICS.has(normaliseMetric(m))) : undefined;
}

/** An aggregate transform's group_by and metrics must exist in the export's table. */
export function checkTransformsForTable(table: LogTableName, transforms: readonly TransformConfig[], at: string): void {
  transforms.forEach((t, i) => {
    if (t.type !== 'aggregate') return;
    const groupable = groupableFields(table);
    for (const g of t.group_by) {
      if (groupable.includes(g)) continue;
      const s = suggest(g, groupable);
      throw configError('set up aggregate', `${at}[${i}].group_by: cannot group ${table} by "${g}"${s ? ` (did you mean "${s}"?)` : ''}`, `group by: ${groupable.join(', ')}`);
    }
    const m = metricOutsideTable(table, t.metrics);
    if (m) throw configError('set up aggregate', `${at}[${i}].metrics: ${m} does not apply to ${table} (MCP tool calls have no tokens)`);
  });
}

/** The table's fields for include/fields; from a config (`where`), a name the table lacks is a config error (78). */
export function fieldsOfTable(o: { include?: readonly string[]; fields?: readonly string[] }, table: RecordTable, where?: string): FieldDef[] {
  try {
    return resolveFields(o, table);
  } catch (err) {
    if (where && err instanceof CliError) throw configError('load the config', `${where}: ${err.why}`, err.hint);
    throw err;
  }
}
