import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Destination, PartInfo, WrittenPart } from '../destination/types.js';
import type { EncoderOptions, Format } from '../format/types.js';
import type { RecordSchema } from '../record/fields.js';
import { describeFilter } from '../source/filter-spec.js';
import type { Filter } from '../source/filter.js';
import { VERSION } from '../version.js';
import type { Batch } from './batches.js';
import type { ThreadPart } from './parallel-encode.js';
import type { ExportWindowOptions } from './window-spec.js';

/** A part's bytes encoded here, from the pending batches, up to maxRows. */
export function localPart(
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
export async function reportPart(o: ExportWindowOptions, filter: Filter): Promise<ThreadPart> {
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

export function encoderOptions(o: ExportWindowOptions, format: Format): EncoderOptions {
  return {
    formulaGuard: o.job.formulaGuard,
    compression: format.name === 'parquet' ? o.job.compression : 'none',
    metadata: { 'bifrost-logs.export': o.job.name, 'bifrost-logs.run_id': o.runId },
  };
}

/** Streams one part to the destination (through gzip when asked), hashing what it writes. */
export async function writePart(o: ExportWindowOptions, dest: Destination, info: PartInfo, gzip: boolean, part: ThreadPart): Promise<WrittenPart> {
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
