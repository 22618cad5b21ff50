import { parentPort, workerData } from 'node:worker_threads';
import { createRecordMapper } from '../record/mapper.js';
import { createWarnings } from '../record/json-cell.js';
import { selectFields } from '../record/fields.js';
import { csvFormat } from '../format/csv.js';
import { jsonlFormat } from '../format/jsonl.js';
import { SqliteSource } from '../source/sqlite/sqlite-source.js';
import { planTransforms } from '../transform/compose.js';
import type { ChunkReply, ChunkRequest, EncodeSpec } from './parallel-encode.js';

/**
 * One encoding thread of a parallel export: its own read-only connection,
 * the same mapper, transforms and encoder as the main thread, one rowid
 * range per request.
 */
const spec = workerData as EncodeSpec;
const port = parentPort!;
const source = SqliteSource.open(spec.dbPath);
const warnings = createWarnings();
const fields = selectFields({ fields: spec.fields });
const plan = planTransforms(spec.transforms, fields.map(({ name, type, nullable }) => ({ name, type, nullable })), spec.vars, spec.timezone);
const mapper = createRecordMapper(fields, warnings);
const encoder = (spec.format === 'csv' ? csvFormat : jsonlFormat).createEncoder(plan.schema, { formulaGuard: spec.formulaGuard, header: false });
const query = { ...spec.query, columns: mapper.columns };

port.on('message', (m: ChunkRequest | null) => {
  if (m === null) {
    void source.close();
    port.close();
    return;
  }
  let reply: ChunkReply;
  try {
    const before = warnings.malformedJson;
    const records = plan.apply(mapper.map(source.readRange(query, m.lo, m.hi)));
    const out = records.length ? encoder.push(records) : null;
    // A small Buffer may share Node's pool; only a buffer of its own can be transferred.
    const bytes = !out ? new Uint8Array(0) : out.byteOffset === 0 && out.buffer.byteLength === out.length ? out : new Uint8Array(out);
    reply = { seq: m.seq, rows: records.length, bytes, malformed: warnings.malformedJson - before, samples: warnings.samples.splice(0) };
    port.postMessage(reply, [bytes.buffer as ArrayBuffer]);
  } catch (err) {
    reply = { seq: m.seq, error: (err as Error).message };
    port.postMessage(reply);
  }
});
