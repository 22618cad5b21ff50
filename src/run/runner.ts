import { randomUUID } from 'node:crypto';
import { CliError, ExitCode, isUnreachable } from '../errors.js';
import type { Ctx } from '../cli/context.js';
import type { LogSource, SourcePosition } from '../source/types.js';
import type { Destination } from '../destination/types.js';
import { createProgress } from '../cli/progress.js';
import { scrubKnownSecrets } from '../util/env-ref.js';
import { isoMs, DAY_MS } from '../util/time.js';
import { exportWindow, windowFilter, type LateSpec } from './export-window.js';
import type { ExportJob } from './job.js';
import type { Ledger, RunKind, RunRow } from './ledger.js';
import type { Manifest } from './manifest.js';
import { dueWindows } from './schedule.js';
import { openDestination } from './destinations.js';

export const DEFAULT_LATE_HORIZON_MS = 2 * DAY_MS;

export interface PlannedRun {
  export: string;
  kind: RunKind;
  start: number;
  end: number;
  /** For late runs: rows that arrived since delivery. */
  late?: { after: SourcePosition; pendingIds: string[]; previous: Manifest; rows: number };
  /** For retries of a window. */
  attempt?: number;
}

export interface RunEvents {
  emit(e: Record<string, unknown>): Promise<void>;
}

/** What is due for one export: missed windows oldest first, then late parts of delivered ones. */
export async function planExport(job: ExportJob, ledger: Ledger, source: LogSource, now: number, lateHorizonMs: number, upTo: SourcePosition): Promise<PlannedRun[]> {
  const delivered = ledger.delivered(job.name);
  const out: PlannedRun[] = [];
  if (job.oneOff) {
    const done = delivered.some((r) => r.window_start === job.oneOff!.start && r.window_end === job.oneOff!.end);
    if (!done && job.oneOff.end + job.settleLagMs <= now) out.push({ export: job.name, kind: 'window', ...job.oneOff });
  } else if (job.schedule) {
    const lastEnd = delivered.length ? Math.max(...delivered.map((r) => r.window_end)) : undefined;
    for (const w of dueWindows(job.schedule, { now, settleLagMs: job.settleLagMs, lastEnd, backfillFrom: job.backfillFrom })) {
      out.push({ export: job.name, kind: 'window', ...w });
    }
  }
  // Late rows: a delivered window may still receive rows (long streams land
  // in the past; old builds finish `processing` rows later).
  for (const r of delivered) {
    if (r.window_end < now - lateHorizonMs) continue;
    if (!r.manifest) continue;
    const after: SourcePosition = { kind: (r.position_kind ?? 'none') as SourcePosition['kind'], value: r.position_value ?? 0 };
    const pendingIds = JSON.parse(r.pending_ids ?? '[]') as string[];
    const filter = windowFilter(job, { start: r.window_start, end: r.window_end }, now);
    let rows = 0;
    if (after.kind !== 'none' && upTo.kind === after.kind && upTo.value > after.value) rows += await source.count(filter, { after, upTo });
    if (pendingIds.length) rows += await source.count({ ...filter, ids: pendingIds });
    if (rows > 0) out.push({ export: job.name, kind: 'late', start: r.window_start, end: r.window_end, late: { after, pendingIds, previous: JSON.parse(r.manifest) as Manifest, rows } });
    else if (upTo.value > after.value && after.kind !== 'none') {
      // Nothing new for this window: remember the newer position so later checks stay cheap.
    }
  }
  return out;
}

export interface ExecuteResult {
  ok: number;
  failed: number;
  /** The exit code of the first failure. */
  failureCode?: number;
}

