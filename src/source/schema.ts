import { MCP_CORE_COLUMNS, type LogTableName } from './log-tables.js';

/** The columns every Bifrost SQLite log DB has had since August 2025. */
export const CORE_COLUMNS = [
  'id', 'timestamp', 'object_type', 'provider', 'model', 'input_history', 'output_message', 'embedding_output',
  'params', 'tools', 'tool_calls', 'speech_input', 'transcription_input', 'speech_output', 'transcription_output',
  'latency', 'token_usage', 'status', 'error_details', 'stream', 'content_summary', 'prompt_tokens',
  'completion_tokens', 'total_tokens', 'created_at',
] as const;

/**
 * The columns a query must be able to filter on. Missing optional ones make
 * their filter match nothing rather than fail (an old DB has no customers).
 */
export const FILTER_COLUMNS = {
  customers: 'customer_id',
  virtualKeys: 'virtual_key_id',
  teams: 'team_id',
  businessUnits: 'business_unit_id',
  users: 'user_id',
  metadata: 'metadata',
  cost: 'cost',
} as const;

/** Columns never read, whatever is asked for. */
export const NEVER_READ = new Set(['redaction_mapping']);

export interface DetectedSchema {
  /** Every column of `logs`, as the DB names it. */
  readonly columns: ReadonlySet<string>;
  /** Postgres data types by column (empty on SQLite). */
  readonly types: ReadonlyMap<string, string>;
  /** True when a monotonic insert counter exists for late-row detection. */
  readonly hasIncNumber: boolean;
  /** The log table these columns belong to (default `logs`). */
  readonly table?: LogTableName;
}

/** Maps a canonical column name to the one this DB uses (v1.4.5–1.4.6 singular `routing_engine_used`). */
export function physicalColumn(schema: DetectedSchema, name: string): string | undefined {
  if (schema.columns.has(name)) return name;
  if (name === 'routing_engines_used' && schema.columns.has('routing_engine_used')) return 'routing_engine_used';
  return undefined;
}

export function missingCoreColumns(columns: ReadonlySet<string>, table: LogTableName = 'logs'): string[] {
  return (table === 'mcp_tool_logs' ? MCP_CORE_COLUMNS : CORE_COLUMNS).filter((c) => !columns.has(c));
}

/** Legacy dotted object types, mapped to today's snake_case names. */
export const LEGACY_OBJECT_TYPES: Record<string, string> = {
  'chat.completion': 'chat_completion',
  'chat.completion.chunk': 'chat_completion_stream',
  'text.completion': 'text_completion',
  'text.completion.chunk': 'text_completion_stream',
  list: 'embedding',
  'audio.speech': 'speech',
  'audio.transcription': 'transcription',
  response: 'responses',
  'response.stream': 'responses_stream',
  'response.chunk': 'responses_stream',
  'audio.speech.chunk': 'speech_stream',
  'audio.transcription.chunk': 'transcription_stream',
  'image.generation': 'image_generation',
};

/** Every stored spelling of an object type, for IN lists: `chat_completion` also matches `chat.completion`. */
export function objectTypeSpellings(name: string): string[] {
  const canonical = LEGACY_OBJECT_TYPES[name] ?? name;
  const out = new Set([name, canonical]);
  for (const [legacy, modern] of Object.entries(LEGACY_OBJECT_TYPES)) if (modern === canonical) out.add(legacy);
  return [...out];
}

/** SQL for the four values every reader adds after the record's columns, in this order. */
export interface ReadExtras { tsMs: string; statusCode: string; position: string; passthroughParams: string }

/**
 * The select list of a read: each requested column once (never the ones that are never read), through the
 * dialect's `column` expression, then `__ts_ms`, `__status_code`, `__pos` and `__pt_params`.
 */
export function readSelectList(columns: readonly string[], column: (name: string) => string, extras: ReadExtras): { sql: string; names: string[] } {
  const names: string[] = [];
  const parts: string[] = [];
  for (const c of columns) {
    if (NEVER_READ.has(c) || names.includes(c)) continue;
    names.push(c);
    parts.push(column(c));
  }
  names.push('__ts_ms', '__status_code', '__pos', '__pt_params');
  parts.push(extras.tsMs, extras.statusCode, extras.position, extras.passthroughParams);
  return { sql: parts.join(', '), names };
}
