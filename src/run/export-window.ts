import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Destination, PartInfo, WrittenPart } from '../destination/types.js';
import { formatByName } from '../format/index.js';
import type { EncoderOptions, Format, RecordEncoder } from '../format/types.js';
import { createRecordMapper } from '../record/mapper.js';
import { createWarnings, type RecordWarnings } from '../record/json-cell.js';
import type { ExportRecord, RecordSchema } from '../record/fields.js';
import { describeFilter, resolveFilter } from '../source/filter-spec.js';
import type { Filter } from '../source/filter.js';
import type { Excluded, LogSource, RowPage, SourcePosition } from '../source/types.js';
import { planTransforms, type TransformPlan } from '../transform/compose.js';
import type { RunVars } from '../transform/types.js';
import { canEncodeInParallel, encodeThreads, parallelEncode, parallelParquet, type EncodeSpec, type ThreadPart } from './parallel-encode.js';
import { isoMs } from '../util/time.js';
import { VERSION } from '../version.js';
import type { ExportJob } from './job.js';
import { manifestKey, partKey, renderPrefix, type KeyParts } from './keys.js';
import type { Manifest } from './manifest.js';

export interface WindowSpec {
  /** [start, end): the slot's window, or the ad-hoc --since/--until. */
  readonly start: number;
  readonly end: number;
}

export interface LateSpec {
  /** Deliver only rows inserted after this position… */
  readonly after: SourcePosition;
  /** …plus these rows that were still processing at the last delivery. */
  readonly pendingIds: readonly string[];
  /** The window's manifest so far. */
  readonly previous: Manifest;
}

export interface RestateSpec {
  /** The window's current manifest (the revision being replaced). */
  readonly previous: Manifest;
  readonly revision: number;
  readonly restated: NonNullable<Manifest['restated']>;
}

export interface WindowResult {
  readonly manifest: Manifest;
  readonly manifestKey: string;
  /** Parts written by this run. */
  readonly parts: WrittenPart[];
  readonly rows: number;
  readonly bytes: number;
  readonly warnings: RecordWarnings;
  /** Rows still processing now, re-checked by the next run. */
  readonly pendingIds: string[];
  readonly position: SourcePosition;
}

export interface ExportWindowOptions {
  readonly job: ExportJob;
  readonly source: LogSource;
  readonly dest: Destination;
  readonly window: WindowSpec;
  readonly runId: string;
  /** The snapshot: rows inserted after it wait for the next run. */
  readonly upTo: SourcePosition;
  readonly late?: LateSpec;
  /** A new revision of a delivered window whose rows changed: written whole beside the current one, which it then replaces. */
  readonly restate?: RestateSpec;
  /** The filter without its time range (resolved once per run). */
  readonly baseFilter?: Filter;
  readonly now: number;
  readonly signal?: AbortSignal;
  onRows?(n: number): void;
  onPart?(p: WrittenPart): void;
  /** Detail for --verbose. */
  onVerbose?(msg: string): void;
}

/** The filter of a window: the job's filters, the window, and never `processing` rows. */
export function windowFilter(job: ExportJob, w: WindowSpec, now: number): Filter {
  const f = resolveFilter({ ...job.filterSpec, date_range: undefined, since: undefined, until: undefined }, now, job.timezone);
  return { ...f, start: w.start > 0 ? w.start : undefined, end: w.end, completedOnly: true };
}

/** The format parts are written in: table destinations choose their own load format. */
export function partFormat(job: ExportJob, dest: Destination): { format: Format; gzip: boolean } {
  if (dest.kind === 'table') return { format: formatByName(dest.loadFormat ?? 'jsonl'), gzip: false };
  return { format: job.format, gzip: job.compression === 'gzip' && job.format.wrapsGzip };
}

export function keyParts(job: ExportJob, w: WindowSpec): KeyParts {
  return { prefix: renderPrefix(job.prefixTemplate, job.name, w.start, job.timezone), exportName: job.name, start: w.start, end: w.end };
}

function runVars(job: ExportJob, w: WindowSpec, runId: string, now: number) {
  return { export_name: job.name, run_id: runId, window_start: isoMs(w.start), window_end: isoMs(w.end), exported_at: isoMs(now) };
}

/**
 * Rows waiting to be written: records, which the part's encoder turns into
 * bytes, or bytes an encoding thread already made (row-framed formats only).
 */
interface Batch {
  readonly count: number;
  /** The bytes of the first `n` rows. */
  encode(enc: RecordEncoder, n: number): Buffer | null;
  /** What is left after the first `n` rows. */
  rest(n: number): Batch;
}

