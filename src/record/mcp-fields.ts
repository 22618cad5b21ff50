import { createIsoFormatter } from '../util/time.js';
import { col, derived, int, jsonCol, num, str, truthy, type FieldDef } from './field-kit.js';
import { tryJson } from './json-cell.js';

/**
 * The MCP tool-call record: one row of Bifrost's mcp_tool_logs (MCPToolLog
 * in framework/logstore/tables.go). `request_id` is the call's own id (unique,
 * the key warehouses merge on); `llm_request_id` is the LLM request that made
 * the call, equal to that request's `request_id` in the logs record.
 */
const BASE: FieldDef[] = [
  { name: 'timestamp', type: 'timestamp', nullable: false, deps: [], make: (a) => { const i = a.idx('__ts_ms'); const iso = createIsoFormatter(); return (r) => (r[i] === null ? null : iso(r[i] as number)); } },
  col('request_id', 'string', str, 'id'),
  col('llm_request_id'),
  col('server', 'string', str, 'server_label'),
  col('tool', 'string', str, 'tool_name'),
  col('status'),
  { name: 'status_code', type: 'int32', nullable: true, deps: [], make: (a) => { const i = a.idx('__status_code'); return (r) => int(r[i]); } },
  col('latency_ms', 'int32', int, 'latency'),
  col('cost_usd', 'double', num, 'cost'),
  col('virtual_key_id'),
  col('user_id'),
  col('team_id'),
  col('customer_id'),
];

/** Bifrost's BifrostError in error_details, for error rows only. */
const errorPart = (name: string, pick: (e: any) => unknown): FieldDef =>
  derived(name, 'string', ['error_details', 'status'], (a) => {
    const i = a.idx('error_details');
    const s = a.idx('status');
    return (r) => {
      const e = r[s] === 'error' && i >= 0 ? (tryJson(r[i]) as any) : null;
      const v = e && typeof e === 'object' ? pick(e) : null;
      return v === undefined || v === null || v === '' ? null : typeof v === 'string' ? v : JSON.stringify(v);
    };
  });

export const MCP_INCLUDE_GROUPS: Record<string, FieldDef[]> = {
  tool_io: [
    jsonCol('arguments', 'arguments', { content: true }),
    jsonCol('result', 'result', { content: true }),
    derived('content_state', 'string', ['content_hidden', 'has_object'], (a) => {
      const h = a.idx('content_hidden');
      const o = a.idx('has_object');
      return (r) => (h >= 0 && truthy(r[h]) ? 'hidden' : o >= 0 && truthy(r[o]) ? 'offloaded' : 'inline');
    }),
  ],
  error_logs: [
    errorPart('error_type', (e) => e.error?.type ?? e.type),
    errorPart('error_code', (e) => e.error?.code),
    errorPart('error_message', (e) => e.error?.message ?? e.message),
  ],
  identity: [col('virtual_key_name'), col('business_unit_id'), col('user_agent'), col('app')],
  traces: [col('gateway_request_id', 'string', str, 'request_id'), jsonCol('metadata', 'metadata')],
};

const BY_NAME_ONLY: FieldDef[] = [
  col('server_label'),
  col('tool_name'),
  jsonCol('error_details', 'error_details'),
  col('has_object', 'bool', (v) => (v === null || v === undefined ? null : truthy(v))),
];

export const MCP_BASE_FIELDS = BASE.map((f) => f.name);
export const MCP_GROUP_NAMES = Object.keys(MCP_INCLUDE_GROUPS);

const ALL = new Map<string, FieldDef>();
for (const f of [...BASE, ...Object.values(MCP_INCLUDE_GROUPS).flat(), ...BY_NAME_ONLY]) if (!ALL.has(f.name)) ALL.set(f.name, f);
export const MCP_FIELD_NAMES = [...ALL.keys()];

/** --include / --fields over the MCP record, in order, de-duplicated. */
export function selectMcpFields(opts: { include?: readonly string[]; fields?: readonly string[] }): FieldDef[] {
  if (opts.fields?.length) return opts.fields.map((n) => ALL.get(n)!);
  const chosen = [...BASE, ...(opts.include ?? []).flatMap((g) => MCP_INCLUDE_GROUPS[g] ?? [])];
  return chosen.filter((f, i) => chosen.findIndex((x) => x.name === f.name) === i);
}
