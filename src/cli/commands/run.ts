import { CliError, ExitCode, configError } from '../../errors.js';
import { buildJob, type ExportJob } from '../../run/job.js';
import { openLedger } from '../../run/ledger.js';
import { acquireExportLock } from '../../run/lock.js';
import { executePlan, recordScan } from '../../run/runner.js';
import { nextDue, planExport, type PlannedRun } from '../../run/plan.js';
import { printError } from '../report-error.js';
import { stateDir } from '../../run/state-dir.js';
import { windowFilter } from '../../run/window-spec.js';
import { suggest } from '../../util/suggest.js';
import { parseTimeArg, isoMs, DAY_MS } from '../../util/time.js';
import type { Ctx } from '../context.js';
import type { LoadedConfig } from '../../config/load.js';

export interface RunOptions {
  names: string[];
  plan?: boolean;
  json?: boolean;
  now?: string;
}

/** Resolves the configured exports to jobs, reporting every problem at once. */
export async function loadJobs(ctx: Ctx, names: string[] = []): Promise<{ cfg: LoadedConfig; jobs: ExportJob[] }> {
  const cfg = await ctx.config();
  if (!cfg) throw configError('find the config', 'no config file found', 'pass --config PATH or --bifrost-config PATH, or run `bifrost-logs init`');
  const all = cfg.logExports.exports;
  for (const n of names) {
    if (!all.some((e) => e.name === n)) {
      const s = suggest(n, all.map((e) => e.name));
      throw configError('find the export', `no export named "${n}" in ${cfg.file}${s ? ` (did you mean "${s}"?)` : ''}`);
    }
  }
  const jobs: ExportJob[] = [];
  all.forEach((e, i) => {
    if (names.length && !names.includes(e.name)) return;
    jobs.push(buildJob(e, cfg.logExports, `log_exports.exports[${i}]`, {}, ctx.env));
  });
  return { cfg, jobs };
}

/** Warns loudly when undelivered windows hold rows Bifrost's retention will delete within 7 days. */
export function retentionWarnings(ctx: Ctx, cfg: LoadedConfig, job: ExportJob, plan: PlannedRun[], now: number): void {
  const days = cfg.retentionDays ?? cfg.logExports.log_retention_days ?? 365;
  const horizon = now - (days - 7) * DAY_MS;
  const atRisk = plan.filter((p) => p.kind === 'window' && p.start < horizon);
  if (atRisk.length) {
    const deleteAt = isoMs(atRisk[0]!.start + days * DAY_MS);
    ctx.log.warn(`${job.name}: ${atRisk.length} undelivered window(s) from ${isoMs(atRisk[0]!.start)} hold rows that Bifrost's retention (${days} days) deletes from ${deleteAt}; deliver them now (bifrost-logs run ${job.name}) or they are lost`);
  }
}

/** `bifrost-logs run`: every due window of every enabled export, oldest first. */
export async function runCommand(ctx: Ctx, o: RunOptions): Promise<number> {
  const now = o.now ? parseTimeArg(o.now, Date.now(), 'UTC', '--now') : ctx.now();
  const { cfg, jobs } = await loadJobs(ctx, o.names);
  if (!cfg.logExports.enabled) { ctx.log.info('log_exports.enabled is false: nothing to run'); return 0; }
  const active = jobs.filter((j) => j.enabled && (j.schedule || j.oneOff));
  for (const j of jobs) if (j.enabled && !j.schedule && !j.oneOff) ctx.log.verbose(`${j.name}: no schedule; run it with \`bifrost-logs export --name ${j.name}\``);
  if (!active.length) { ctx.log.info('no enabled scheduled exports'); return 0; }
  const dir = stateDir(ctx, cfg.logExports.state_dir);
  const ledger = await openLedger(dir);
  ctx.onClose(() => ledger.close());
  const { source } = await ctx.openSource();
  const events = o.json ? { emit: async (e: Record<string, unknown>) => { await ctx.out.write(JSON.stringify({ time: new Date().toISOString(), ...e }) + '\n'); } } : null;
  const engine = { ...ctx, events, now: () => now };

  let ok = 0;
  let failed = 0;
  let firstCode: number | undefined;
  let locked = 0;
  let next: { name: string; at: number } | undefined;
  for (const job of active) {
    ctx.signal.throwIfAborted();
    let lock;
    if (!o.plan) {
      try {
        lock = await acquireExportLock(dir, job.name, job.lockTimeoutMs, ctx.log);
      } catch (err) {
        if (err instanceof CliError && err.exitCode === ExitCode.tempFail) {
          locked++;
          printError(err, { verbose: ctx.log.isVerbose, brief: true });
          await events?.emit({ event: 'locked', export: job.name, error: err.message });
          continue;
        }
        throw err;
      }
      ctx.onClose(() => lock!.release());
      const reaped = ledger.reapInterrupted(job.name);
      if (reaped) ctx.log.warn(`${job.name}: ${reaped} interrupted run(s) marked failed; their windows run again now`);
    }
    try {
      const upTo = await source.position();
      const plan = await planExport(job, ledger, source, now, upTo);
      retentionWarnings(ctx, cfg, job, plan, now);
      if (o.plan) {
        for (const p of plan) {
          const est = p.late ? p.late.rows : await source.count(windowFilter(job, p, now), { upTo });
          const line = { export: job.name, kind: p.kind, window_start: isoMs(p.start), window_end: isoMs(p.end), estimated_rows: est, destination: job.destType };
          await ctx.out.write(o.json ? JSON.stringify(line) + '\n' : `${job.name}\t${p.kind}\t${line.window_start} → ${line.window_end}\t~${est} rows\t→ ${job.destType}\n`);
        }
        if (plan.unplaced && !o.json) await ctx.out.write(`${job.name}\tunplaced\t${isoMs(plan.unplaced.start)} → ${isoMs(plan.unplaced.end)}\t${plan.unplaced.rows} rows before the first delivered window\n`);
        if (!plan.length && !o.json) await ctx.out.write(`${job.name}\tnothing due\n`);
        continue;
      }
      if (!plan.length) {
        ctx.log.verbose(`${job.name}: nothing due`);
        const at = nextDue(job, ledger, now);
        if (at !== null && (!next || at < next.at)) next = { name: job.name, at };
        await recordScan(engine, job, plan, ledger);
        continue;
      }
      const r = await executePlan(engine, job, plan, source, ledger, upTo, now);
      ok += r.ok;
      failed += r.failed;
      if (r.failed) firstCode ??= r.failureCode;
      else await recordScan(engine, job, plan, ledger);
    } finally {
      await lock?.release();
    }
  }
  if (!o.plan && !ok && !failed && !locked) ctx.log.info(next ? `nothing due; next: ${next.name} at ${isoMs(next.at)}` : 'nothing due');
  if (failed && ok) return ExitCode.partial;
  if (failed) return firstCode ?? ExitCode.software;
  if (locked && !ok) return ExitCode.tempFail;
  return ExitCode.ok;
}