function recordBatch(records: ExportRecord[]): Batch {
  return {
    count: records.length,
    encode: (enc, n) => enc.push(n === records.length ? records : records.slice(0, n)),
    rest: (n) => recordBatch(records.slice(n)),
  };
}

function encodedBatch(format: Format, bytes: Buffer, count: number): Batch {
  const cut = (n: number) => (n === count ? bytes.length : format.rowEnd!(bytes, n));
  return {
    count,
    encode: (_enc, n) => bytes.subarray(0, cut(n)),
    rest: (n) => encodedBatch(format, bytes.subarray(cut(n)), count - n),
  };
}

/** What an encoding thread needs to rebuild this window's reader, mapper, transforms and encoder. */
function encodeSpec(o: ExportWindowOptions, filter: Filter, exclude: Excluded | undefined, vars: RunVars, format: Format): Omit<EncodeSpec, 'dbPath'> {
  return {
    query: { filter, upTo: o.upTo, exclude },
    table: o.job.table,
    fields: o.job.fields.map((f) => f.name),
    transforms: [...o.job.transforms],
    vars,
    timezone: o.job.timezone,
    format: format.name as EncodeSpec['format'],
    formulaGuard: o.job.formulaGuard,
    compression: format.name === 'parquet' ? o.job.compression : 'none',
  };
}

