import { usageError } from '../errors.js';
import { suggest } from '../util/suggest.js';
import { ALL_FIELD_NAMES, GROUP_NAMES, selectFields, type FieldDef } from './fields.js';
import { MCP_FIELD_NAMES, MCP_GROUP_NAMES, selectMcpFields } from './mcp-fields.js';

/** The record of a log table: `logs` (LLM requests) or `mcp_tool_logs` (MCP tool calls). */
export type RecordTable = 'logs' | 'mcp_tool_logs';

/** Every group and field name either record knows (for the config schema; each export checks its own table's). */
export const ANY_GROUP_NAMES = [...new Set([...GROUP_NAMES, ...MCP_GROUP_NAMES])];
export const ANY_FIELD_NAMES = [...new Set([...ALL_FIELD_NAMES, ...MCP_FIELD_NAMES])];

/** Validates --include / --fields against the table's record and returns the field list. */
export function resolveFields(o: { include?: readonly string[]; fields?: readonly string[] }, table: RecordTable = 'logs'): FieldDef[] {
  const mcp = table === 'mcp_tool_logs';
  const groups = mcp ? MCP_GROUP_NAMES : GROUP_NAMES;
  const names = mcp ? MCP_FIELD_NAMES : ALL_FIELD_NAMES;
  const of = mcp ? ' of mcp_tool_logs' : '';
  for (const g of o.include ?? []) {
    if (!groups.includes(g)) {
      const s = suggest(g, groups);
      throw usageError('parse --include', `unknown group "${g}"${of}${s ? ` (did you mean "${s}"?)` : ''}`, `groups: ${groups.join(', ')}`);
    }
  }
  for (const f of o.fields ?? []) {
    if (!names.includes(f)) {
      const s = suggest(f, names);
      throw usageError('parse --fields', `unknown field "${f}"${of}${s ? ` (did you mean "${s}"?)` : ''}`, 'see "Export record" in the README for every field');
    }
  }
  return mcp ? selectMcpFields(o) : selectFields(o);
}
