import type { Format, RecordEncoder } from '../format/types.js';
import { createRecordMapper } from '../record/mapper.js';
import type { RecordWarnings } from '../record/json-cell.js';
import type { ExportRecord } from '../record/fields.js';
import type { Filter } from '../source/filter.js';
import type { Excluded, RowPage } from '../source/types.js';
import type { TransformPlan } from '../transform/compose.js';
import type { RunVars } from '../transform/types.js';
import { canEncodeInParallel, encodeThreads, parallelEncode, type EncodeSpec } from './parallel-encode.js';
import type { ExportWindowOptions } from './window-spec.js';

/**
 * Rows waiting to be written: records, which the part's encoder turns into
 * bytes, or bytes an encoding thread already made (row-framed formats only).
 */
export interface Batch {
  readonly count: number;
  /** The bytes of the first `n` rows. */
  encode(enc: RecordEncoder, n: number): Buffer | null;
  /** What is left after the first `n` rows. */
  rest(n: number): Batch;
}

export function recordBatch(records: ExportRecord[]): Batch {
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
export function encodeSpec(o: ExportWindowOptions, filter: Filter, exclude: Excluded | undefined, vars: RunVars, format: Format): Omit<EncodeSpec, 'dbPath'> {
  return {
    query: { filter, upTo: o.upTo, exclude },
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
export async function* batches(o: ExportWindowOptions, plan: TransformPlan, vars: RunVars, filter: Filter, exclude: Excluded | undefined, warnings: RecordWarnings, format: Format): AsyncGenerator<Batch> {
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
