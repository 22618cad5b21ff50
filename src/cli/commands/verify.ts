import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, ExitCode, configError } from '../../errors.js';
import { jobFromRecipe } from '../../run/adhoc.js';
import type { ExportJob } from '../../run/job.js';
import { openLedger, type Ledger, type RunRow } from '../../run/ledger.js';
import { stateDir } from '../../run/state-dir.js';
import { verifyWindows } from '../../run/verify.js';
import { openSource } from '../../source/open.js';
import type { LogSource } from '../../source/types.js';
import { isoMs } from '../../util/time.js';
import { loadJobs } from './run.js';
import type { Ctx } from '../context.js';
import { count } from '../../util/format.js';

export interface VerifyOptions { name?: string; run?: string; json?: boolean }

/** Delivered windows of one export to check, and the log DB they came from. */
interface Target { job: ExportJob; runs: RunRow[]; source: LogSource; label: (r: RunRow) => string; stateDir: string }

const windowOf = (r: RunRow) => `${isoMs(r.window_start)} → ${isoMs(r.window_end)}`;

/** The configured exports' delivered windows. */
async function* configuredTargets(ctx: Ctx, o: VerifyOptions): AsyncGenerator<Target> {
  const { cfg, jobs } = await loadJobs(ctx, o.name ? [o.name] : []);
  const ledger = await openLedger(stateDir(ctx, cfg.logExports.state_dir));
  ctx.onClose(() => ledger.close());
  for (const job of jobs) {
    const { source } = await ctx.openSource(job.table);
    let runs: RunRow[] = ledger.delivered(job.name);
    if (o.run) {
      const r = ledger.get(o.run);
      if (!r) throw new CliError('verify', `no run ${o.run}`, { exitCode: ExitCode.usage });
      if (r.export !== job.name) continue;
      runs = runs.filter((x) => x.window_start === r.window_start && x.window_end === r.window_end);
    }
    yield { job, runs, source, label: (r) => `${job.name} ${windowOf(r)}`, stateDir: ledger.dir };
  }
}

/** Without a config file: the ad-hoc exports the ledger recorded, each rebuilt from how it was asked for. */
async function* adhocTargets(ctx: Ctx, o: VerifyOptions, ledger: Ledger): AsyncGenerator<Target> {
  let runs = ledger.adhoc().filter((r) => !o.name || r.export === o.name);
  if (o.run) {
    runs = runs.filter((r) => r.run_id.startsWith(o.run!));
    if (!runs.length) throw new CliError('verify', `no delivered ad-hoc run ${o.run} in ${ledger.path}`, { exitCode: ExitCode.usage, hint: 'see bifrost-logs jobs list' });
  }
  // --db (or $BIFROST_LOGS_DB) names the log DB; else each run reads the SQLite file it was exported from.
  const given = !!(ctx.global.db || ctx.global.bifrostConfig || ctx.env.BIFROST_LOGS_DB);
  const opened = new Map<string, LogSource>();
  for (const r of runs) {
    const { job, sqlitePath } = jobFromRecipe(r.recipe!, ctx.env);
    let source = given ? (await ctx.openSource(job.table)).source : null;
    if (!source && sqlitePath) {
      const key = `${job.table}\0${sqlitePath}`;
      source = opened.get(key) ?? null;
      if (!source) {
        const s = await openSource({ kind: 'sqlite', path: sqlitePath, from: 'the ledger' }, job.table);
        ctx.onClose(() => s.close());
        opened.set(key, (source = s));
      }
    }
    if (!source) throw configError('verify', `run ${r.run_id.slice(0, 8)} read a log DB server the ledger does not name`, 'pass --db URL');
    yield { job, runs: [r], source, label: (x) => `${job.name} (run ${x.run_id.slice(0, 8)}) ${windowOf(x)}`, stateDir: ledger.dir };
  }
}

/**
 * `verify`: every file of every delivered window exists with its size and
 * sha256, the manifest object matches, and the rows match a fresh COUNT.
 * Without a config file it checks the ad-hoc exports in the ledger.
 */
export async function verifyCommand(ctx: Ctx, o: VerifyOptions): Promise<number> {
  let targets: AsyncGenerator<Target>;
  if (await ctx.config()) targets = configuredTargets(ctx, o);
  else {
    // No config and no ledger: the usual "no config file found".
    if (!existsSync(join(stateDir(ctx), 'ledger.db'))) await loadJobs(ctx);
    const ledger = await openLedger(stateDir(ctx));
    ctx.onClose(() => ledger.close());
    if (!ledger.adhoc().length) await loadJobs(ctx); // nothing ad hoc either: "no config file found"
    targets = adhocTargets(ctx, o, ledger);
  }
  const diffs: string[] = [];
  let windows = 0;
  for await (const { job, runs, source, label, stateDir: dir } of targets) {
    for await (const v of verifyWindows(ctx, job, runs, source, dir)) {
      windows++;
      const { run: r, manifest: m, differences: found } = v;
      diffs.push(...found.map((f) => `${label(r)}: ${f}`));
      if (!m) continue;
      if (o.json) await ctx.out.write(JSON.stringify({ export: job.name, window_start: isoMs(r.window_start), window_end: isoMs(r.window_end), ok: !found.length, revision: m.revision ?? 1, rows: m.rows, files: m.files.length, differences: found }) + '\n');
      else if (!found.length) ctx.log.info(`ok  ${label(r)}: ${count(m.rows, 'row')}, ${count(m.files.length, 'file')}`);
    }
  }
  if (!windows) ctx.log.info('no delivered windows to verify');
  if (diffs.length) {
    const detail = o.json ? undefined : diffs.map((d) => `DIFF ${d}`).join('\n');
    throw new CliError('verify the delivered exports', `${count(diffs.length, 'difference')} found`, { exitCode: ExitCode.dataErr, detail });
  }
  return 0;
}
