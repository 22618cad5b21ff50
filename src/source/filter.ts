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
  businessUnits?: string[];
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
  /** mcp_tool_logs: only these MCP servers (server_label) and tools (tool_name). */
  servers?: string[];
  tools?: string[];
}

/** How one SQL dialect spells the expressions the filters need. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres' | 'clickhouse';
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
  /** `--search` where it is not a substring test (Postgres: Bifrost's full-text match); else `contains`. */
  search?(params: unknown[], column: string, text: string): string;
  /**
   * True when the JSON array text in `column` holds one of `values` as a
   * string element; false for NULL, invalid JSON or a non-array.
   */
  jsonArrayHasAny?(params: unknown[], column: string, values: readonly string[]): string;
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
  /** Bifrost's applyFilters: the scalar column, or the newer columns where this DB has them. */
  const anyOf = (values: readonly string[] | undefined, scalar: string, alternatives: string[], arrays: string[]) => {
    if (!values) return;
    const parts: string[] = [];
    for (const name of [scalar, ...alternatives]) {
      const e = col(name);
      if (e) parts.push(inList(d, params, e, values));
    }
    if (d.jsonArrayHasAny) {
      for (const name of arrays) {
        const e = col(name);
        if (e) parts.push(d.jsonArrayHasAny(params, e, values));
      }
    }
    c.push(parts.length === 0 ? '1 = 0' : parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`);
  };

  listOn('provider', f.providers);
  anyOf(f.models, 'model', ['canonical_model_name'], []);
  anyOf(f.customers, FILTER_COLUMNS.customers, [], ['customer_ids']);
  listOn(FILTER_COLUMNS.virtualKeys, f.virtualKeys);
  anyOf(f.teams, FILTER_COLUMNS.teams, [], ['team_ids']);
  anyOf(f.businessUnits, FILTER_COLUMNS.businessUnits, [], ['business_unit_ids']);
  listOn(FILTER_COLUMNS.users, f.users);
  listOn('status', f.status);
  listOn('id', f.ids);
  listOn('server_label', f.servers);
  listOn('tool_name', f.tools);
  if (f.objects) listOn('object_type', f.objects.flatMap(objectTypeSpellings));
  if (f.statusCodes) c.push(inList(d, params, `(${d.statusCode})`, f.statusCodes));
  if (f.hasErrors !== undefined) c.push(`${d.ident('status')} = ${d.param(params, f.hasErrors ? 'error' : 'success')}`);
  if (f.completedOnly) c.push(`${d.ident('status')} <> ${d.param(params, 'processing')}`);
  if (f.minLatencyMs !== undefined) c.push(`${d.ident('latency')} >= ${d.param(params, f.minLatencyMs)}`);
  if (f.maxLatencyMs !== undefined) c.push(`${d.ident('latency')} <= ${d.param(params, f.maxLatencyMs)}`);
  if (f.minTokens !== undefined) c.push(`${d.ident('total_tokens')} >= ${d.param(params, f.minTokens)}`);
  if (f.maxTokens !== undefined) c.push(`${d.ident('total_tokens')} <= ${d.param(params, f.maxTokens)}`);
  if (f.minCost !== undefined || f.maxCost !== undefined) {
    // Bifrost's `cost >= ?` / `cost <= ?`: a NULL cost never matches.
    const cost = col(FILTER_COLUMNS.cost);
    if (!cost) c.push('1 = 0');
    else {
      if (f.minCost !== undefined) c.push(`${cost} >= ${d.param(params, f.minCost)}`);
      if (f.maxCost !== undefined) c.push(`${cost} <= ${d.param(params, f.maxCost)}`);
    }
  }
  if (f.search !== undefined && f.search !== '') {
    const summary = d.ident('content_summary');
    c.push(d.search ? d.search(params, summary, f.search) : d.contains(params, summary, f.search));
  }
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
