import { randomUUID } from 'node:crypto';
import { CliError, ExitCode, isUnreachable, systemFailure } from '../errors.js';
import type { Ctx } from '../cli/context.js';
import type { LogSource, SourcePosition, WindowFingerprint } from '../source/types.js';
import { createRecordMapper } from '../record/mapper.js';
import { createWarnings } from '../record/json-cell.js';
import type { Destination } from '../destination/types.js';
import { createProgress } from '../cli/progress.js';
import { scrubKnownSecrets } from '../util/env-ref.js';
import { isoMs } from '../util/time.js';
import { currentFingerprints, sameFingerprint } from '../source/fingerprint.js';
import { exportWindow, windowFilter, type LateSpec, type RestateSpec } from './export-window.js';
import type { ExportJob } from './job.js';
import type { Ledger, RunKind, RunRow } from './ledger.js';
import type { Manifest } from './manifest.js';
import { dueWindows } from './schedule.js';
import { openDestination } from './destinations.js';

/** Rows no window can take: inserted after the export's first delivered window was written, but stamped before it. */
export interface Unplaced {
  rows: number;
  /** The span of their timestamps: [start, end]. */
  start: number;
  end: number;
}

export interface PlannedRun {
  export: string;
  kind: RunKind;
  start: number;
  end: number;
  /** For late runs: rows that arrived since delivery. */
  late?: { after: SourcePosition; pendingIds: string[]; previous: Manifest; rows: number };
  /** For restatements: the window's rows changed since its delivered revision. */
  restate?: { previous: Manifest; revision: number; old: WindowFingerprint; now: WindowFingerprint };
  /** For retries of a window. */
  attempt?: number;
}

/** The runs due for one export, and what its late-row scan found. */
export type ExportPlan = PlannedRun[] & {
  /** Rows the scan found that no window can take (reported, never dropped silently). */
  unplaced?: Unplaced;
  /** Where the scan stopped, and the rows it saw still processing: saved once the plan succeeds. */
  scan?: { to: SourcePosition; processing: string[] };
};

export interface RunEvents {
  emit(e: Record<string, unknown>): Promise<void>;
}

/** The canonical columns an export's records are made of (the fingerprint covers them). */
export function fingerprintColumns(job: ExportJob): readonly string[] {
  return createRecordMapper(job.fields, createWarnings()).columns;
}

/** The window of `delivered` (sorted, non-overlapping) that holds `t`, by binary search. */
function windowOf(delivered: RunRow[], t: number): RunRow | undefined {
  let lo = 0;
  let hi = delivered.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const w = delivered[mid]!;
    if (t < w.window_start) hi = mid - 1;
    else if (t >= w.window_end) lo = mid + 1;
    else return w;
  }
  return undefined;
}

/**
 * What is due for one export: missed windows oldest first, then late parts of
 * delivered ones. Late rows are found with one read of the source by insert
 * position (rows inserted since the export's last scan, whatever their
 * timestamp) and one read by id (rows that were still processing); each goes
 * to its own window however old. Rows stamped before the first delivered
 * window are counted in `unplaced`.
 */
