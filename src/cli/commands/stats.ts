import { stringify } from 'csv-stringify/sync';
import { usageError } from '../../errors.js';
import { GROUPABLE_FIELDS, TIME_BUCKETS, normaliseMetric } from '../../source/aggregate-sql.js';
import { suggest } from '../../util/suggest.js';
import { mergeFilterSpecs, resolveFilter, type FilterSpec } from '../../source/filter-spec.js';
import type { Ctx } from '../context.js';
import { formatCell } from '../format-cell.js';
import { renderTable } from './query.js';

export interface StatsOptions {
  filters: FilterSpec;
  groupBy?: string[];
  bucket?: string;
  metrics?: string[];
  json?: boolean;
  csv?: boolean;
  /** On a TTY: a terminal chart of the bucketed series after the table. */
  chart?: boolean;
}

/** Bifrost's own stats names, in its order, plus error_rate, cancelled_rate and p95_latency. */
export const DEFAULT_STATS_METRICS = ['total_requests', 'success_rate', 'average_latency', 'total_tokens', 'total_cost', 'error_rate', 'cancelled_rate', 'p95_latency'];
const BUCKET_NAMES: Record<string, string> = { hour: 'hour', day: 'date', date: 'date', week: 'week', month: 'month' };

/** `bifrost-logs stats`: the interactive face of the aggregate transform. */
export async function statsCommand(ctx: Ctx, o: StatsOptions): Promise<number> {
  const groupBy = [...(o.groupBy ?? [])];
  if (o.bucket) {
    const b = BUCKET_NAMES[o.bucket];
    if (!b) throw usageError('parse --bucket', `unknown bucket "${o.bucket}"`, 'use hour, day, week or month');
    if (!groupBy.includes(b)) groupBy.unshift(b);
  }
  if (o.chart && !groupBy.some((g) => (TIME_BUCKETS as readonly string[]).includes(g) || g === 'day')) groupBy.unshift('date');
  for (const g of groupBy) if (g === 'day') groupBy[groupBy.indexOf(g)] = 'date';
  const groupable = [...GROUPABLE_FIELDS, ...TIME_BUCKETS] as string[];
  for (const g of groupBy) {
    if (groupable.includes(g)) continue;
    const s = suggest(g, groupable);
    throw usageError('parse --group-by', `cannot group by "${g}"${s ? ` (did you mean "${s}"?)` : ''}`, `group by one of: ${groupable.join(', ')}`);
  }
  const metrics = o.metrics?.length ? o.metrics : DEFAULT_STATS_METRICS;
  metrics.forEach(normaliseMetric);
  const filter = resolveFilter(mergeFilterSpecs(undefined, o.filters), ctx.now(), ctx.tz);
  const { source } = await ctx.openSource();
  const rows = await source.aggregate(filter, { groupBy, metrics, timezone: ctx.tz });
  const grouped = groupBy.length > 0;
  const mode = o.json ? 'json' : o.csv ? 'csv' : ctx.out.isTTY ? 'table' : 'json';
  const names = [...groupBy, ...metrics];
  if (mode === 'json') {
    if (!grouped) await ctx.out.write(`${JSON.stringify(rows[0] ?? {})}\n`);
    else for (const r of rows) await ctx.out.write(`${JSON.stringify(r)}\n`);
  } else if (mode === 'csv') {
    await ctx.out.write(stringify([names, ...rows.map((r) => names.map((n) => formatCell(r[n], true)))]));
  } else {
    await ctx.out.write(renderTable(names, rows, ctx.out.columns, (d) => ctx.log.info(`left out to fit ${ctx.out.columns} columns: ${d.join(', ')} (use --json for every column)`)) + '\n');
    if (o.chart) {
      const bucket = groupBy.find((g) => (TIME_BUCKETS as readonly string[]).includes(g));
      if (bucket && groupBy.length === 1) {
        const { renderStatsChart } = await import('../stats-chart.js');
        const charted = metrics.filter((m) => ['total_requests', 'total_cost', 'total_tokens', 'p95_latency', 'error_rate'].includes(m));
        await ctx.out.write(`\n${renderStatsChart(rows, bucket, charted.length ? charted : metrics, ctx.out.columns)}`);
      } else ctx.log.info('--chart draws a time bucket alone; drop the other --group-by fields to chart it');
    }
  }
  return 0;
}
