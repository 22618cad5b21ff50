/**
 * Bifrost's definitions, written out in plain JS over the generated rows: its
 * filters (applyFilters, with the deviations the README lists), its stats
 * (GetStats, and the extra metrics the README defines) and the export record
 * of a row, field by field from the columns the README's tables name. Nothing
 * here calls the CLI's code.
 */
import { derivedStatusCode, percentileCont, type TruthRow } from './truth.js';

/** A filter case: the CLI flags and the rows Bifrost's definition keeps. */
export interface FilterCase { name: string; args: string[]; keep: (r: TruthRow) => boolean; sqliteOnly?: boolean }

const jsonOr = (text: unknown): unknown => {
  if (typeof text !== 'string' || text === '') return undefined;
  try { return JSON.parse(text); } catch { return undefined; }
};
/** Elements of a JSON array cell; nothing for NULL, invalid JSON or a non-array. */
export const arrayCell = (text: unknown): unknown[] => { const v = jsonOr(text); return Array.isArray(v) ? v : []; };

const LEGACY: Record<string, string> = {
  'chat.completion': 'chat_completion', 'chat.completion.chunk': 'chat_completion_stream', 'text.completion': 'text_completion',
  'text.completion.chunk': 'text_completion_stream', list: 'embedding', 'audio.speech': 'speech', 'audio.transcription': 'transcription',
  response: 'responses', 'response.stream': 'responses_stream', 'response.chunk': 'responses_stream', 'image.generation': 'image_generation',
  'audio.speech.chunk': 'speech_stream', 'audio.transcription.chunk': 'transcription_stream',
};
export const requestType = (t: string) => LEGACY[t] ?? t;

/** SQLite's LIKE: case-insensitive for ASCII letters only. */
const asciiLower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** Metadata equality on one key: the string, or the JSON literal for true/false/null/numbers. */
function metadataHas(r: TruthRow, key: string, value: string): boolean {
  const m = jsonOr(r.metadata);
  if (!m || typeof m !== 'object' || Array.isArray(m) || !(key in (m as object))) return false;
  const v = (m as Record<string, unknown>)[key];
  if (v === value) return true;
  return /^(true|false|null|-?\d+(\.\d+)?)$/.test(value) && JSON.stringify(v) === value;
}

