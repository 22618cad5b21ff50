import { configError, usageError } from '../errors.js';
import { suggest } from '../util/suggest.js';
import type { DetectedSchema } from './schema.js';
import type { FilterSpec } from './filter-spec.js';
import { LOG_TABLES, type LogTableName } from './log-tables.js';

export { DEFAULT_LOG_TABLE, LOG_TABLES, MCP_CORE_COLUMNS, type LogTableName } from './log-tables.js';

export function isLogTable(v: unknown): v is LogTableName {
  return typeof v === 'string' && (LOG_TABLES as readonly string[]).includes(v);
}

/** Parses a log-table name given on the command line; a wrong one is one line with a did-you-mean (exit 64). */
export function parseLogTable(value: string, flag = '--log-table'): LogTableName {
  if (isLogTable(value)) return value;
  const s = suggest(value, LOG_TABLES);
  throw usageError(`parse ${flag}`, `unknown log table "${value}"${s ? ` (did you mean "${s}"?)` : ''}`, `log tables: ${LOG_TABLES.join(', ')}`);
}

/** The table a detected schema describes. */
export function tableOf(schema: Pick<DetectedSchema, 'table'>): LogTableName {
  return schema.table ?? 'logs';
}

/** Filter keys on LLM-request columns: none of them exists in mcp_tool_logs. */
const LLM_ONLY_FILTERS: Array<keyof FilterSpec> = ['providers', 'models', 'objects', 'min_tokens', 'max_tokens', 'search', 'metadata'];
/** Filter keys on MCP columns: the logs table has no server or tool. */
const MCP_ONLY_FILTERS: Array<keyof FilterSpec> = ['servers', 'tools'];

/**
 * Refuses a filter the table has no column for, in one line: a usage error
 * (exit 64) for flags, a config error (exit 78) for a config's `filters` at `where`.
 */
export function checkFiltersForTable(table: LogTableName, spec: FilterSpec | undefined, where?: string): void {
  const wrong = (table === 'mcp_tool_logs' ? LLM_ONLY_FILTERS : MCP_ONLY_FILTERS).filter((k) => spec?.[k] !== undefined);
  if (!wrong.length) return;
  const names = wrong.map((k) => (where ? `${where}.filters.${k}` : `--${k.replace(/_/g, '-')}`)).join(', ');
  const why = `${names} ${wrong.length === 1 ? 'does' : 'do'} not apply to ${table}`;
  const hint = table === 'mcp_tool_logs'
    ? 'mcp_tool_logs filters: time, status, status codes, has errors, latency, cost, virtual keys, users, teams, business units, customers, servers, tools'
    : 'servers and tools filter MCP tool calls: add --log-table mcp_tool_logs';
  throw where ? configError('load the config', why, hint) : usageError('apply the filters', why, hint);
}
