import { createIsoFormatter, isoMs } from '../util/time.js';
import { canonicalObjectType, routeOf } from '../source/endpoint.js';
import { parseJsonCell, scrubSecrets, tryJson } from './json-cell.js';
import { col, derived, errorPart, firstPresent, int, jsonCol, jsonPath, num, str, truthy, type FieldDef, type Getter, type RowAccess } from './field-kit.js';

export { truthy } from './field-kit.js';
export type { ExportRecord, FieldDef, FieldType, RecordSchema, RowAccess, SchemaField } from './field-kit.js';

function routeGetter(a: RowAccess, part: 'endpoint' | 'method'): Getter {
  const ot = a.idx('object_type');
  // Only passthrough rows need params; the reader sends it for those rows alone.
  const params = a.idx('__pt_params');
  const cache = new Map<string, { endpoint: string | null; method: string }>();
  return (r) => {
    const t = String(r[ot] ?? '');
    if (t === 'passthrough') {
      const p = tryJson(params >= 0 ? r[params] : null) as any;
      const v = p && typeof p === 'object' ? p[part === 'endpoint' ? 'path' : 'method'] : null;
      return typeof v === 'string' && v ? (part === 'method' ? v.toUpperCase() : v) : part === 'method' ? 'POST' : null;
    }
    let route = cache.get(t);
    if (!route) cache.set(t, (route = routeOf(t)));
    return route[part];
  };
}

/** The 12 fields of Bifrost's documented export record, in order. */
const BASE: FieldDef[] = [
  { name: 'timestamp', type: 'timestamp', nullable: false, deps: [], make: (a) => { const i = a.idx('__ts_ms'); const iso = createIsoFormatter(); return (r) => (r[i] === null ? null : iso(r[i] as number)); } },
  col('request_id', 'string', str, 'id'),
  col('customer_id'),
  col('provider'),
  // Bifrost writes '' for a request without a model: kept as '', not null.
  col('model', 'string', (v) => (v === null || v === undefined ? null : String(v))),
  derived('endpoint', 'string', ['object_type'], (a) => routeGetter(a, 'endpoint')),
  derived('method', 'string', ['object_type'], (a) => routeGetter(a, 'method')),
  { name: 'status_code', type: 'int32', nullable: true, deps: [], make: (a) => { const i = a.idx('__status_code'); return (r) => int(r[i]); } },
  col('latency_ms', 'int32', int, 'latency'),
  col('input_tokens', 'int32', int, 'prompt_tokens'),
  col('output_tokens', 'int32', int, 'completion_tokens'),
  col('cost_usd', 'double', num, 'cost'),
];

/** The content state of a row: what happened to its payload fields. */
const contentState: FieldDef = derived('content_state', 'string', ['content_hidden', 'has_object'], (a) => {
  const h = a.idx('content_hidden');
  const o = a.idx('has_object');
  return (r) => (h >= 0 && truthy(r[h]) ? 'hidden' : o >= 0 && truthy(r[o]) ? 'offloaded' : 'inline');
});

/** Where Bifrost's payload offload stored the row's content, relative to the gateway bucket's prefix. */
const contentObjectKey: FieldDef = derived('content_object_key', 'string', ['has_object', '__ts_ms', 'id'], (a) => {
  const o = a.idx('has_object');
  const t = a.idx('__ts_ms');
  const id = a.idx('id');
  return (r) => {
    if (o < 0 || !truthy(r[o])) return null;
    const iso = isoMs(r[t] as number);
    return `logs/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}/${String(r[id])}.json.gz`;
  };
});

/**
 * The cost split: Bifrost's cost columns where the row has them (a reprice rewrites those and leaves
 * token_usage.cost stale), else token_usage.cost. Null for an unpriced row.
 */
const costBreakdown: FieldDef = derived('cost_breakdown', 'json', ['token_usage', 'input_cost', 'output_cost', 'additional_cost', 'cost'], (a) => {
  const [i, o, x, c] = ['input_cost', 'output_cost', 'additional_cost', 'cost'].map((n) => a.idx(n)) as [number, number, number, number];
  const stored = jsonPath('token_usage', ['cost'])(a);
  const at = (r: unknown[], k: number) => (k < 0 ? null : num(r[k]));
  return (r) => {
    const inCost = at(r, i);
    const outCost = at(r, o);
    const addCost = at(r, x);
    if (inCost === null && outCost === null && addCost === null) return stored(r);
    const total = at(r, c);
    if (total === null && !inCost && !outCost && !addCost) return null;
    return { input_tokens_cost: inCost ?? 0, output_tokens_cost: outCost ?? 0, additional_cost: addCost ?? 0, total_cost: total };
  };
});

/** `tool_call_names`: a JSON array of names (comma-separated text is read as a list too). */
const toolCallNames: FieldDef = derived('tool_call_names', 'json', ['tool_call_names'], (a) => {
  const i = a.idx('tool_call_names');
  return (r) => {
    const v = i < 0 ? null : r[i];
    if (v === null || v === undefined || v === '') return null;
    const j = tryJson(v);
    if (Array.isArray(j)) return j.map((e) => (typeof e === 'string' ? e : JSON.stringify(e)));
    return String(v).split(',').map((t) => t.trim()).filter(Boolean);
  };
});