const most = (rows: TruthRow[], key: string): string => {
  const c = new Map<string, number>();
  for (const r of rows) if (typeof r[key] === 'string' && r[key] !== '') c.set(r[key], (c.get(r[key]) ?? 0) + 1);
  return [...c.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
};

/** One case per row of the README's filter table (and per Bifrost nuance worth its own case). */
export function filterCases(rows: TruthRow[], start: number, days: number): FilterCase[] {
  const since = start + 6 * 3600_000;
  const until = start + days * 86_400_000 - 5 * 3600_000;
  const canonicalOnly = rows.find((r) => r.canonical_model_name && !rows.some((x) => x.model === r.canonical_model_name))!.canonical_model_name as string;
  const arrayCustomer = (() => {
    for (const r of rows) for (const c of arrayCell(r.customer_ids)) if (typeof c === 'string' && !rows.some((x) => x.customer_id === c && arrayCell(x.customer_ids).length <= 1)) return c;
    return arrayCell(rows.find((r) => arrayCell(r.customer_ids).length > 1)!.customer_ids)[1] as string;
  })();
  const model = most(rows, 'model');
  const inList = (key: string, values: string[]) => (r: TruthRow) => values.includes(r[key]);
  const anyIn = (scalar: string, array: string, values: string[]) => (r: TruthRow) => values.includes(r[scalar]) || arrayCell(r[array]).some((v) => values.includes(v as string));
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return [
    { name: 'date_range [since, until)', args: ['--since', new Date(since).toISOString(), '--until', new Date(until).toISOString()], keep: (r) => r.__ts_ms >= since && r.__ts_ms < until },
    { name: 'providers', args: ['--providers', 'anthropic,groq'], keep: inList('provider', ['anthropic', 'groq']) },
    { name: 'models: model', args: ['--models', model], keep: (r) => r.model === model || r.canonical_model_name === model },
    { name: 'models: canonical_model_name', args: ['--models', canonicalOnly], keep: (r) => r.model === canonicalOnly || r.canonical_model_name === canonicalOnly },
    { name: 'customers: customer_id or customer_ids', args: ['--customers', arrayCustomer], keep: anyIn('customer_id', 'customer_ids', [arrayCustomer]) },
    { name: 'status_codes (499 of cancelled rows)', args: ['--status-codes', '499,429'], keep: (r) => [499, 429].includes(derivedStatusCode(r) as number) },
    { name: 'min/max latency', args: ['--min-latency-ms', '150', '--max-latency-ms', '1200'], keep: (r) => num(r.latency) !== null && num(r.latency)! >= 150 && num(r.latency)! <= 1200 },
    { name: 'has_errors true', args: ['--has-errors'], keep: (r) => r.status === 'error' },
    { name: 'has_errors false', args: ['--has-errors', 'false'], keep: (r) => r.status === 'success' },
    { name: 'status cancelled', args: ['--status', 'cancelled'], keep: (r) => r.status === 'cancelled' },
    { name: 'status processing,error', args: ['--status', 'processing,error'], keep: (r) => r.status === 'processing' || r.status === 'error' },
    { name: 'objects (both spellings)', args: ['--objects', 'chat_completion_stream,embedding'], keep: (r) => ['chat_completion_stream', 'embedding'].includes(requestType(r.object_type)) },
    { name: 'virtual_keys', args: ['--virtual-keys', most(rows, 'virtual_key_id')], keep: inList('virtual_key_id', [most(rows, 'virtual_key_id')]) },
    { name: 'teams: team_id or team_ids', args: ['--teams', 'team-data'], keep: anyIn('team_id', 'team_ids', ['team-data']) },
    { name: 'business_units: business_unit_id or business_unit_ids', args: ['--business-units', most(rows, 'business_unit_id')], keep: anyIn('business_unit_id', 'business_unit_ids', [most(rows, 'business_unit_id')]) },
    { name: 'users', args: ['--users', 'user-alice,user-hugo'], keep: inList('user_id', ['user-alice', 'user-hugo']) },
    { name: 'min/max tokens', args: ['--min-tokens', '200', '--max-tokens', '900'], keep: (r) => Number(r.total_tokens) >= 200 && Number(r.total_tokens) <= 900 },
    { name: 'min_cost (NULL never matches)', args: ['--min-cost', '0'], keep: (r) => num(r.cost) !== null && num(r.cost)! >= 0 },
    { name: 'max_cost (NULL never matches)', args: ['--max-cost', '0.0005'], keep: (r) => num(r.cost) !== null && num(r.cost)! <= 0.0005 },
    { name: 'search: substring, LIKE wildcards literal', args: ['--search', 'ticket'], keep: (r) => asciiLower(String(r.content_summary ?? '')).includes('ticket'), sqliteOnly: true },
    { name: 'search: underscore literal', args: ['--search', '_'], keep: (r) => String(r.content_summary ?? '').includes('_'), sqliteOnly: true },
    { name: 'metadata string', args: ['--metadata', 'env=prod'], keep: (r) => metadataHas(r, 'env', 'prod') },
    { name: 'metadata boolean', args: ['--metadata', 'isAsyncRequest=true'], keep: (r) => metadataHas(r, 'isAsyncRequest', 'true') },
    { name: 'several filters at once', args: ['--providers', 'openai', '--status', 'success,cancelled', '--min-tokens', '100'], keep: (r) => r.provider === 'openai' && ['success', 'cancelled'].includes(r.status) && Number(r.total_tokens) >= 100 },
  ];
}

const isDone = (r: TruthRow) => r.status === 'success' || r.status === 'error' || r.status === 'cancelled';

/** Every `stats` metric: Bifrost's GetStats over completed rows, the counts and the README's extra metrics. */
export function allMetrics(rows: TruthRow[]): Record<string, number | null> {
  const done = rows.filter(isDone);
  const n = done.length;
  const count = (s: string) => done.filter((r) => r.status === s).length;
  const lat = done.map((r) => r.latency).filter((v) => v !== null && v !== undefined).map(Number);
  const sum = (k: string) => done.reduce((a, r) => a + Number(r[k] ?? 0), 0);
  const cost = sum('cost');
  return {
    count: rows.length,
    total_requests: rows.length,
    success_count: count('success'),
    error_count: count('error'),
    cancelled_count: count('cancelled'),
    success_rate: n ? (100 * count('success')) / n : 0,
    error_rate: n ? (100 * count('error')) / n : 0,
    cancelled_rate: n ? (100 * count('cancelled')) / n : 0,
    average_latency: lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : 0,
    avg_latency: lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : 0,
    p50_latency: percentileCont(lat, 0.5),
    p95_latency: percentileCont(lat, 0.95),
    p99_latency: percentileCont(lat, 0.99),
    max_latency: lat.length ? Math.max(...lat) : null,
    total_tokens: sum('total_tokens'),
    input_tokens: sum('prompt_tokens'),
    output_tokens: sum('completion_tokens'),
    total_cost: cost,
    avg_cost: n ? cost / n : null,
  };
}
export const METRIC_NAMES = Object.keys(allMetrics([]));

// ----------------------------------------------------------------------------------------------
// The export record, from the README's field tables
// ----------------------------------------------------------------------------------------------

const ROUTE: Record<string, [string, string]> = {
  chat_completion: ['/v1/chat/completions', 'POST'], chat_completion_stream: ['/v1/chat/completions', 'POST'],
  text_completion: ['/v1/completions', 'POST'], embedding: ['/v1/embeddings', 'POST'], responses: ['/v1/responses', 'POST'],
  responses_stream: ['/v1/responses', 'POST'], speech: ['/v1/audio/speech', 'POST'], transcription: ['/v1/audio/transcriptions', 'POST'],
  image_generation: ['/v1/images/generations', 'POST'], rerank: ['/v1/rerank', 'POST'], list_models: ['/v1/models', 'GET'],
};

const s = (v: unknown) => (v === null || v === undefined || v === '' ? null : String(v));
const n = (v: unknown) => (v === null || v === undefined || v === '' ? null : Number(v));
const i = (v: unknown) => (v === null || v === undefined || v === '' ? null : Math.round(Number(v)));
/** A JSON cell: '' and NULL are null, malformed text stays text. */
const j = (v: unknown) => {
  if (v === null || v === undefined || v === '') return null;
  try { return JSON.parse(String(v)); } catch { return String(v); }
};
const on = (v: unknown) => v === 1 || v === true;

/** The record of one row with every group, as the README defines each field. `has` = the DB's columns. */
export function expectedRecord(t: TruthRow, has: ReadonlySet<string>): Record<string, unknown> {
  const c = (name: string) => (has.has(name) ? t[name] : null);
  const type = requestType(t.object_type);
  const params = j(t.params) as any;
  const pt = type === 'passthrough';
  const hidden = on(c('content_hidden'));
  const offloaded = on(c('has_object'));
  const content = (v: unknown) => (hidden ? null : v);
  const failed = t.status === 'error' || t.status === 'cancelled';
  const err = failed ? (jsonOr(t.error_details) as any) : undefined;
  const errPart = (v: unknown) => (v === undefined || v === null || v === '' ? null : typeof v === 'string' ? v : JSON.stringify(v));
  const usage = jsonOr(t.token_usage) as any;
  const firstOf = (...cols: string[]) => { for (const k of cols) { const v = c(k); if (v !== null && v !== undefined && v !== '') return j(v); } return null; };
  const iso = new Date(t.__ts_ms).toISOString();
  // cost_breakdown: the cost columns where the row has them, else token_usage.cost
  let breakdown: unknown = usage && typeof usage === 'object' ? usage.cost ?? null : null;
  if (has.has('input_cost')) {
    const [ic, oc, ac] = [n(t.input_cost), n(t.output_cost), n(t.additional_cost)];
    breakdown = n(t.cost) === null && !ic && !oc && !ac ? null : { input_tokens_cost: ic ?? 0, output_tokens_cost: oc ?? 0, additional_cost: ac ?? 0, total_cost: n(t.cost) };
  }
  const cache = jsonOr(c('cache_debug')) as any;
  const toolNames = c('tool_call_names');
  return {
    timestamp: iso,
    request_id: t.id,
    customer_id: s(c('customer_id')),
    provider: t.provider,
    model: t.model,
    endpoint: pt ? (params?.path ?? null) : ROUTE[type]?.[0] ?? null,
    method: pt ? String(params?.method ?? 'POST').toUpperCase() : ROUTE[type]?.[1] ?? 'POST',
    status_code: derivedStatusCode(t),
    latency_ms: i(t.latency),
    input_tokens: i(t.prompt_tokens),
    output_tokens: i(t.completion_tokens),
    cost_usd: n(c('cost')),
    // metrics
    total_tokens: i(t.total_tokens),
    cached_tokens: i(c('cached_read_tokens') ?? usage?.prompt_tokens_details?.cached_read_tokens),
    reasoning_tokens: i(usage?.completion_tokens_details?.reasoning_tokens),
    retries: i(c('number_of_retries')),
    cached_read_tokens: i(c('cached_read_tokens')),
    cost_breakdown: breakdown,
    input_cost_usd: n(c('input_cost')),
    output_cost_usd: n(c('output_cost')),
    additional_cost_usd: n(c('additional_cost')),
    upstream_latency_ms: n(c('upstream_latency')),
    overhead_latency_ms: n(c('overhead_latency')),
    cache_hit: cache && typeof cache === 'object' && cache.cache_hit !== undefined ? on(cache.cache_hit) : null,
    cache_hit_type: cache && typeof cache === 'object' ? s(cache.hit_type) : null,
    // traces
    parent_request_id: s(c('parent_request_id')),
    fallback_index: i(c('fallback_index')),
    attempt_trail: j(c('attempt_trail')),
    routing_engines: c('routing_engines_used') ? String(c('routing_engines_used')).split(',') : null,
    selected_key_id: s(c('selected_key_id')),
    selected_key_name: s(c('selected_key_name')),
    routing_rule_id: s(c('routing_rule_id')),
    routing_rule_name: s(c('routing_rule_name')),
    alias: s(c('alias')),
    canonical_model_name: s(c('canonical_model_name')),
    served_model: s(c('served_model')),
    // request_logs
    request_type: type,
    messages: content(firstOf('input_history', 'responses_input_history')),
    params,
    tools: content(j(t.tools)),
    stream: on(t.stream),
    content_summary: s(t.content_summary),
    virtual_key_id: s(c('virtual_key_id')), virtual_key_name: s(c('virtual_key_name')),
    user_id: s(c('user_id')), user_name: s(c('user_name')),
    team_id: s(c('team_id')), team_name: s(c('team_name')),
    team_ids: j(c('team_ids')), customer_ids: j(c('customer_ids')),
    business_unit_id: s(c('business_unit_id')), business_unit_name: s(c('business_unit_name')),
    project_id: s(c('project_id')), project_name: s(c('project_name')),
    session_id: s(c('session_id')),
    user_agent: s(c('user_agent')), app: s(c('app')),
    service_tier: s(c('service_tier')),
    tool_call_names: toolNames ? JSON.parse(String(toolNames)) : null,
    metadata: j(c('metadata')),
    content_state: hidden ? 'hidden' : offloaded ? 'offloaded' : 'inline',
    content_object_key: offloaded ? `logs/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}/${t.id}.json.gz` : null,
    // response_logs
    output: content(firstOf('output_message', 'responses_output', 'transcription_output')),
    tool_calls: content(j(t.tool_calls)),
    stop_reason: s(c('stop_reason')),
    // error_logs
    error_type: err && typeof err === 'object' ? errPart(err.error?.type ?? err.type) : null,
    error_code: err && typeof err === 'object' ? errPart(err.error?.code) : null,
    error_message: err && typeof err === 'object' ? errPart(err.error?.message ?? err.message) : null,
  };
}

/** The CSV text of a record value (JSON as compact text, null as an empty cell). */
export const csvText = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
