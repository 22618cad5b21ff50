import { usageError } from '../errors.js';
import { NAMED_RANGES, parseTimeArg, resolveNamedRange, type NamedRange } from '../util/time.js';
import type { Filter } from './filter.js';

/** The `filters` object as Bifrost's docs write it (snake_case); flags fill the same shape. */
export interface FilterSpec {
  date_range?: NamedRange | { start: string; end?: string };
  since?: string;
  until?: string;
  providers?: string[];
  models?: string[];
  customers?: string[];
  status_codes?: number[];
  min_latency_ms?: number;
  max_latency_ms?: number;
  has_errors?: boolean;
  status?: string[];
  objects?: string[];
  virtual_keys?: string[];
  teams?: string[];
  business_units?: string[];
  users?: string[];
  min_tokens?: number;
  max_tokens?: number;
  min_cost?: number;
  max_cost?: number;
  search?: string;
  metadata?: Record<string, string>;
  /** mcp_tool_logs only. */
  servers?: string[];
  tools?: string[];
}

export const FILTER_KEYS = [
  'date_range', 'providers', 'models', 'customers', 'status_codes', 'min_latency_ms', 'max_latency_ms', 'has_errors',
  'status', 'objects', 'virtual_keys', 'teams', 'business_units', 'users', 'min_tokens', 'max_tokens', 'min_cost', 'max_cost', 'search',
  'metadata', 'servers', 'tools',
] as const;

const nonEmpty = <T>(v: T[] | undefined) => (v && v.length ? v : undefined);

/** Merges flags over config filters: a flag replaces the config's value for its key. */
export function mergeFilterSpecs(base: FilterSpec | undefined, over: FilterSpec): FilterSpec {
  const out: FilterSpec = { ...(base ?? {}) };
  for (const [k, v] of Object.entries(over)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  if (over.since !== undefined || over.until !== undefined) delete out.date_range;
  return out;
}

/**
 * Resolves a filter spec at `now` into a Filter. Named ranges use `zone`
 * for today/yesterday. Times that do not parse are usage errors.
 */
export function resolveFilter(spec: FilterSpec, now: number, zone = 'UTC'): Filter {
  const f: Filter = {};
  if (spec.since !== undefined) f.start = parseTimeArg(spec.since, now, zone, '--since');
  if (spec.until !== undefined) f.end = parseTimeArg(spec.until, now, zone, '--until');
  if (spec.date_range !== undefined && f.start === undefined && f.end === undefined) {
    const dr = spec.date_range;
    if (typeof dr === 'string') {
      if (!NAMED_RANGES.includes(dr)) throw usageError('parse date_range', `unknown range "${dr}"`, `use one of ${NAMED_RANGES.join(', ')}, or {start, end}`);
      Object.assign(f, resolveNamedRange(dr, now, zone));
    } else {
      f.start = parseTimeArg(dr.start, now, zone, 'date_range.start');
      if (dr.end !== undefined) f.end = parseTimeArg(dr.end, now, zone, 'date_range.end');
    }
  }
  if (f.start !== undefined && f.end !== undefined && f.start >= f.end) {
    throw usageError('apply the time range', `the start (${new Date(f.start).toISOString()}) is not before the end (${new Date(f.end).toISOString()})`);
  }
  f.providers = nonEmpty(spec.providers);
  f.models = nonEmpty(spec.models);
  f.customers = nonEmpty(spec.customers);
  f.statusCodes = nonEmpty(spec.status_codes);
  f.minLatencyMs = spec.min_latency_ms;
  f.maxLatencyMs = spec.max_latency_ms;
  f.hasErrors = spec.has_errors;
  f.status = nonEmpty(spec.status);
  f.objects = nonEmpty(spec.objects);
  f.virtualKeys = nonEmpty(spec.virtual_keys);
  f.teams = nonEmpty(spec.teams);
  f.businessUnits = nonEmpty(spec.business_units);
  f.users = nonEmpty(spec.users);
  f.minTokens = spec.min_tokens;
  f.maxTokens = spec.max_tokens;
  f.minCost = spec.min_cost;
  f.maxCost = spec.max_cost;
  f.search = spec.search;
  f.servers = nonEmpty(spec.servers);
  f.tools = nonEmpty(spec.tools);
  f.metadata = spec.metadata && Object.keys(spec.metadata).length ? spec.metadata : undefined;
  for (const k of Object.keys(f) as (keyof Filter)[]) if (f[k] === undefined) delete f[k];
  return f;
}

/** A JSON-safe description of a filter for manifests and plans. */
export function describeFilter(f: Filter): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined) continue;
    if (k === 'start' || k === 'end') out[k] = new Date(v as number).toISOString();
    else if (k !== 'ids' && k !== 'completedOnly') out[k] = v; // internal: every export reads completed rows only
  }
  return out;
}
