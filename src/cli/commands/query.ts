import { createTableWriter, fitTable } from '../table.js';
import { stringify } from 'csv-stringify/sync';
import { usageError } from '../../errors.js';
import { createRecordMapper } from '../../record/mapper.js';
import { createWarnings } from '../../record/json-cell.js';
import { resolveFields } from '../../record/select.js';
import { mergeFilterSpecs, resolveFilter, type FilterSpec } from '../../source/filter-spec.js';
import type { SortKey } from '../../source/types.js';
import { checkFiltersForTable, type LogTableName } from '../../source/log-table.js';
import type { Ctx } from '../context.js';
import { formatCell } from '../format-cell.js';
import { guardFormula } from '../../format/csv.js';

export interface QueryOptions {
  filters: FilterSpec;
  fields?: string[];
  include?: string[];
  sort: SortKey;
  order: 'asc' | 'desc';
  limit?: number;
  offset?: number;
  all?: boolean;
  json?: boolean;
  csv?: boolean;
  table?: boolean;
  /** The log table (default logs). */
  logTable?: LogTableName;
}

const TABLE_FIELDS = ['timestamp', 'request_id', 'provider', 'model', 'status_code', 'latency_ms', 'input_tokens', 'output_tokens', 'cost_usd'];
const MCP_TABLE_FIELDS = ['timestamp', 'request_id', 'server', 'tool', 'status_code', 'latency_ms', 'cost_usd'];

/** `bifrost-logs query`: records to the terminal, NDJSON or CSV, streamed. */
export async function queryCommand(ctx: Ctx, o: QueryOptions): Promise<number> {
  if (o.all && o.limit !== undefined) throw usageError('parse the command line', '--all and --limit cannot be used together');
  const mode = o.json ? 'json' : o.csv ? 'csv' : o.table || ctx.out.isTTY ? 'table' : 'json';
  const logTable = o.logTable ?? 'logs';
  if (logTable === 'mcp_tool_logs' && o.sort === 'tokens') throw usageError('parse --sort', 'mcp_tool_logs has no tokens to sort by', 'sort MCP tool calls by timestamp, latency or cost');
  const fields = resolveFields({ include: o.include, fields: o.fields ?? (mode === 'table' && !o.include ? (logTable === 'logs' ? TABLE_FIELDS : MCP_TABLE_FIELDS) : undefined) }, logTable);
  checkFiltersForTable(logTable, o.filters);
  const filter = resolveFilter(mergeFilterSpecs(undefined, o.filters), ctx.now(), ctx.tz);
  const { source } = await ctx.openSource(logTable);
  const warnings = createWarnings();
  const mapper = createRecordMapper(fields, warnings);
  const pages = source.list({
    filter, columns: mapper.columns, sort: o.sort, order: o.order,
    limit: o.all ? undefined : (o.limit ?? 100), offset: o.offset,
  });
  let n = 0;
  let header = true;
  let noted = false;
  const dropNote = (d: string[]) => {
    if (noted) return;
    noted = true;
    ctx.log.info(`${d.length} column(s) left out to fit ${ctx.out.columns} columns: ${d.join(', ')} (use --fields, --json or --csv for every column)`);
  };
  // A table streams too: the first page sets its columns and widths.
  const table = mode === 'table' ? createTableWriter(fields.map((f) => f.name), ctx.out.columns) : null;
  for await (const page of pages) {
    const recs = mapper.map(page);
    n += recs.length;
    if (mode === 'json') {
      let s = '';
      for (const r of recs) s += `${JSON.stringify(r)}\n`;
      await ctx.out.write(s);
    } else if (mode === 'csv') {
      if (header) await ctx.out.write(stringify([fields.map((f) => f.name)]));
      header = false;
      await ctx.out.write(stringify(recs.map((r) => fields.map((f) => guardFormula(formatCell(r[f.name], true))))));
    } else {
      await ctx.out.write(table!.page(recs));
      if (table!.dropped.length) dropNote(table!.dropped);
    }
  }
  if (table) await ctx.out.write(table.end());
  if (mode === 'csv' && header) await ctx.out.write(stringify([fields.map((f) => f.name)]));
  if (n === 0 && filter.providers?.some((p) => p !== p.toLowerCase())) {
    // Bifrost's provider names are lower case (openai, anthropic); matching is exact.
    const lower = [...new Set(filter.providers.map((p) => p.toLowerCase()))];
    const c = await source.count({ ...filter, providers: lower });
    if (c > 0) ctx.log.info(`no rows match; ${c} rows match --providers ${lower.join(',')} (provider names are lower case and matched exactly)`);
    else if (mode === 'table') ctx.log.info('no rows match');
  } else if (mode === 'table' && n === 0) ctx.log.info('no rows match');
  if (warnings.malformedJson && !ctx.log.isQuiet) ctx.log.warn(`${warnings.malformedJson} malformed JSON cell(s) kept as text`);
  return 0;
}

/** A table that fits the terminal (see fitTable); dropped columns are named on stderr once. */
export function renderTable(names: string[], rows: Record<string, unknown>[], width: number, onDropped?: (names: string[]) => void): string {
  const r = fitTable(names, rows, width);
  if (r.dropped.length) onDropped?.(r.dropped);
  return r.text;
}