export async function planExport(job: ExportJob, ledger: Ledger, source: LogSource, now: number, upTo: SourcePosition): Promise<ExportPlan> {
  const delivered = ledger.delivered(job.name);
  const out: ExportPlan = [];
  if (job.oneOff) {
    const done = delivered.some((r) => r.window_start === job.oneOff!.start && r.window_end === job.oneOff!.end);
    if (!done && job.oneOff.end + job.settleLagMs <= now) out.push({ export: job.name, kind: 'window', ...job.oneOff });
  } else if (job.schedule) {
    const lastEnd = delivered.length ? Math.max(...delivered.map((r) => r.window_end)) : undefined;
    for (const w of dueWindows(job.schedule, { now, settleLagMs: job.settleLagMs, lastEnd, backfillFrom: job.backfillFrom })) {
      out.push({ export: job.name, kind: 'window', ...w });
    }
  }
  const windows = delivered.filter((r) => r.manifest);
  if (!windows.length) return out;
  const pos = (r: RunRow): SourcePosition => ({ kind: (r.position_kind ?? 'none') as SourcePosition['kind'], value: r.position_value ?? 0 });
  const pendingOf = new Map(windows.map((r) => [r, new Set(JSON.parse(r.pending_ids ?? '[]') as string[])]));
  // The filter of every window at once: the export's filters, no time range.
  const base = { ...windowFilter(job, { start: 0, end: 0 }, now), start: undefined, end: undefined };
  const late = new Map<RunRow, Set<string>>();
  const unplaced: Unplaced = { rows: 0, start: Infinity, end: -Infinity };
  const place = (id: string, t: number | null, p: number | null) => {
    if (t === null) return;
    const w = windowOf(windows, t);
    if (!w) {
      // Rows of windows not delivered yet are their window's to deliver.
      if (t < windows[0]!.window_start) { unplaced.rows++; unplaced.start = Math.min(unplaced.start, t); unplaced.end = Math.max(unplaced.end, t); }
      return;
    }
    const wp = pos(w);
    if ((p !== null && wp.kind !== 'none' && p > wp.value) || pendingOf.get(w)!.has(id)) {
      let ids = late.get(w);
      if (!ids) late.set(w, (ids = new Set()));
      ids.add(id);
    }
  };
  const processing = new Set<string>();
  const columns = ['id', 'status'];
  // Rows that were still processing: at a delivery (the window's list) or at the last scan (the export's).
  const scanned = ledger.scanMark(job.name);
  const waiting = new Set<string>(scanned?.processing ?? []);
  for (const s of pendingOf.values()) for (const id of s) waiting.add(id);
  const waitingIds = [...waiting];
  // In chunks: a statement's parameters are limited (SQLite 32766, Postgres 65535).
  // A listing, not a read: it looks the ids up by their index instead of scanning by position.
  const scannedProcessing = new Set(scanned?.processing ?? []);
  for (let c = 0; c < waitingIds.length; c += 5000) {
    for await (const page of source.list({ filter: { ...base, completedOnly: false, ids: waitingIds.slice(c, c + 5000) }, columns, upTo, sort: 'timestamp', order: 'asc' }, undefined)) {
      const [iId, iSt, iTs, iPos] = ['id', 'status', '__ts_ms', '__pos'].map((c) => page.columns.indexOf(c));
      for (const r of page.rows) {
        if (r[iSt!] === 'processing') { if (scannedProcessing.has(r[iId!] as string)) processing.add(r[iId!] as string); continue; }
        place(r[iId!] as string, r[iTs!] as number | null, r[iPos!] as number | null);
      }
    }
  }
  // Rows inserted since the last scan (or, for a ledger from before scans, since the oldest delivery).
  if (upTo.kind !== 'none') {
    const from = scanned && scanned.position.kind === upTo.kind ? scanned.position.value
      : Math.min(...windows.map((w) => (pos(w).kind === upTo.kind ? pos(w).value : 0)));
    if (upTo.value > from) {
      for await (const page of source.read({ filter: { ...base, completedOnly: false }, columns, after: { kind: upTo.kind, value: from }, upTo }, undefined)) {
        const [iId, iSt, iTs, iPos] = ['id', 'status', '__ts_ms', '__pos'].map((c) => page.columns.indexOf(c));
        for (const r of page.rows) {
          if (r[iSt!] === 'processing') { processing.add(r[iId!] as string); continue; }
          place(r[iId!] as string, r[iTs!] as number | null, r[iPos!] as number | null);
        }
      }
    }
  }
  // Restatement: one grouped query fingerprints every delivered window of the lookback.
  const restated = new Set<RunRow>();
  if (job.restateLookbackMs > 0) {
    const recent = windows.filter((w) => w.window_end > now - job.restateLookbackMs);
    const stored = recent.map((w) => (w.fingerprint ? JSON.parse(w.fingerprint) as WindowFingerprint : null));
    const now_ = await currentFingerprints(source, base, recent.map((w, i) => ({ start: w.window_start, end: w.window_end, upTo: pos(w), stored: stored[i] ?? null })), fingerprintColumns(job), upTo);
    recent.forEach((w, i) => {
      const { now: fp, comparable } = now_[i]!;
      const old = stored[i];
      // A window delivered before fingerprints existed (or unchanged since one of an older version) takes today's as its baseline.
      if (!old) { ledger.setFingerprint(w.id, fp); return; }
      if (sameFingerprint(old, comparable)) { if (comparable !== fp) ledger.setFingerprint(w.id, fp); return; }
      const previous = JSON.parse(w.manifest!) as Manifest;
      restated.add(w);
      out.push({ export: job.name, kind: 'restate', start: w.window_start, end: w.window_end, restate: { previous, revision: (previous.revision ?? w.revision ?? 1) + 1, old, now: fp } });
    });
  }
  for (const w of windows) {
    const ids = late.get(w);
    if (!ids?.size || restated.has(w)) continue;
    out.push({ export: job.name, kind: 'late', start: w.window_start, end: w.window_end, late: { after: pos(w), pendingIds: [...pendingOf.get(w)!], previous: JSON.parse(w.manifest!) as Manifest, rows: ids.size } });
  }
  if (unplaced.rows) out.unplaced = unplaced;
  out.scan = { to: upTo, processing: [...processing] };
  return out;
}

