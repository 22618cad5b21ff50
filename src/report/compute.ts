import { METRICS } from '../source/aggregate-sql.js';
import type { Filter } from '../source/filter.js';
import type { LogSource } from '../source/types.js';

/** Group-by shorthands of `report --group-by`: the readable name of each entity. */
export const REPORT_GROUP_ALIASES: Record<string, string> = {
  team: 'team_name', customer: 'customer_name', virtual_key: 'virtual_key_name', user: 'user_name', key: 'selected_key_name',
};

const WANTED = [
  'total_requests', 'success_rate', 'average_latency', 'total_tokens', 'total_cost', 'error_rate', 'p50_latency', 'p95_latency',
  'cancelled_count', 'cancelled_rate',
];

/** The metrics a report shows: the stats metrics the aggregation knows (cancelled ones only once it has them). */
export function reportMetrics(): string[] {
  const known = new Set<string>([...METRICS, 'average_latency']);
  return WANTED.filter((m) => known.has(m));
}

export interface ReportData {
  version: string;
  generated_at: string;
  timezone: string;
  source: string;
  filters: Record<string, unknown>;
  period: { start: string | null; end: string | null };
  previous_period: { start: string; end: string } | null;
  bucket: 'hour' | 'date';
  group_by: string;
  metrics: string[];
  totals: Record<string, unknown>;
  previous_totals: Record<string, unknown> | null;
  series: Record<string, unknown>[];
  groups: Record<string, unknown>[];
}

/** Every number of a report comes from the source's aggregate, exactly as `stats` asks for it. */
export async function computeReport(source: LogSource, filter: Filter, o: {
  groupBy: string; timezone: string; now: number; version: string; sourceLabel: string; filters: Record<string, unknown>;
}): Promise<ReportData> {
  const metrics = reportMetrics();
  const spec = (groupBy: string[]) => ({ groupBy, metrics, timezone: o.timezone });
  const totals = (await source.aggregate(filter, spec([])))[0] ?? {};
  const start = filter.start;
  const end = filter.end ?? o.now;
  let previous: Filter | null = null;
  if (start !== undefined && end > start) previous = { ...filter, start: start - (end - start), end: start };
  const previousTotals = previous ? ((await source.aggregate(previous, spec([])))[0] ?? {}) : null;
  const bucket = start !== undefined && end - start < 3 * 86_400_000 ? 'hour' : 'date';
  const series = await source.aggregate(filter, spec([bucket]));
  series.sort((a, b) => String(a[bucket]).localeCompare(String(b[bucket])));
  const groups = await source.aggregate(filter, spec([o.groupBy]));
  groups.sort((a, b) => Number(b.total_cost ?? 0) - Number(a.total_cost ?? 0) || Number(b.total_requests ?? 0) - Number(a.total_requests ?? 0));
  const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
  return {
    version: o.version, generated_at: new Date(o.now).toISOString(), timezone: o.timezone, source: o.sourceLabel,
    filters: o.filters, period: { start: iso(start), end: iso(filter.end) },
    previous_period: previous ? { start: iso(previous.start)!, end: iso(previous.end)! } : null,
    bucket, group_by: o.groupBy, metrics, totals, previous_totals: previousTotals, series, groups,
  };
}
