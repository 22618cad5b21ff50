import { parentPort, workerData } from 'node:worker_threads';
import { createRecordMapper } from '../record/mapper.js';
import { createWarnings } from '../record/json-cell.js';
import { selectFields, type ExportRecord } from '../record/fields.js';
import { csvFormat } from '../format/csv.js';
import { jsonlFormat } from '../format/jsonl.js';
import { parquetFormat } from '../format/parquet.js';
import { SqliteSource } from '../source/sqlite/sqlite-source.js';
import { planTransforms } from '../transform/compose.js';
import { CHUNK_ROWIDS, type ChunkReply, type ChunkRequest, type EncodeSpec, type PartReply, type PartRequest } from './parallel-encode.js';

/**
 * An encoding thread of an export: its own read-only connection and the same
 * mapper, transforms and encoder as the main thread would use.
 * - JSONL/CSV: one rowid range per request, answered with its encoded rows.
 * - Parquet: one part per request, read in keyset pages and streamed back a
 *   row group at a time, each waiting for the main thread's ack.
 */
const spec = workerData as EncodeSpec;
const port = parentPort!;
const source = SqliteSource.open(spec.dbPath);
const warnings = createWarnings();
const fields = selectFields({ fields: spec.fields });
const plan = planTransforms(spec.transforms, fields.map(({ name, type, nullable }) => ({ name, type, nullable })), spec.vars, spec.timezone);
const mapper = createRecordMapper(fields, warnings);
const query = { ...spec.query, columns: mapper.columns };

/** Bytes of this thread's own, so the ArrayBuffer can be transferred (small Buffers share Node's pool). */
const own = (b: Buffer | null): Uint8Array => (!b ? new Uint8Array(0) : b.byteOffset === 0 && b.buffer.byteLength === b.length ? b : new Uint8Array(b));
const news = () => {
  const out = { malformed: warnings.malformedJson, samples: warnings.samples.splice(0) };
  warnings.malformedJson = 0;
  return out;
};

if (spec.format === 'parquet') {
  // The same short rowid-range statements as the JSONL/CSV threads, in order.
  const [lo, hi] = spec.span!;
  let at = lo;
  let left: ExportRecord[] = [];
  let acked: (() => void) | null = null;
  const nextRecords = async (): Promise<ExportRecord[] | null> => {
    while (!left.length) {
      if (at >= hi) return null;
      const to = Math.min(hi, at + CHUNK_ROWIDS);
      left = plan.apply(mapper.map(source.readRange(query, at, to)));
      at = to;
    }
    return left;
  };
  const send = async (m: PartReply, wait: boolean) => {
    if (m.type === 'bytes' || m.type === 'end') port.postMessage(m, [m.bytes.buffer as ArrayBuffer]);
    else port.postMessage(m);
    if (wait) await new Promise<void>((r) => { acked = r; });
  };
  const part = async (m: PartRequest) => {
    if (!(await nextRecords())) return send({ type: 'none' }, false);
    const enc = parquetFormat.createEncoder(plan.schema, m.opts);
    let head: Buffer | null = enc.push([]);
    let rows = 0;
    while (rows < m.maxRows) {
      const recs = await nextRecords();
      if (!recs) break;
      const take = Math.min(recs.length, m.maxRows - rows);
      let b = enc.push(take === recs.length ? recs : recs.slice(0, take));
      left = take === recs.length ? [] : recs.slice(take);
      rows += take;
      if (head) { b = b ? Buffer.concat([head, b]) : head; head = null; }
      await send({ type: 'bytes', rows: take, bytes: own(b), ...news() }, !!b);
    }
    const tail = enc.finish();
    await send({ type: 'end', rows: 0, bytes: own(head ? Buffer.concat([head, tail ?? Buffer.alloc(0)]) : tail), ...news() }, false);
  };
  port.on('message', (m: PartRequest | { cmd: 'ack' }) => {
    if (m.cmd === 'ack') { const a = acked; acked = null; a?.(); return; }
    part(m).catch((err: Error) => port.postMessage({ type: 'error', error: err.message } satisfies PartReply));
  });
} else {
  const encoder = (spec.format === 'csv' ? csvFormat : jsonlFormat).createEncoder(plan.schema, { formulaGuard: spec.formulaGuard, header: false });
  port.on('message', (m: ChunkRequest) => {
    try {
      const records = plan.apply(mapper.map(source.readRange(query, m.lo, m.hi)));
      const bytes = own(records.length ? encoder.push(records) : null);
      port.postMessage({ seq: m.seq, rows: records.length, bytes, ...news() } satisfies ChunkReply, [bytes.buffer as ArrayBuffer]);
    } catch (err) {
      port.postMessage({ seq: m.seq, error: (err as Error).message } satisfies ChunkReply);
    }
  });
}
