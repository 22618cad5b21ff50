import { CliError, ExitCode } from '../../errors.js';
import { openLedger } from '../../run/ledger.js';
import { stateDir } from '../../run/state-dir.js';
import { describeRun, executePlan } from '../../run/runner.js';
import { acquireExportLock } from '../../run/lock.js';
import { loadJobs } from './run.js';
import { renderTable } from './query.js';
import type { Ctx } from '../context.js';

async function ledgerFor(ctx: Ctx) {
  const cfg = await ctx.config().catch(() => null);
  const ledger = await openLedger(stateDir(ctx, cfg?.logExports.state_dir));
  ctx.onClose(() => ledger.close());
  return ledger;
}

/** `jobs list`: recent runs, newest first. */
export async function jobsListCommand(ctx: Ctx, o: { export?: string; status?: string; limit?: number; json?: boolean }): Promise<number> {
  const ledger = await ledgerFor(ctx);
  const runs = ledger.list({ export: o.export, status: o.status, limit: o.limit });
  if (o.json || !ctx.out.isTTY) {
    for (const r of runs) await ctx.out.write(JSON.stringify(describeRun(r)) + '\n');
  } else {
    const rows = runs.map((r) => ({ ...describeRun(r), run_id: r.run_id.slice(0, 8) }));
    await ctx.out.write(renderTable(['run_id', 'export', 'kind', 'window_start', 'window_end', 'status', 'attempt', 'revision', 'rows', 'files', 'bytes'], rows, ctx.out.columns, (d) => ctx.log.info(`left out to fit ${ctx.out.columns} columns: ${d.join(', ')} (use --json for every column)`)) + '\n');
  }
  return 0;
}

/** `jobs show RUN_ID`: one run, with its manifest. */
export async function jobsShowCommand(ctx: Ctx, runId: string, o: { json?: boolean }): Promise<number> {
  const ledger = await ledgerFor(ctx);
  const r = ledger.get(runId);
  if (!r) throw new CliError('show the run', `no run ${runId} in ${ledger.path}`, { exitCode: ExitCode.usage, hint: 'see bifrost-logs jobs list' });
  const d = { ...describeRun(r), manifest: r.manifest ? JSON.parse(r.manifest) : null };
  if (o.json || !ctx.out.isTTY) await ctx.out.write(JSON.stringify(d) + '\n');
  else {
    const { manifest, ...rest } = d;
    for (const [k, v] of Object.entries(rest)) await ctx.out.write(`${k.padEnd(14)} ${v === null ? '-' : typeof v === 'object' ? JSON.stringify(v) : v}\n`);
    if (manifest) for (const f of manifest.files) await ctx.out.write(`file           ${f.key}  ${f.rows} rows  ${f.bytes} bytes  sha256 ${f.sha256}\n`);
  }
  return 0;
}

/** `jobs retry RUN_ID`: runs a failed window again (a delivered one is left alone). */
export async function jobsRetryCommand(ctx: Ctx, runId: string, o: { json?: boolean }): Promise<number> {
  const ledger = await ledgerFor(ctx);
  const r = ledger.get(runId);
  if (!r) throw new CliError('retry the run', `no run ${runId} in ${ledger.path}`, { exitCode: ExitCode.usage, hint: 'see bifrost-logs jobs list --status failed' });
  if (r.status !== 'failed') throw new CliError('retry the run', `run ${r.run_id} is ${r.status}, not failed`, { exitCode: ExitCode.usage });
  const latest = ledger.latestForWindow(r.export, r.window_start, r.window_end);
  if (latest && r.kind !== 'late') {
    ctx.log.info(`${r.export} ${new Date(r.window_start).toISOString()} → ${new Date(r.window_end).toISOString()} was delivered since (run ${latest.run_id}); nothing to do`);
    return 0;
  }
  const { cfg, jobs } = await loadJobs(ctx, [r.export]);
  const job = jobs[0]!;
  const lock = await acquireExportLock(stateDir(ctx, cfg.logExports.state_dir), job.name, job.lockTimeoutMs, ctx.log);
  try {
    ledger.reapInterrupted(job.name);
    const { source } = await ctx.openSource();
    const upTo = await source.position();
    const events = o.json ? { emit: async (e: Record<string, unknown>) => { await ctx.out.write(JSON.stringify(e) + '\n'); } } : null;
    let plan;
    if (r.kind === 'late') {
      const { planExport } = await import('../../run/plan.js');
      plan = (await planExport(job, ledger, source, ctx.now(), upTo)).filter((p) => p.kind === 'late' && p.start === r.window_start && p.end === r.window_end);
    } else plan = [{ export: job.name, kind: 'window' as const, start: r.window_start, end: r.window_end }];
    const res = await executePlan({ ...ctx, events }, job, plan, source, ledger, upTo, ctx.now());
    return res.failed ? (res.failureCode ?? ExitCode.software) : 0;
  } finally {
    await lock.release();
  }
}