export const INCLUDE_GROUPS: Record<string, FieldDef[]> = {
  request_logs: [
    derived('request_type', 'string', ['object_type'], (a) => { const i = a.idx('object_type'); return (r) => (r[i] ? canonicalObjectType(String(r[i])) : null); }),
    firstPresent('messages', ['input_history', 'responses_input_history']),
    jsonCol('params', 'params'),
    jsonCol('tools', 'tools', { content: true }),
    col('stream', 'bool', (v) => (v === null || v === undefined ? null : truthy(v))),
    col('content_summary', 'string', str),
    col('virtual_key_id'), col('virtual_key_name'),
    col('user_id'), col('user_name'),
    col('team_id'), col('team_name'),
    jsonCol('team_ids', 'team_ids'), jsonCol('customer_ids', 'customer_ids'),
    col('business_unit_id'), col('business_unit_name'),
    col('project_id'), col('project_name'),
    col('session_id'),
    col('user_agent'), col('app'),
    col('service_tier'),
    toolCallNames,
    jsonCol('metadata', 'metadata'),
    contentState,
    contentObjectKey,
  ],
  response_logs: [
    firstPresent('output', ['output_message', 'responses_output', 'transcription_output']),
    jsonCol('tool_calls', 'tool_calls', { content: true }),
    col('stop_reason'),
    contentState,
  ],
  error_logs: [
    errorPart('error_type', (e) => e.error?.type ?? e.type),
    errorPart('error_code', (e) => e.error?.code),
    errorPart('error_message', (e) => e.error?.message ?? e.message),
  ],
  metrics: [
    col('total_tokens', 'int32', int),
    derived('cached_tokens', 'int32', ['cached_read_tokens', 'token_usage'], (a) => {
      const c = a.idx('cached_read_tokens');
      const tu = jsonPath('token_usage', ['prompt_tokens_details', 'cached_read_tokens'])(a);
      return (r) => int(c >= 0 && r[c] !== null && r[c] !== undefined ? r[c] : tu(r));
    }),
    derived('reasoning_tokens', 'int32', ['token_usage'], (a) => { const g = jsonPath('token_usage', ['completion_tokens_details', 'reasoning_tokens'])(a); return (r) => int(g(r)); }),
    col('retries', 'int32', int, 'number_of_retries'),
    col('cached_read_tokens', 'int32', int),
    costBreakdown,
    col('input_cost_usd', 'double', num, 'input_cost'),
    col('output_cost_usd', 'double', num, 'output_cost'),
    col('additional_cost_usd', 'double', num, 'additional_cost'),
    col('upstream_latency_ms', 'double', num, 'upstream_latency'),
    col('overhead_latency_ms', 'double', num, 'overhead_latency'),
    derived('cache_hit', 'bool', ['cache_debug'], (a) => { const g = jsonPath('cache_debug', ['cache_hit'])(a); return (r) => { const v = g(r); return v === null ? null : truthy(v); }; }),
    derived('cache_hit_type', 'string', ['cache_debug'], (a) => { const g = jsonPath('cache_debug', ['hit_type'])(a); return (r) => str(g(r)); }),
  ],
  traces: [
    col('parent_request_id'),
    col('fallback_index', 'int32', int),
    jsonCol('attempt_trail', 'attempt_trail'),
    derived('routing_engines', 'json', ['routing_engines_used'], (a) => {
      const i = a.idx('routing_engines_used');
      return (r) => (i < 0 || !r[i] ? null : String(r[i]).split(',').map((s) => s.trim()).filter(Boolean));
    }),
    col('selected_key_id'), col('selected_key_name'),
    col('routing_rule_id'), col('routing_rule_name'),
    col('alias'), col('canonical_model_name'), col('served_model'),
  ],
};

function rawField(name: 'raw_request' | 'raw_response'): FieldDef {
  return derived(name, 'json', [name, 'id'], (a) => {
    const i = a.idx(name);
    const id = a.idx('id');
    return (r) => (i < 0 ? null : scrubSecrets(parseJsonCell(r[i], a.warnings, `${name} of ${String(r[id])}`)));
  }, true);
}

/** Fields reachable only by name with --fields (never by a group). */
const BY_NAME_ONLY: FieldDef[] = [
  rawField('raw_request'),
  rawField('raw_response'),
  col('object_type'),
  col('status'),
  col('customer_name'),
  jsonCol('token_usage', 'token_usage'),
  jsonCol('error_details', 'error_details'),
  jsonCol('cache_debug', 'cache_debug'),
];

export const BASE_FIELDS = BASE.map((f) => f.name);
export const GROUP_NAMES = Object.keys(INCLUDE_GROUPS);

const ALL: Map<string, FieldDef> = new Map();
for (const f of [...BASE, ...Object.values(INCLUDE_GROUPS).flat(), ...BY_NAME_ONLY]) if (!ALL.has(f.name)) ALL.set(f.name, f);

export const ALL_FIELD_NAMES = [...ALL.keys()];

/** Resolves --include / --fields to an ordered, de-duplicated field list. */
export function selectFields(opts: { include?: readonly string[]; fields?: readonly string[] }): FieldDef[] {
  if (opts.fields && opts.fields.length) return opts.fields.map((n) => ALL.get(n)!);
  const out = new Map<string, FieldDef>();
  for (const f of BASE) out.set(f.name, f);
  for (const g of opts.include ?? []) for (const f of INCLUDE_GROUPS[g] ?? []) if (!out.has(f.name)) out.set(f.name, f);
  return [...out.values()];
}

