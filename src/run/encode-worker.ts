import { constants, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { createRecordMapper } from '../record/mapper.js';
import { createWarnings } from '../record/json-cell.js';
import { resolveFields } from '../record/select.js';
import { csvFormat } from '../format/csv.js';
import { jsonlFormat } from '../format/jsonl.js';
import { SqliteSource } from '../source/sqlite/sqlite-source.js';
import { planTransforms } from '../transform/compose.js';
import type { ChunkReply, ChunkRequest, EncodeSpec, GroupReply, GroupRequest } from './parallel-encode.js';
import { serializeError } from '../errors.js';

/**
 * An encoding thread of an export: its own read-only connection and the same
 * mapper, transforms and encoder as the main thread would use.
 * - JSONL/CSV: one rowid range per request, answered with its encoded rows.
 * - Parquet: one rowid range per request, answered with its row group.
 */
// Below normal priority (this thread only, on Linux): when the gateway needs the CPU, encoding waits for it.
try { setPriority(constants.priority.PRIORITY_BELOW_NORMAL); } catch { /* not permitted here: run at normal priority */ }
const spec = workerData as EncodeSpec;
const port = parentPort!;
const source = SqliteSource.open(spec.dbPath, spec.table);
const warnings = createWarnings();
const fields = resolveFields({ fields: spec.fields }, spec.table);
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
  // Row groups of one rowid range per request, read in the same short range statements as the JSONL/CSV threads.
  // (Loaded here only: a JSONL/CSV thread starts sooner without the Parquet writer.)
  const { createRowGroupEncoder } = await import('../format/parquet.js');
  const { CHUNK_ROWIDS } = await import('./parallel-encode.js');
  port.on('message', (m: GroupRequest) => {
    try {
      const enc = createRowGroupEncoder(plan.schema, spec.compression);
      let rows = 0;
      let next = m.hi;
      for (let at = m.lo; at < m.hi;) {
        if (rows >= m.limit) { next = at; break; }
        const to = Math.min(m.hi, at + CHUNK_ROWIDS);
        let page = source.readRange(query, at, to);
        if (page.rows.length > m.limit - rows) {
          // The limit falls inside this range: stop after the last row taken.
          page = { columns: page.columns, rows: page.rows.slice(0, m.limit - rows) };
          next = page.rows[page.rows.length - 1]![page.columns.indexOf('__pos')] as number;
          at = m.hi;
        } else at = to;
        enc.add(plan.apply(mapper.map(page)));
        rows += page.rows.length;
      }
      const groups = enc.finish();
      // A group's ArrayBuffer holds only the group (after the 4-byte magic): it is sent whole.
      for (const g of groups) if (g.bytes.buffer.byteLength - g.bytes.byteLength > 4) g.bytes = new Uint8Array(g.bytes);
      port.postMessage({ seq: m.seq, rows, next, groups, ...news() } satisfies GroupReply, groups.map((g) => g.bytes.buffer as ArrayBuffer));
    } catch (err) {
      port.postMessage({ seq: m.seq, error: serializeError(err) } satisfies GroupReply);
    }
  });
} else {
  const format = spec.format === 'csv' ? csvFormat : jsonlFormat;
  const opts = { formulaGuard: spec.formulaGuard, header: false };
  // Without transforms, rows go straight from the reader's arrays to bytes (CSV, JSONL).
  const writer = plan.transforms.length ? null : format.createRowWriter?.(plan.schema, opts) ?? null;
  const encoder = writer ? null : format.createEncoder(plan.schema, opts);
  port.on('message', (m: ChunkRequest) => {
    try {
      const page = source.readRange(query, m.lo, m.hi);
      let rows: number;
      let out: Buffer | null;
      if (writer) {
        rows = page.rows.length;
        out = writer.push(page.rows, mapper.cells(page.columns));
      } else {
        const records = plan.apply(mapper.map(page));
        rows = records.length;
        out = rows ? encoder!.push(records) : null;
      }
      const bytes = own(out);
      port.postMessage({ seq: m.seq, rows, bytes, ...news() } satisfies ChunkReply, [bytes.buffer as ArrayBuffer]);
    } catch (err) {
      port.postMessage({ seq: m.seq, error: serializeError(err) } satisfies ChunkReply);
    }
  });
}
