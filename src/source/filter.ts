import { CliError, ExitCode } from '../errors.js';
import { FILTER_COLUMNS, objectTypeSpellings, physicalColumn, type DetectedSchema } from './schema.js';

/** A normalised filter: every field optional, every list non-empty when present. */
export interface Filter {
  /** [start, end) in epoch milliseconds. */
  start?: number;
  end?: number;
  providers?: string[];
  models?: string[];
  customers?: string[];
  statusCodes?: number[];
  minLatencyMs?: number;
  maxLatencyMs?: number;
  hasErrors?: boolean;
  status?: string[];
  objects?: string[];
  virtualKeys?: string[];
  teams?: string[];
  users?: string[];
  minTokens?: number;
  maxTokens?: number;
  minCost?: number;
  maxCost?: number;
  search?: string;
  metadata?: Record<string, string>;
  /** Exports never include rows still `processing`. */
  completedOnly?: boolean;
  /** Only these ids (late re-checks of rows that were still processing). */
  ids?: string[];
}

/** How one SQL dialect spells the expressions the filters need. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  ident(name: string): string;
  /** Adds a bound parameter and returns its placeholder. */
  param(params: unknown[], value: unknown): string;
  /** Epoch milliseconds of `timestamp`, exact for every stored text form. */
  readonly tsMs: string;
  /** The derived HTTP status code (§3): 200, error_details.status_code, or 500 (error) / 499 (cancelled); NULL while processing. */
  readonly statusCode: string;
  /** Conditions selecting `timestamp` in [start, end): exact, and able to use the timestamp index. */
  timeRange(params: unknown[], start?: number, end?: number): string[];
  /** JSON text of `metadata.<key>` (NULL when metadata is not valid JSON). */
  metadataValue(params: unknown[], key: string): string;
  /** Case-insensitive substring test with LIKE escaping. */
  contains(params: unknown[], column: string, needle: string): string;
}

export function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function inList(d: Dialect, params: unknown[], expr: string, values: readonly unknown[]): string {
  return `${expr} IN (${values.map((v) => d.param(params, v)).join(', ')})`;
}

/** JSON spellings a `--metadata key=value` matches: the string, and the bare literal for numbers and booleans. */
function metadataSpellings(value: string): string[] {
  const out = [JSON.stringify(value)];
  if (/^(true|false|null|-?\d+(\.\d+)?)$/.test(value)) out.push(value);
  return out;
}

/**
 * Turns a filter into SQL conditions with bound parameters. Values never enter
 * the SQL text. Filters on columns this DB lacks match no rows.
 */
export function filterConditions(d: Dialect, schema: DetectedSchema, f: Filter, params: unknown[]): string[] {
  const c: string[] = [];
  const col = (name: string) => {
    const p = physicalColumn(schema, name);
    return p ? d.ident(p) : undefined;
  };
  const listOn = (name: string, values?: readonly unknown[]) => {
    if (!values) return;
    const e = col(name);
    c.push(e ? inList(d, params, e, values) : '1 = 0');
  };

  if (f.start !== undefined || f.end !== undefined) {
    c.push(...d.timeRange(params, f.start, f.end));
  }
  listOn('provider', f.providers);
  listOn('model', f.models);
  listOn(FILTER_COLUMNS.customers, f.customers);
  listOn(FILTER_COLUMNS.virtualKeys, f.virtualKeys);
  listOn(FILTER_COLUMNS.teams, f.teams);
  listOn(FILTER_COLUMNS.users, f.users);
  listOn('status', f.status);
  listOn('id', f.ids);
  if (f.objects) listOn('object_type', f.objects.flatMap(objectTypeSpellings));
  if (f.statusCodes) c.push(inList(d, params, `(${d.statusCode})`, f.statusCodes));
  if (f.hasErrors !== undefined) c.push(`${d.ident('status')} = ${d.param(params, f.hasErrors ? 'error' : 'success')}`);
  if (f.completedOnly) c.push(`${d.ident('status')} <> ${d.param(params, 'processing')}`);
  if (f.minLatencyMs !== undefined) c.push(`${d.ident('latency')} >= ${d.param(params, f.minLatencyMs)}`);
  if (f.maxLatencyMs !== undefined) c.push(`${d.ident('latency')} <= ${d.param(params, f.maxLatencyMs)}`);
  if (f.minTokens !== undefined) c.push(`${d.ident('total_tokens')} >= ${d.param(params, f.minTokens)}`);
  if (f.maxTokens !== undefined) c.push(`${d.ident('total_tokens')} <= ${d.param(params, f.maxTokens)}`);
  if (f.minCost !== undefined || f.maxCost !== undefined) {
    const cost = col(FILTER_COLUMNS.cost);
    // A NULL cost is "not above zero" in Bifrost: it counts as 0.
    const e = cost ? `COALESCE(${cost}, 0)` : '0';
    if (f.minCost !== undefined) c.push(`${e} >= ${d.param(params, f.minCost)}`);
    if (f.maxCost !== undefined) c.push(`${e} <= ${d.param(params, f.maxCost)}`);
  }
  if (f.search !== undefined && f.search !== '') c.push(d.contains(params, d.ident('content_summary'), f.search));
  if (f.metadata) {
    if (!col(FILTER_COLUMNS.metadata)) c.push('1 = 0');
    else {
      for (const [key, value] of Object.entries(f.metadata)) {
        if (key.includes('"')) {
          throw new CliError('apply --metadata', `the key ${JSON.stringify(key)} contains a double quote`, { exitCode: ExitCode.usage });
        }
        c.push(inList(d, params, d.metadataValue(params, key), metadataSpellings(value)));
      }
    }
  }
  return c;
}

export function whereClause(conds: string[]): string {
  return conds.length ? `WHERE ${conds.join(' AND ')}` : '';
}

/**
 * The filter for rows still `processing`: only what is known before a request
 * ends (time, who, what). Status code, latency, tokens and cost are final only
 * once the row completes, when the full filter decides.
 */
export function processingFilter(f: Filter): Filter {
  const { statusCodes: _a, hasErrors: _b, status: _c, minLatencyMs: _d, maxLatencyMs: _e, minTokens: _f, maxTokens: _g, minCost: _h, maxCost: _i, completedOnly: _j, ...rest } = f;
  return { ...rest, status: ['processing'] };
}
