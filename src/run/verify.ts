import { createHash } from 'node:crypto';
import type { Destination } from '../destination/types.js';
import type { LogSource, SourcePosition, WindowFingerprint } from '../source/types.js';
import type { EngineContext } from './context.js';
import { openDestination } from './destinations.js';
import type { ExportJob } from './job.js';
import type { RunRow } from './ledger.js';
import type { Manifest } from './manifest.js';
import { fingerprintColumns } from './plan.js';
import { currentFingerprints, sameCost, sameFingerprint } from '../source/fingerprint.js';
import { windowFilter } from './window-spec.js';

/** One delivered window, checked: its manifest (null when none was recorded) and what differs. */
export interface WindowVerdict {
  readonly run: RunRow;
  readonly manifest: Manifest | null;
  readonly differences: string[];
}

const positionOf = (r: RunRow): SourcePosition => ({ kind: (r.position_kind ?? 'none') as SourcePosition['kind'], value: r.position_value ?? 0 });

/**
 * Re-checks delivered windows of one export: every file exists with its size
 * and sha256, the manifest object matches the ledger's, the table or the DB
 * holds the manifest's rows, and the rows have not changed since delivery.
 */
export async function* verifyWindows(ctx: Pick<EngineContext, 'log' | 'stateDirFlag' | 'env'>, job: ExportJob, runs: RunRow[], source: LogSource, stateDir?: string): AsyncGenerator<WindowVerdict> {
  if (!runs.length) return;
  // Every fingerprinted window's rows now, in one grouped query, against the revision delivered.
  const printed = runs.filter((r) => r.fingerprint);
  const base = { ...windowFilter(job, { start: 0, end: 0 }, Date.now()), start: undefined, end: undefined };
  const nowFp = new Map<RunRow, WindowFingerprint>();
  if (printed.length) {
    const fps = await currentFingerprints(source, base, printed.map((r) => ({ start: r.window_start, end: r.window_end, upTo: positionOf(r), stored: JSON.parse(r.fingerprint!) as WindowFingerprint })), fingerprintColumns(job), await source.position());
    // Compared in the version each window was fingerprinted in.
    printed.forEach((r, i) => nowFp.set(r, fps[i]!.comparable));
  }
  const { dest } = await openDestination(ctx, job, { stateDir });
  try {
    for (const r of runs) {
      const m = JSON.parse(r.manifest ?? 'null') as Manifest | null;
      if (!m) { yield { run: r, manifest: null, differences: ['no manifest recorded'] }; continue; }
      const found = await destinationDifferences(dest, r, m);
      if (!m.transformations.some((t) => t.type === 'aggregate')) {
        const upTo: SourcePosition = m.source.position;
        const filter = windowFilter(job, { start: r.window_start, end: r.window_end }, Date.now());
        const n = await source.count(filter, upTo.kind === 'none' ? undefined : { upTo });
        if (n !== m.rows) found.push(`the DB now has ${n} rows in the window, the manifest says ${m.rows}${n > m.rows ? ' (late rows not delivered yet? run `bifrost-logs run`)' : ' (rows deleted by retention?)'}`);
      }
      const fp = nowFp.get(r);
      if (fp) {
        const changed = fingerprintDifference(job, r, JSON.parse(r.fingerprint!) as WindowFingerprint, fp);
        if (changed) found.push(changed);
      }
      yield { run: r, manifest: m, differences: found };
    }
  } finally {
    await dest.close();
  }
}

/** What the destination holds against the manifest: its objects and their hashes, or the table's rows. */
async function destinationDifferences(dest: Destination, r: RunRow, m: Manifest): Promise<string[]> {
  const found: string[] = [];
  if (dest.kind === 'object' && dest.readObject) {
    const mo = await dest.readObject(r.manifest_key!);
    if (!mo) found.push(`manifest ${r.manifest_key} is missing`);
    else {
      const chunks: Buffer[] = [];
      for await (const c of mo) chunks.push(Buffer.from(c));
      try {
        const remote = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Manifest;
        if (remote.rows !== m.rows || remote.files.length !== m.files.length) found.push(`manifest ${r.manifest_key} differs from the ledger (${remote.rows} rows/${remote.files.length} files vs ${m.rows}/${m.files.length})`);
      } catch { found.push(`manifest ${r.manifest_key} is not valid JSON`); }
    }
    for (const f of m.files) {
      const s = await dest.readObject(f.key);
      if (!s) { found.push(`${f.key} is missing`); continue; }
      const h = createHash('sha256');
      let bytes = 0;
      for await (const c of s) { h.update(c as Buffer); bytes += (c as Buffer).length; }
      if (bytes !== f.bytes) found.push(`${f.key}: ${bytes} bytes, manifest says ${f.bytes}`);
      else if (h.digest('hex') !== f.sha256) found.push(`${f.key}: sha256 differs from the manifest`);
    }
  } else if (dest.kind === 'table' && dest.countWindow && !m.transformations.some((t) => t.type === 'aggregate')) {
    const n = await dest.countWindow({ start: r.window_start, end: r.window_end });
    if (n !== m.rows) found.push(`the table holds ${n} rows of the window, the manifest says ${m.rows}`);
  }
  return found;
}

/** How the window's rows changed since delivery, or null when they did not. */
function fingerprintDifference(job: ExportJob, r: RunRow, old: WindowFingerprint, fp: WindowFingerprint): string | null {
  if (sameFingerprint(old, fp)) return null;
  const what: string[] = [];
  if (old.rows !== fp.rows) what.push(`rows ${old.rows} → ${fp.rows}`);
  if (!sameCost(old.cost, fp.cost)) what.push(`cost ${+old.cost.toFixed(6)} → ${+fp.cost.toFixed(6)}`);
  if (old.tokens !== fp.tokens) what.push(`tokens ${old.tokens} → ${fp.tokens}`);
  if (!what.length) what.push('values of delivered rows (status, latency, error details, token usage…)');
  const inLookback = job.restateLookbackMs > 0 && r.window_end > Date.now() - job.restateLookbackMs;
  return `rows changed since revision ${r.revision ?? 1} was delivered: ${what.join(', ')} (${inLookback ? 'run `bifrost-logs run` to restate the window' : 'the window is older than restate_lookback_secs, so `run` does not restate it: raise restate_lookback_secs to cover it'})`;
}
