/** The two log tables every Bifrost store holds: LLM requests, and MCP tool calls. */
export const LOG_TABLES = ['logs', 'mcp_tool_logs'] as const;
export type LogTableName = (typeof LOG_TABLES)[number];
export const DEFAULT_LOG_TABLE: LogTableName = 'logs';

/** The columns Bifrost's mcp_tool_logs has had since its first migration (MCPToolLog in tables.go). */
export const MCP_CORE_COLUMNS = [
  'id', 'llm_request_id', 'timestamp', 'tool_name', 'server_label', 'arguments', 'result', 'error_details',
  'latency', 'cost', 'status', 'created_at',
] as const;
