import { Command, InvalidArgumentError, Option } from 'commander';
import type { FilterSpec } from '../source/filter-spec.js';

export const parseList = (v: string, prev?: string[]) => [...(prev ?? []), ...v.split(',').map((s) => s.trim()).filter(Boolean)];

export function parseNonNegInt(v: string): number {
  if (!/^\d+$/.test(v.trim())) throw new InvalidArgumentError(`expected a whole number ≥ 0, got "${v}"`);
  return Number(v);
}
export function parsePositiveInt(v: string): number {
  const n = /^\d+$/.test(v.trim()) ? Number(v) : -1;
  if (n < 1) throw new InvalidArgumentError(`expected a whole number ≥ 1, got "${v}"`);
  return n;
}
export function parseNumber(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${v}"`);
  return n;
}
export function parseIntList(v: string, prev?: number[]): number[] {
  return [...(prev ?? []), ...v.split(',').map((s) => {
    const t = s.trim();
    if (!/^\d{3}$/.test(t)) throw new InvalidArgumentError(`expected HTTP status codes like 200,500, got "${s}"`);
    return Number(t);
  })];
}
export function parseBool(v: string | undefined): boolean {
  if (v === undefined) return true;
  const t = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  throw new InvalidArgumentError(`expected true or false, got "${v}"`);
}
export function parseKeyValue(v: string, prev?: Record<string, string>): Record<string, string> {
  const i = v.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`expected key=value, got "${v}"`);
  return { ...(prev ?? {}), [v.slice(0, i).trim()]: v.slice(i + 1) };
}

/** --db, --bifrost-config, --config: how every command finds its data. */
export function addSourceOptions(cmd: Command): Command {
  return cmd
    .option('--db <path-or-url>', 'the log DB: a SQLite path or a postgres:// URL')
    .option('--bifrost-config <path>', "read logs_store (and log_exports) from Bifrost's config.json")
    .option('--config <path>', 'our config file (default: found by cosmiconfig)');
}

/** Every filter of the config's `filters` block, as kebab-case flags. */
export function addFilterOptions(cmd: Command): Command {
  return cmd
    .option('--since <time>', 'start of the window, included (RFC 3339, or relative: 24h, 7d)')
    .option('--until <time>', 'end of the window, excluded (RFC 3339, or relative)')
    .option('--date-range <name>', 'last_24_hours, last_7_days, last_30_days, today, yesterday')
    .option('--providers <list>', 'only these providers (comma-separated)', parseList)
    .option('--models <list>', 'only these models', parseList)
    .option('--customers <list>', 'only these customer ids', parseList)
    .option('--status-codes <list>', 'only these derived HTTP status codes', parseIntList)
    .option('--min-latency-ms <ms>', 'latency at least (inclusive)', parseNumber)
    .option('--max-latency-ms <ms>', 'latency at most (inclusive)', parseNumber)
    .addOption(new Option('--has-errors [bool]', 'true: only errors; false: only successes').argParser(parseBool))
    .option('--status <list>', 'Bifrost status: success, error, cancelled, processing', parseList)
    .option('--objects <list>', 'object types (chat_completion, embedding, …)', parseList)
    .option('--virtual-keys <list>', 'virtual key ids', parseList)
    .option('--teams <list>', 'team ids', parseList)
    .option('--business-units <list>', 'business unit ids', parseList)
    .option('--users <list>', 'user ids', parseList)
    .option('--min-tokens <n>', 'total tokens at least', parseNumber)
    .option('--max-tokens <n>', 'total tokens at most', parseNumber)
    .option('--min-cost <usd>', 'cost at least (NULL counts as 0)', parseNumber)
    .option('--max-cost <usd>', 'cost at most', parseNumber)
    .option('--search <text>', 'text in content_summary (a substring; on Postgres, Bifrost\'s full-text match of its words)')
    .option('--metadata <key=value>', 'metadata key equals value (repeatable)', parseKeyValue)
    .option('--servers <list>', 'mcp_tool_logs: MCP servers (server_label)', parseList)
    .option('--tools <list>', 'mcp_tool_logs: tool names', parseList);
}

/** --log-table: which of Bifrost's log tables a command reads. */
export function addLogTableOption(cmd: Command): Command {
  return cmd.option('--log-table <name>', 'the log table: logs (LLM requests, default) or mcp_tool_logs (MCP tool calls)');
}

/** Collects the filter flags into the config's snake_case shape. */
export function filterSpecFromFlags(o: Record<string, any>): FilterSpec {
  const spec: FilterSpec = {
    since: o.since, until: o.until, date_range: o.dateRange,
    providers: o.providers, models: o.models, customers: o.customers, status_codes: o.statusCodes,
    min_latency_ms: o.minLatencyMs, max_latency_ms: o.maxLatencyMs, has_errors: o.hasErrors,
    status: o.status, objects: o.objects, virtual_keys: o.virtualKeys, teams: o.teams, business_units: o.businessUnits, users: o.users,
    min_tokens: o.minTokens, max_tokens: o.maxTokens, min_cost: o.minCost, max_cost: o.maxCost,
    search: o.search, metadata: o.metadata, servers: o.servers, tools: o.tools,
  };
  for (const k of Object.keys(spec) as (keyof FilterSpec)[]) if (spec[k] === undefined) delete spec[k];
  return spec;
}