/**
 * After a plan succeeded: saves where its late-row scan stopped, and reports
 * (summary line, NDJSON event, a ledger entry for `jobs show`) rows it found
 * that no window can take.
 */
export async function recordScan(ctx: Ctx, job: ExportJob, plan: ExportPlan, ledger: Ledger, events: RunEvents | null): Promise<void> {
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
        if (events) await events.emit({ event: 'finished', export: job.name, run_id: runId, kind: p.kind, window_start: isoMs(p.start), window_end: isoMs(p.end), rows: r.rows, files: r.parts.length, bytes: r.bytes, seconds: secs, manifest: r.manifestKey, revision: r.manifest.revision ?? 1 });
        else ctx.log.info(`${job.name} ${isoMs(p.start)} → ${isoMs(p.end)}${p.kind === 'late' ? ' (late rows)' : p.restate ? ` (restated as revision ${p.restate.revision}: rows ${p.restate.old.rows} → ${p.restate.now.rows}, cost ${round(p.restate.old.cost)} → ${round(p.restate.now.cost)})` : ''}: ${r.rows} rows, ${r.parts.length} file(s), ${r.bytes} bytes in ${secs.toFixed(1)}s`);
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

const round = (n: number) => Math.round(n * 1e6) / 1e6;

/** Rows changed by a restatement, as far as the fingerprints tell: added or removed rows, or at least one when only values changed. */
function restateRowsChanged(a: WindowFingerprint, b: WindowFingerprint): number {
  return Math.abs(a.rows - b.rows) || (a.hash !== b.hash || a.cost !== b.cost || a.tokens !== b.tokens ? 1 : 0);
}

function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  const f = systemFailure(err);
  if (f) return f.exitCode;
  if (isUnreachable(err)) return ExitCode.unavailable;
  return ExitCode.software;
}

async function reportFailure(ctx: Ctx, job: ExportJob, runId: string | null, err: unknown, events: RunEvents | null): Promise<void> {
  const msg = scrubKnownSecrets(err instanceof CliError ? err.message : `could not export ${job.name}: ${(err as Error)?.message ?? String(err)}`);
  if (events) await events.emit({ event: 'failed', export: job.name, run_id: runId, error: msg, exit_code: exitCodeOf(err) });
  process.stderr.write(`bifrost-logs: ${job.name}: ${msg}\n`);
  if (err instanceof CliError && err.hint) process.stderr.write(`hint: ${err.hint}\n`);
  else if (!(err instanceof CliError) && systemFailure(err)) process.stderr.write(`hint: ${systemFailure(err)!.hint}\n`);
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
    revision: r.kind === 'unplaced' ? null : (r.revision ?? 1),
    ...(r.restate ? { restate: JSON.parse(r.restate) as unknown } : {}),
  };
}