/** Pages of rows: read, mapped, transformed (or aggregated in SQL), possibly encoded on threads. */
async function* batches(o: ExportWindowOptions, plan: TransformPlan, vars: RunVars, filter: Filter, exclude: Excluded | undefined, warnings: RecordWarnings, format: Format): AsyncGenerator<Batch> {
  const { source, late } = o;
  if (plan.aggregate) {
    const rows = await source.aggregate(filter, plan.aggregate);
    if (rows.length) yield recordBatch(plan.apply(rows));
    return;
  }
  if (!late && format.rowEnd) {
    const threads = encodeThreads();
    if (canEncodeInParallel(source, format.name, threads)) {
      const chunks = await parallelEncode(source, encodeSpec(o, filter, exclude, vars, format), threads, warnings, o.signal);
      if (chunks) {
        o.onVerbose?.(`${o.job.name}: reading and encoding on ${threads} threads`);
        for await (const c of chunks) yield encodedBatch(format, c.bytes, c.rows);
        return;
      }
    }
  }
  const mapper = createRecordMapper(o.job.fields, warnings);
  const reads: AsyncIterable<RowPage>[] = [];
  const columns = mapper.columns;
  if (!late) reads.push(source.read({ filter, columns, upTo: o.upTo, exclude }, o.signal));
  else {
    if (late.after.kind !== 'none') reads.push(source.read({ filter, columns, after: late.after, upTo: o.upTo, exclude }, o.signal));
    // The last run's pending rows lie at or before its position; rows after it are the read above's.
    const upTo = late.after.kind !== 'none' ? late.after : undefined;
    for (let i = 0; i < late.pendingIds.length; i += 500) {
      reads.push(source.read({ filter: { ...filter, ids: late.pendingIds.slice(i, i + 500) }, columns, upTo, exclude }, o.signal));
    }
  }
  // Without transforms, rows go straight from the reader's arrays to bytes (CSV, JSONL).
  const writer = plan.transforms.length || !format.rowEnd ? null : format.createRowWriter?.(plan.schema, { formulaGuard: o.job.formulaGuard }) ?? null;
  for (const r of reads) {
    for await (const page of r) {
      if (writer) {
        const bytes = writer.push(page.rows, mapper.cells(page.columns));
        if (bytes) yield encodedBatch(format, bytes, page.rows.length);
        continue;
      }
      const records = plan.apply(mapper.map(page));
      if (records.length) yield recordBatch(records);
    }
  }
}

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

  const pendingIds = !processing ? [] : processing.ids ?? await o.source.idsAt!(processing.positions);
  const nowIso = isoMs(Date.now());
  const prev = late?.previous;
  const files = [
    ...(prev && !aggregated ? prev.files : []),
    ...parts.map((p) => ({ ...p, run_id: o.runId, written_at: nowIso })),
  ];
  const manifest: Manifest = {
    manifest_version: 1,
    tool: { name: 'bifrost-logs', version: VERSION },
    export: job.name,
    run_id: prev?.run_id ?? o.runId,
    revision,
    ...(o.restate ? { restated: o.restate.restated } : prev?.restated ? { restated: prev.restated } : {}),
    window: { start: isoMs(w.start), end: isoMs(w.end) },
    created_at: prev?.created_at ?? o.restate?.previous.created_at ?? nowIso,
    updated_at: nowIso,
    source: { dialect: o.source.dialect, table: o.job.table, position: o.upTo, pending_ids: pendingIds.length },
    format: format.name,
    compression: gzip ? 'gzip' : job.format.name === 'parquet' && job.compression === 'gzip' ? 'gzip' : 'none',
    destination: dest.type,
    rows: files.reduce((a, f) => a + f.rows, 0),
    bytes: files.reduce((a, f) => a + f.bytes, 0),
    files,
    schema: plan.schema,
    filters: describeFilter(filter),
    transformations: plan.descriptions,
    redaction_policy: {
      redaction_mapping: 'never exported',
      content_hidden: 'content fields exported as null',
      offloaded_payloads: 'content_state = offloaded, content fields null',
      raw_payloads: 'only when named in fields; API keys and Authorization values scrubbed',
      csv_formula_guard: format.name === 'csv' ? job.formulaGuard : false,
    },
    warnings: { malformed_json: (prev?.warnings.malformed_json ?? 0) + warnings.malformedJson },
  };
  const mKey = manifestKey(kp);
  if (dest.kind !== 'stream') {
    o.signal?.throwIfAborted();
    await dest.commit({
      exportName: job.name, window: w, manifestKey: mKey, manifestBytes: Buffer.from(JSON.stringify(manifest, null, 2) + '\n'),
      parts, late: !!late && !aggregated, schema: plan.schema, aggregated,
    });
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

/** A part's bytes encoded here, from the pending batches, up to maxRows. */
function localPart(
  o: ExportWindowOptions, format: Format, schema: RecordSchema, maxRows: number,
  next: () => Promise<Batch | null>, consume: (n: number) => void,
): ThreadPart {
  const encoder = format.createEncoder(schema, encoderOptions(o, format));
  let rows = 0;
  async function* chunks(): AsyncGenerator<Buffer> {
    // The part's opening bytes (a CSV header): pre-encoded rows carry none.
    const head = encoder.push([]);
    if (head) yield head;
    while (rows < maxRows) {
      const batch = await next();
      if (!batch) break;
      const take = Math.min(batch.count, maxRows - rows);
      const b = batch.encode(encoder, take);
      consume(take);
      rows += take;
      o.onRows?.(take);
      if (b?.length) yield b;
    }
    const b = encoder.finish();
    if (b) yield b;
  }
  return { chunks: chunks(), rows: () => rows };
}

/** A scheduled report: the whole window's report, computed from its aggregate, as one part. */
async function reportPart(o: ExportWindowOptions, filter: Filter): Promise<ThreadPart> {
  const { computeReport } = await import('../report/compute.js');
  const { renderReportHtml } = await import('../report/html.js');
  const data = await computeReport(o.source, filter, {
    groupBy: 'model', timezone: o.job.timezone, now: o.now, version: VERSION, sourceLabel: o.source.dialect,
    filters: describeFilter(filter) as Record<string, unknown>,
  });
  const html = Buffer.from(renderReportHtml(data));
  async function* chunks(): AsyncGenerator<Buffer> { yield html; }
  return { chunks: chunks(), rows: () => Number(data.totals.total_requests ?? 0) };
}

function encoderOptions(o: ExportWindowOptions, format: Format): EncoderOptions {
  return {
    formulaGuard: o.job.formulaGuard,
    compression: format.name === 'parquet' ? o.job.compression : 'none',
    metadata: { 'bifrost-logs.export': o.job.name, 'bifrost-logs.run_id': o.runId },
  };
}

/** Streams one part to the destination (through gzip when asked), hashing what it writes. */
async function writePart(o: ExportWindowOptions, dest: Destination, info: PartInfo, gzip: boolean, part: ThreadPart): Promise<WrittenPart> {
  const upload = await dest.openPart(info);
  const hash = createHash('sha256');
  let bytes = 0;
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      upload.write(chunk).then(() => cb(), cb);
    },
  });
  try {
    const src = Readable.from(part.chunks, { objectMode: false, highWaterMark: 1 << 20 });
    if (gzip) await pipeline(src, createGzip({ level: 6 }), sink, { signal: o.signal });
    else await pipeline(src, sink, { signal: o.signal });
    await upload.finish();
  } catch (err) {
    await upload.abort();
    throw err;
  }
  const written: WrittenPart = { key: info.key, kind: info.kind, rows: part.rows(), bytes, sha256: hash.digest('hex') };
  o.onPart?.(written);
  return written;
}
