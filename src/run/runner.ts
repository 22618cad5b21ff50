import { randomUUID } from 'node:crypto';
import { CliError, exitCodeOf, systemFailure } from '../errors.js';
import type { LogSource, SourcePosition, WindowFingerprint } from '../source/types.js';
import type { Destination } from '../destination/types.js';
import { scrubKnownSecrets } from '../util/env-ref.js';
import { isoMs } from '../util/time.js';
import type { EngineContext } from './context.js';
import { windowFilter, type LateSpec, type RestateSpec } from './window-spec.js';
import type { ExportJob } from './job.js';
import type { Ledger, RunRow } from './ledger.js';
import { fingerprintColumns, type ExportPlan, type PlannedRun } from './plan.js';
import { sameCost } from '../source/fingerprint.js';
import { openDestination } from './destinations.js';
import { count, humanBytes } from '../util/format.js';
import { destLocation } from './dest-location.js';

/**
 * After a plan succeeded: saves where its late-row scan stopped, and reports
 * (summary line, NDJSON event, a ledger entry for `jobs show`) rows it found
 * that no window can take.
 */
export async function recordScan(ctx: EngineContext, job: ExportJob, plan: ExportPlan, ledger: Ledger): Promise<void> {
  const events = ctx.events;
  if (!plan.scan) return;
  const u = plan.unplaced;
  if (u) {
    const runId = randomUUID();
    const message = `${u.rows} row(s) inserted since the last run are stamped ${isoMs(u.start)} → ${isoMs(u.end)}, before the export's first delivered window: not delivered`;
    ledger.noteUnplaced({ runId, export: job.name, window: { start: u.start, end: u.end }, rows: u.rows, destination: job.destType, position: plan.scan.to, message });
    if (events) await events.emit({ event: 'unplaced_rows', export: job.name, run_id: runId, kind: 'unplaced', rows: u.rows, window_start: isoMs(u.start), window_end: isoMs(u.end), error: message });
    ctx.log.warn(`${job.name}: ${message} (bifrost-logs jobs show ${runId.slice(0, 8)}; deliver them with bifrost-logs export --since ${isoMs(u.start)} --until ${isoMs(u.end + 1)})`);
  }
  ledger.setScanMark(job.name, { position: plan.scan.to, processing: plan.scan.processing });
}

export interface ExecuteResult {
  ok: number;
  failed: number;
  /** The exit code of the first failure. */
  failureCode?: number;
}

