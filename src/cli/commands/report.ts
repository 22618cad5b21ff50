import { writeFileSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { mergeFilterSpecs, resolveFilter, type FilterSpec } from '../../source/filter-spec.js';
import { GROUPABLE_FIELDS, TIME_BUCKETS } from '../../source/aggregate-sql.js';
import { checkFiltersForTable } from '../../source/log-table.js';
import { usageError, CliError, ExitCode } from '../../errors.js';
import { VERSION } from '../../version.js';
import { computeReport, REPORT_GROUP_ALIASES } from '../../report/compute.js';
import { renderReportHtml } from '../../report/html.js';
import type { Ctx } from '../context.js';

export interface ReportOptions { filters: FilterSpec; groupBy?: string; out?: string; json?: boolean }

/** `bifrost-logs report`: one self-contained HTML usage and cost report. */
export async function reportCommand(ctx: Ctx, o: ReportOptions): Promise<number> {
  const raw = o.groupBy ?? 'model';
  const groupBy = REPORT_GROUP_ALIASES[raw] ?? raw;
  if (!(GROUPABLE_FIELDS as readonly string[]).includes(groupBy) || (TIME_BUCKETS as readonly string[]).includes(groupBy)) {
    throw usageError('parse --group-by', `cannot group a report by "${raw}"`, `use one of: ${[...Object.keys(REPORT_GROUP_ALIASES), ...GROUPABLE_FIELDS].join(', ')}`);
  }
  checkFiltersForTable('logs', o.filters);
  const spec = mergeFilterSpecs(undefined, o.filters);
  if (spec.since === undefined && spec.date_range === undefined) spec.since = '30d';
  const filter = resolveFilter(spec, ctx.now(), ctx.tz);
  const { source, spec: src } = await ctx.openSource();
  const data = await computeReport(source, filter, {
    groupBy, timezone: ctx.tz, now: ctx.now(), version: VERSION,
    sourceLabel: src.kind === 'sqlite' ? `sqlite ${shortPath(src.path)}` : 'postgres', filters: spec as Record<string, unknown>,
  });
  if (o.json) {
    await ctx.out.write(`${JSON.stringify(data)}\n`);
    return 0;
  }
  const html = renderReportHtml(data);
  const out = o.out ?? 'report.html';
  if (out === '-') {
    await ctx.out.write(html);
    return 0;
  }
  try {
    writeFileSync(out, html);
  } catch (e) {
    throw new CliError(`write the report to ${out}`, (e as Error).message, { exitCode: ExitCode.unavailable });
  }
  ctx.log.info(`wrote ${out}`);
  return 0;
}

/** A path under the working directory is shown relative to it. */
function shortPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : p;
}