/** Runs planned windows of one export in order; stops at its first failure so windows stay in order. */
export async function executePlan(ctx: Ctx, job: ExportJob, plan: PlannedRun[], source: LogSource, ledger: Ledger, upTo: SourcePosition, events: RunEvents | null, now: number): Promise<ExecuteResult> {
  const res: ExecuteResult = { ok: 0, failed: 0 };
  if (!plan.length) return res;
  let dest: Destination;
  try {
    dest = (await openDestination(ctx, job, ctx.signal)).dest;
  } catch (err) {
    await reportFailure(ctx, job, null, err, events);
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
      const progress = createProgress(ctx, `${job.name} ${isoMs(p.start).slice(0, 16)}`);
      try {
        if (progress.enabled) progress.start(p.late ? p.late.rows : await source.count({ ...windowFilter(job, window, now) }, { upTo }));
        const late: LateSpec | undefined = p.late ? { after: p.late.after, pendingIds: p.late.pendingIds, previous: p.late.previous } : undefined;
        const r = await exportWindow({
          job, source, dest, window, runId, upTo, late, now, signal: ctx.signal,
          onRows: (n) => progress.tick(n),
          onVerbose: (m) => ctx.log.verbose(m),
          onPart: (part) => { void events?.emit({ event: 'part_written', export: job.name, run_id: runId, key: part.key, rows: part.rows, bytes: part.bytes, sha256: part.sha256 }); },
        });
        progress.stop();
        ledger.succeed(id, { rows: r.rows, bytes: r.bytes, files: r.parts.length, position: r.position, pendingIds: r.pendingIds, manifest: r.manifest, manifestKey: r.manifestKey });
        res.ok++;
        const secs = (Date.now() - started) / 1000;
        if (r.warnings.malformedJson && !ctx.log.isQuiet) ctx.log.warn(`${job.name}: ${r.warnings.malformedJson} malformed JSON cell(s) exported as text`);
        if (events) await events.emit({ event: 'finished', export: job.name, run_id: runId, kind: p.kind, window_start: isoMs(p.start), window_end: isoMs(p.end), rows: r.rows, files: r.parts.length, bytes: r.bytes, seconds: secs, manifest: r.manifestKey });
        else ctx.log.info(`${job.name} ${isoMs(p.start)} → ${isoMs(p.end)}${p.kind === 'late' ? ' (late rows)' : ''}: ${r.rows} rows, ${r.parts.length} file(s), ${r.bytes} bytes in ${secs.toFixed(1)}s`);
      } catch (err) {
        progress.stop();
        ledger.fail(id, err);
        res.failed++;
        res.failureCode ??= exitCodeOf(err);
        await reportFailure(ctx, job, runId, err, events);
        if (ctx.signal.aborted) throw err;
        break;
      }
    }
  } finally {
    await dest.close().catch(() => {});
  }
  return res;
}

function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (isUnreachable(err)) return ExitCode.unavailable;
  return ExitCode.software;
}

async function reportFailure(ctx: Ctx, job: ExportJob, runId: string | null, err: unknown, events: RunEvents | null): Promise<void> {
  const msg = scrubKnownSecrets(err instanceof CliError ? err.message : `could not export ${job.name}: ${(err as Error)?.message ?? String(err)}`);
  if (events) await events.emit({ event: 'failed', export: job.name, run_id: runId, error: msg, exit_code: exitCodeOf(err) });
  process.stderr.write(`bifrost-logs: ${job.name}: ${msg}\n`);
  if (err instanceof CliError && err.hint) process.stderr.write(`hint: ${err.hint}\n`);
  if (ctx.log.isVerbose) {
    let c: unknown = (err as Error)?.cause;
    while (c) { process.stderr.write(scrubKnownSecrets(`  caused by: ${(c as Error).message ?? String(c)}\n`)); c = (c as Error).cause; }
  }
}

export function describeRun(r: RunRow): Record<string, unknown> {
  return {
    run_id: r.run_id, export: r.export, kind: r.kind, window_start: isoMs(r.window_start), window_end: isoMs(r.window_end),
    status: r.status, attempt: r.attempt, rows: r.rows, bytes: r.bytes, files: r.files, destination: r.destination,
    started_at: isoMs(r.started_at), finished_at: r.finished_at ? isoMs(r.finished_at) : null, error: r.error,
    position: r.position_kind ? { kind: r.position_kind, value: r.position_value } : null, manifest_key: r.manifest_key,
  };
}