/** Runs planned windows of one export in order; stops at its first failure so windows stay in order. */
export async function executePlan(ctx: EngineContext, job: ExportJob, plan: PlannedRun[], source: LogSource, ledger: Ledger, upTo: SourcePosition, now: number): Promise<ExecuteResult> {
  const events = ctx.events;
  const res: ExecuteResult = { ok: 0, failed: 0 };
  if (!plan.length) return res;
  // Loaded when there is something to write: a run with nothing due (most cron runs) never loads the encoders.
  const { exportWindow } = await import('./export-window.js');
  let dest: Destination;
  try {
    dest = (await openDestination(ctx, job, { signal: ctx.signal, stateDir: ledger.dir })).dest;
  } catch (err) {
    await reportFailure(ctx, job, null, err);
    return { ok: 0, failed: plan.length, failureCode: exitCodeOf(err) };
  }
  try {
    for (const p of plan) {
      ctx.signal.throwIfAborted();
      const runId = randomUUID();
      const window = { start: p.start, end: p.end };
      const id = ledger.begin({ runId, export: job.name, window, kind: p.kind, destination: job.destType });
      const started = Date.now();
      await events?.emit({ event: 'started', export: job.name, run_id: runId, kind: p.kind, window_start: isoMs(p.start), window_end: isoMs(p.end) });
      const progress = ctx.progress(`${job.name} ${isoMs(p.start).slice(0, 16)}`);
      try {
        if (progress.enabled) progress.start(p.late ? p.late.rows : await source.count({ ...windowFilter(job, window, now) }, { upTo }));
        const late: LateSpec | undefined = p.late ? { after: p.late.after, pendingIds: p.late.pendingIds, previous: p.late.previous } : undefined;
        // Fingerprinted before the read: a row changed meanwhile makes the next run restate, never hides a change.
        const fingerprint = (job.restateLookbackMs > 0 && p.end > now - job.restateLookbackMs
          ? (await source.fingerprints(windowFilter(job, window, now), [window], fingerprintColumns(job), upTo))[0]
          : undefined);
        const restate: RestateSpec | undefined = p.restate ? { previous: p.restate.previous, revision: p.restate.revision, restated: {
          from_revision: p.restate.revision - 1, run_id: runId,
          rows_before: p.restate.old.rows, rows_now: p.restate.now.rows, cost_before: p.restate.old.cost, cost_now: p.restate.now.cost, tokens_before: p.restate.old.tokens, tokens_now: p.restate.now.tokens,
        } } : undefined;
        if (p.restate) await events?.emit({ ...restate!.restated, event: 'restating', export: job.name, run_id: runId, kind: 'restate', window_start: isoMs(p.start), window_end: isoMs(p.end), revision: p.restate.revision });
        const r = await exportWindow({
          job, source, dest, window, runId, upTo, late, restate, now, signal: ctx.signal,
          onRows: (n) => progress.tick(n),
          onVerbose: (m) => ctx.log.verbose(m),
          onPart: (part) => { void events?.emit({ event: 'part_written', export: job.name, run_id: runId, key: part.key, rows: part.rows, bytes: part.bytes, sha256: part.sha256 }); },
        });
        progress.stop();
        ledger.succeed(id, {
          rows: r.rows, bytes: r.bytes, files: r.parts.length, position: r.position, pendingIds: r.pendingIds, manifest: r.manifest, manifestKey: r.manifestKey,
          fingerprint: fingerprint ?? null, revision: r.manifest.revision ?? 1,
          restate: p.restate ? { old: p.restate.old, new: p.restate.now, rows_changed: restateRowsChanged(p.restate.old, p.restate.now), revision: p.restate.revision } : undefined,
        });
        res.ok++;
        const secs = (Date.now() - started) / 1000;
        if (r.warnings.malformedJson && !ctx.log.isQuiet) ctx.log.warn(`${job.name}: ${r.warnings.malformedJson} malformed JSON cell(s) exported as text`);
        if (events) await events.emit({ event: 'finished', export: job.name, run_id: runId, kind: p.kind, window_start: isoMs(p.start), window_end: isoMs(p.end), rows: r.rows, files: r.parts.length, bytes: r.bytes, seconds: secs, manifest: r.manifestKey, revision: r.manifest.revision ?? 1, warnings: r.manifest.warnings });
        else ctx.log.info(`${job.name} ${isoMs(p.start)} → ${isoMs(p.end)}${p.kind === 'late' ? ' (late rows)' : p.restate ? ` (restated as revision ${p.restate.revision}: rows ${p.restate.old.rows} → ${p.restate.now.rows}, cost ${round(p.restate.old.cost)} → ${round(p.restate.now.cost)})` : ''}: ${count(r.rows, 'row')}, ${count(r.parts.length, 'file')}, ${humanBytes(r.bytes)} in ${secs.toFixed(1)}s → ${destLocation(job)}`);
      } catch (err) {
        progress.stop();
        // Stopped by a signal: the ledger says so, not the SDK's "The operation was aborted".
        ledger.fail(id, ctx.signal.aborted ? ctx.signal.reason ?? err : err);
        res.failed++;
        res.failureCode ??= exitCodeOf(err);
        await reportFailure(ctx, job, runId, err);
        if (ctx.signal.aborted) throw err;
        break;
      }
    }
  } finally {
    await dest.close().catch(() => {});
  }
  return res;
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

/** Rows changed by a restatement, as far as the fingerprints tell: added or removed rows, or at least one when only values changed. */
function restateRowsChanged(a: WindowFingerprint, b: WindowFingerprint): number {
  return Math.abs(a.rows - b.rows) || (a.hash !== b.hash || !sameCost(a.cost, b.cost) || a.tokens !== b.tokens ? 1 : 0);
}

/** One export's failure as the CliError its caller reports: "could not export NAME: why", with its exit code and hint. */
function exportFailure(job: ExportJob, err: unknown): CliError {
  if (err instanceof CliError) return err;
  return new CliError(`export ${job.name}`, (err as Error)?.message ?? String(err), { exitCode: exitCodeOf(err), hint: systemFailure(err)?.hint, cause: (err as Error)?.cause });
}

async function reportFailure(ctx: EngineContext, job: ExportJob, runId: string | null, err: unknown): Promise<void> {
  const failure = exportFailure(job, err);
  if (ctx.events) await ctx.events.emit({ event: 'failed', export: job.name, run_id: runId, error: scrubKnownSecrets(failure.message), exit_code: exitCodeOf(err) });
  ctx.reportFailure(job.name, failure);
}

export function describeRun(r: RunRow): Record<string, unknown> {
  return {
    run_id: r.run_id, export: r.export, kind: r.kind, window_start: isoMs(r.window_start), window_end: isoMs(r.window_end),
    status: r.status, attempt: r.attempt, rows: r.rows, bytes: r.bytes, files: r.files, destination: r.destination,
    started_at: isoMs(r.started_at), finished_at: r.finished_at ? isoMs(r.finished_at) : null, error: r.error,
    position: r.position_kind ? { kind: r.position_kind, value: r.position_value } : null, manifest_key: r.manifest_key,
    revision: r.kind === 'unplaced' ? null : (r.revision ?? 1),
    ...(r.restate ? { restate: JSON.parse(r.restate) as unknown } : {}),
  };
}
