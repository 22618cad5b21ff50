import type { PartInfo, WrittenPart } from '../destination/types.js';
import { createWarnings } from '../record/json-cell.js';
import type { Excluded, PendingIds } from '../source/types.js';
import { planTransforms } from '../transform/compose.js';
import { canEncodeInParallel, encodeThreads, parallelParquet } from './parallel-encode.js';
import { manifestKey, partKey } from './keys.js';
import { addCommitWarnings, buildManifest } from './manifest.js';
import { batches, encodeSpec, type Batch } from './batches.js';
import { encoderOptions, localPart, reportPart, writePart } from './parts.js';
import { keyParts, partFormat, runVars, windowFilter, type ExportWindowOptions, type WindowResult } from './window-spec.js';

export { keyParts, partFormat, windowFilter };
export type { ExportWindowOptions, LateSpec, RestateSpec, WindowResult, WindowSpec } from './window-spec.js';

/**
 * Exports one window (or its late rows) to a destination: parts split at
 * max_rows_per_file, each streamed through the encoder (and gzip) with
 * backpressure, then the manifest is committed last.
 */
export async function exportWindow(o: ExportWindowOptions): Promise<WindowResult> {
  const { job, dest, window: w, late } = o;
  const warnings = createWarnings();
  const vars = runVars(job, w, o.runId, o.now);
  const plan = planTransforms(job.transforms, job.fields.map(({ name, type, nullable }) => ({ name, type, nullable })), vars, job.timezone, `${job.name}.transformations`);
  const filter = { ...(o.baseFilter ?? windowFilter(job, w, o.now)), ...(w.start > 0 ? { start: w.start } : {}), end: w.end, completedOnly: true };
  const { format, gzip } = partFormat(job, dest);
  await format.ready?.();
  const kp = keyParts(job, w);
  const kind: 'part' | 'late' = late ? 'late' : 'part';
  const revision = o.restate ? o.restate.revision : (late?.previous.revision ?? 1);
  // An aggregated window is re-delivered whole: its late run replaces the part.
  const report = format.name === 'report';
  const aggregated = !!plan.aggregate || report;
  const effectiveKind = aggregated ? 'part' : kind;
  let partNo = late && !aggregated ? late.previous.files.filter((f) => f.kind === 'late').length : 0;
  const maxRows = dest.kind === 'stream' ? Infinity : job.maxRowsPerFile;

  // Rows still processing now (up to the snapshot) wait for the next run, and this run leaves them out even if
  // they finish while it reads: found at the end instead, a row that finished after its range was read would be
  // neither delivered nor pending, and one found at the start but also read would be delivered twice.
  const processing = aggregated ? null : await o.source.processingRows({ ...filter, completedOnly: false }, o.upTo);
  const exclude: Excluded | undefined = processing?.positions?.length ? { positions: processing.positions } : processing?.ids?.length ? { ids: processing.ids } : undefined;
  const rows = batches(o, plan, vars, filter, exclude, warnings, format)[Symbol.asyncIterator]();
  let pending: Batch | null = null;
  let exhausted = false;
  const fill = async (): Promise<Batch | null> => {
    while (!pending?.count && !exhausted) {
      const n = await rows.next();
      if (n.done) exhausted = true;
      else pending = n.value;
    }
    return pending?.count ? pending : null;
  };

  const parts: WrittenPart[] = [];
  const threads = encodeThreads();
  const onThread = format.name === 'parquet' && !late && !aggregated && dest.kind !== 'stream' && canEncodeInParallel(o.source, format.name, threads)
    ? await parallelParquet(o.source, encodeSpec(o, filter, exclude, vars, format), plan.schema, threads, warnings, (n) => o.onRows?.(n), o.signal)
    : null;
  if (onThread) o.onVerbose?.(`${job.name}: reading and encoding Parquet row groups on ${threads} threads`);
  try {
    for (;;) {
      const part = report
        ? (partNo === 0 ? await reportPart(o, filter) : null)
        : onThread
        ? await onThread.next(maxRows, encoderOptions(o, format))
        : (await fill()) ? localPart(o, format, plan.schema, maxRows, fill, (n) => { pending = pending!.rest(n); }) : null;
      if (!part) break;
      partNo++;
      const info: PartInfo = {
        key: partKey(kp, effectiveKind, partNo, format.extension, gzip, revision),
        kind: effectiveKind,
        format: format.name,
        contentType: format.contentType,
        contentEncoding: gzip ? 'gzip' : undefined,
        schema: plan.schema,
      };
      parts.push(await writePart(o, dest, info, gzip, part));
    }
    if (dest.kind === 'stream' && !parts.length) {
      // stdout still gets a well-formed empty document (`[]`, a CSV header).
      const enc = format.createEncoder(plan.schema, { formulaGuard: job.formulaGuard });
      const b = Buffer.concat([enc.push([]) ?? Buffer.alloc(0), enc.finish() ?? Buffer.alloc(0)]);
      if (b.length) { const up = await dest.openPart({ key: '-', kind: 'part', format: format.name, contentType: format.contentType, schema: plan.schema }); await up.write(b); await up.finish(); }
    }
  } catch (err) {
    // The window is not delivered: remove this attempt's complete parts too, so no orphan is left.
    for (const p of parts) await dest.deleteObject?.(p.key).catch(() => {});
    throw err;
  } finally {
    await rows.return?.(undefined);
    await onThread?.close();
  }

  const pendingIds: PendingIds = !processing ? { count: 0, json: '[]' } : processing.ids ? { count: processing.ids.length, json: JSON.stringify(processing.ids) } : await o.source.idsJsonAt!(processing.positions);
  const manifest = buildManifest({
    job, window: w, runId: o.runId, revision, late: late?.previous, restate: o.restate, aggregated, parts,
    source: { dialect: o.source.dialect, position: o.upTo, pendingIds: pendingIds.count },
    format: format.name, gzip, destination: dest.type, schema: plan.schema, filter, transformations: plan.descriptions,
    malformedJson: warnings.malformedJson,
  });
  const mKey = manifestKey(kp);
  if (dest.kind !== 'stream') {
    o.signal?.throwIfAborted();
    const committed = await dest.commit({
      exportName: job.name, window: w, manifestKey: mKey, manifestBytes: Buffer.from(JSON.stringify(manifest, null, 2) + '\n'),
      parts, late: !!late && !aggregated, schema: plan.schema, aggregated,
    });
    // A warehouse's manifest lives in the ledger: what the load changed is counted there.
    if (committed?.warnings) addCommitWarnings(manifest, committed.warnings);
    // The new manifest is the truth now: the superseded revision's files go (best effort; verify ignores them).
    if (o.restate && dest.deleteObject) {
      const keep = new Set(parts.map((p) => p.key));
      for (const f of o.restate.previous.files) if (!keep.has(f.key)) await dest.deleteObject(f.key).catch(() => {});
    }
  }
  return {
    manifest, manifestKey: mKey, parts,
    rows: parts.reduce((a, p) => a + p.rows, 0),
    bytes: parts.reduce((a, p) => a + p.bytes, 0),
    warnings, pendingIds, position: o.upTo,
  };
}
