import { createIsoFormatter, isoMs } from '../util/time.js';
import { canonicalObjectType, routeOf } from './endpoint.js';
import { parseJsonCell, scrubSecrets, tryJson, type RecordWarnings } from './json-cell.js';

export type FieldType = 'timestamp' | 'string' | 'int32' | 'int64' | 'double' | 'bool' | 'json';

/** One column of the export schema. */
export interface SchemaField {
  readonly name: string;
  readonly type: FieldType;
  readonly nullable: boolean;
}
export type RecordSchema = readonly SchemaField[];
export type ExportRecord = Record<string, unknown>;

export interface RowAccess {
  /** Index of a canonical column in the page row, or -1. */
  idx(column: string): number;
  warnings: RecordWarnings;
}

type Getter = (r: unknown[]) => unknown;

interface FieldDef extends SchemaField {
  /** Canonical DB columns the field reads. */
  readonly deps: readonly string[];
  /** Content: dropped for content_hidden rows and marked for offloaded ones. */
  readonly content?: boolean;
  make(a: RowAccess): Getter;
}

export const truthy = (v: unknown) => v === true || v === 1 || v === '1' || v === 't' || v === 'true';
export const str = (v: unknown) => (v === null || v === undefined || v === '' ? null : String(v));
export const num = (v: unknown) => (v === null || v === undefined || v === '' ? null : Number(v));
export const int = (v: unknown) => (v === null || v === undefined || v === '' ? null : Math.round(Number(v)));

export function col(name: string, type: FieldType = 'string', conv: (v: unknown) => unknown = str, column = name): FieldDef {
  return {
    name, type, nullable: true, deps: [column],
    make(a) {
      const i = a.idx(column);
      return i < 0 ? () => null : (r) => conv(r[i]);
    },
  };
}

export function jsonCol(name: string, column: string, opts: { content?: boolean } = {}): FieldDef {
  return {
    name, type: 'json', nullable: true, deps: [column, 'id'], content: opts.content,
    make(a) {
      const i = a.idx(column);
      const id = a.idx('id');
      return i < 0 ? () => null : (r) => parseJsonCell(r[i], a.warnings, `${column} of ${String(r[id])}`);
    },
  };
}

/** Looks into a JSON cell (without counting malformed text twice). */
function jsonPath(column: string, path: readonly string[]): (a: RowAccess) => Getter {
  return (a) => {
    const i = a.idx(column);
    if (i < 0) return () => null;
    return (r) => {
      let v = tryJson(r[i]) as any;
      for (const p of path) {
        if (v === null || v === undefined || typeof v !== 'object') return null;
        v = v[p];
      }
      return v ?? null;
    };
  };
}

export function derived(name: string, type: FieldType, deps: string[], make: (a: RowAccess) => Getter, content = false): FieldDef {
  return { name, type, nullable: true, deps, make, content };
}

const firstPresent = (name: string, columns: string[]): FieldDef => ({
  name, type: 'json', nullable: true, deps: [...columns, 'id'], content: true,
  make(a) {
    const idx = columns.map((c) => a.idx(c)).filter((i) => i >= 0);
    const id = a.idx('id');
    return (r) => {
      for (const i of idx) {
        const v = r[i];
        if (v !== null && v !== undefined && v !== '') return parseJsonCell(v, a.warnings, `${columns[0]} of ${String(r[id])}`);
      }
      return null;
    };
  },
});

const errorPart = (name: string, pick: (e: any) => unknown): FieldDef =>
  derived(name, 'string', ['error_details', 'status'], (a) => {
    const i = a.idx('error_details');
    const s = a.idx('status');
    return (r) => {
      if ((r[s] !== 'error' && r[s] !== 'cancelled') || i < 0) return null;
      const e = tryJson(r[i]) as any;
      if (!e || typeof e !== 'object') return null;
      const v = pick(e);
      return v === undefined || v === null || v === '' ? null : typeof v === 'string' ? v : JSON.stringify(v);
    };
  });

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
    derived('cost_breakdown', 'json', ['token_usage'], jsonPath('token_usage', ['cost'])),
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
  col('alias'),
  col('business_unit_id'),
  col('business_unit_name'),
  jsonCol('token_usage', 'token_usage'),
  jsonCol('error_details', 'error_details'),
  jsonCol('cache_debug', 'cache_debug'),
];

export const BASE_FIELDS = BASE.map((f) => f.name);
export const GROUP_NAMES = Object.keys(INCLUDE_GROUPS);

const ALL: Map<string, FieldDef> = new Map();
for (const f of [...BASE, ...Object.values(INCLUDE_GROUPS).flat(), ...BY_NAME_ONLY]) if (!ALL.has(f.name)) ALL.set(f.name, f);

export const ALL_FIELD_NAMES = [...ALL.keys()];

export function fieldDef(name: string): FieldDef | undefined {
  return ALL.get(name);
}

/** Resolves --include / --fields to an ordered, de-duplicated field list. */
export function selectFields(opts: { include?: readonly string[]; fields?: readonly string[] }): FieldDef[] {
  if (opts.fields && opts.fields.length) return opts.fields.map((n) => ALL.get(n)!);
  const out = new Map<string, FieldDef>();
  for (const f of BASE) out.set(f.name, f);
  for (const g of opts.include ?? []) for (const f of INCLUDE_GROUPS[g] ?? []) if (!out.has(f.name)) out.set(f.name, f);
  return [...out.values()];
}

export type { FieldDef };
