import { CliError, ExitCode } from '../errors.js';
import { physicalColumn, type DetectedSchema } from './schema.js';
import type { Dialect } from './filter.js';

/** mcp_tool_logs: what `stats --group-by` and `aggregate` can group on (record field names, and Bifrost's column names). */
export const MCP_GROUP_COLUMNS: Record<string, string> = {
  server: 'server_label', server_label: 'server_label', tool: 'tool_name', tool_name: 'tool_name', status: 'status',
  virtual_key_id: 'virtual_key_id', virtual_key_name: 'virtual_key_name', user_id: 'user_id', team_id: 'team_id',
  customer_id: 'customer_id', business_unit_id: 'business_unit_id', llm_request_id: 'llm_request_id',
};
export const MCP_GROUPABLE_FIELDS = ['server', 'tool', 'status', 'status_code', ...Object.keys(MCP_GROUP_COLUMNS).filter((k) => !['server', 'tool', 'status'].includes(k))];

/** Metrics that need LLM columns (tokens): none of them exists in mcp_tool_logs. */
export const LLM_ONLY_METRICS = new Set(['total_tokens', 'input_tokens', 'output_tokens']);

/** Bifrost's MCP stats (GetMCPToolLogStats: total executions, success rate, average latency, total cost) plus error rate and percentiles. */
export const DEFAULT_MCP_STATS_METRICS = ['calls', 'success_rate', 'error_rate', 'average_latency', 'p50_latency', 'p95_latency', 'p99_latency', 'total_cost'];

/** The SQL of an mcp_tool_logs group field. */
export function mcpGroupExpr(d: Dialect, schema: DetectedSchema, field: string, groupable: readonly string[]): string {
  if (field === 'status_code') return d.statusCode;
  const c = MCP_GROUP_COLUMNS[field];
  if (!c) {
    throw new CliError('aggregate', `cannot group mcp_tool_logs by "${field}"`, { exitCode: ExitCode.usage, hint: `group by one of: ${groupable.join(', ')}` });
  }
  const p = physicalColumn(schema, c);
  return p ? d.ident(p) : 'NULL';
}
