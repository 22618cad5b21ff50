import type { LogSource, SourcePosition, WindowFingerprint } from '../source/types.js';
import { createRecordMapper } from '../record/mapper.js';
import { createWarnings } from '../record/json-cell.js';
import { currentFingerprints, sameFingerprint } from '../source/fingerprint.js';
import { windowFilter } from './window-spec.js';
import type { ExportJob } from './job.js';
import type { Ledger, RunKind, RunRow } from './ledger.js';
import type { Manifest } from './manifest.js';
import { dueWindows, firstSlotAfter, slotAtOrBefore } from './schedule.js';

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

/** The canonical columns an export's records are made of (the fingerprint covers them). */
export function fingerprintColumns(job: ExportJob): readonly string[] {
  return createRecordMapper(job.fields, createWarnings()).columns;
}

/**
 * When the export's next window falls due (its end plus the settle lag), for
 * an export with nothing due now; null when none will (a delivered one-off).
 */
export function nextDue(job: ExportJob, ledger: Ledger, now: number): number | null {
  const delivered = ledger.delivered(job.name);
  if (!job.schedule) {
    const done = !job.oneOff || delivered.some((r) => r.window_start === job.oneOff!.start && r.window_end === job.oneOff!.end);
    return done ? null : job.oneOff!.end + job.settleLagMs;
  }
  const lastEnd = delivered.length ? Math.max(...delivered.map((r) => r.window_end)) : job.backfillFrom ?? slotAtOrBefore(job.schedule, now - job.settleLagMs);
  return firstSlotAfter(job.schedule, lastEnd) + job.settleLagMs;
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
  // The windows the restatement check fingerprints below: one of their processing rows that completes changes the
  // window's fingerprint (its row count, up to the position it was delivered at), and the window is restated; so
  // their pending rows need no look-up by id.
  const recent = job.restateLookbackMs > 0 ? windows.filter((w) => w.window_end > now - job.restateLookbackMs) : [];
  const fingerprinted = new Set(recent.filter((w) => w.fingerprint));
  for (const [w, s] of pendingOf) if (!fingerprinted.has(w)) for (const id of s) waiting.add(id);
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
  if (recent.length) {
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
