import { CliError, ExitCode } from '../../errors.js';
import { openDestination } from '../../run/destinations.js';
import { openLedger } from '../../run/ledger.js';
import { stateDir } from '../../run/state-dir.js';
import { planExport } from '../../run/plan.js';
import { loadJobs, retentionWarnings } from './run.js';
import type { Ctx } from '../context.js';

/** `check`: the config is valid, the DB readable, every destination reachable and writable. */
export async function checkCommand(ctx: Ctx, o: { name?: string; json?: boolean }): Promise<number> {
  const results: Array<{ check: string; ok: boolean; detail: string }> = [];
  const say = async (check: string, ok: boolean, detail: string) => {
    results.push({ check, ok, detail });
    if (o.json) await ctx.out.write(JSON.stringify({ check, ok, detail }) + '\n');
    else await ctx.out.write(`${ok ? 'ok  ' : 'FAIL'} ${check}: ${detail}\n`);
  };
  const { cfg, jobs } = await loadJobs(ctx, o.name ? [o.name] : []);
  await say('config', true, `${cfg.file}: ${jobs.length} export(s)`);
  let firstCode: number | undefined;
  let source;
  try {
    source = (await ctx.openSource()).source;
    const n = await source.count({});
    await say('log DB', true, `${source.description}: ${n} rows, ${source.schema.columns.size} columns (${source.dialect})`);
  } catch (err) {
    const e = err as CliError;
    await say('log DB', false, e.message);
    firstCode ??= e.exitCode ?? ExitCode.noInput;
  }
  for (const job of jobs) {
    try {
      const { dest } = await openDestination(ctx, job, { stateDir: stateDir(ctx, cfg.logExports.state_dir) });
      try { await dest.check(); } finally { await dest.close(); }
      await say(`destination ${job.name}`, true, `${job.destType} reachable and writable`);
    } catch (err) {
      const e = err as CliError;
      await say(`destination ${job.name}`, false, e.message);
      firstCode ??= e instanceof CliError ? e.exitCode : ExitCode.unavailable;
    }
  }
  if (source) {
    const ledger = await openLedger(stateDir(ctx, cfg.logExports.state_dir)).catch(() => null);
    if (ledger) {
      try {
        const now = ctx.now();
        const upTo = await source.position();
        for (const job of jobs) if (job.enabled) retentionWarnings(ctx, cfg, job, await planExport(job, ledger, source, now, upTo), now);
      } finally { ledger.close(); }
    }
  }
  if (firstCode !== undefined) throw new CliError('pass every check', `${results.filter((r) => !r.ok).length} check(s) failed`, { exitCode: firstCode as never });
  return 0;
}
