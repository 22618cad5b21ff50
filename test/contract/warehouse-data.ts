import { gunzipSync } from 'node:zlib';
import { parquetReadObjects } from 'hyparquet';
import { formatByName } from '../../src/format/index.js';
import { parquetFormat } from '../../src/format/parquet.js';
import type { RecordSchema } from '../../src/record/fields.js';
import type { CommitResult, Destination, WrittenPart } from '../../src/destination/types.js';

/**
 * The data every warehouse suite delivers, and the driver that delivers it as
 * run/export-window does. No SDK is loaded here.
 */

export const HOUR = 3_600_000;
export const W1 = { start: Date.UTC(2026, 9, 1, 0), end: Date.UTC(2026, 9, 1, 1) };
export const W2 = { start: W1.end, end: W1.end + HOUR };
export const W3 = { start: W2.end, end: W2.end + HOUR };

export const SCHEMA: RecordSchema = [
  { name: 'timestamp', type: 'timestamp', nullable: false },
  { name: 'request_id', type: 'string', nullable: true },
  { name: 'provider', type: 'string', nullable: true },
  { name: 'status_code', type: 'int32', nullable: true },
  { name: 'input_tokens', type: 'int32', nullable: true },
  { name: 'bytes_total', type: 'int64', nullable: true },
  { name: 'cost_usd', type: 'double', nullable: true },
  { name: 'stream', type: 'bool', nullable: true },
  { name: 'params', type: 'json', nullable: true },
  { name: 'content_summary', type: 'string', nullable: true },
];

export const TRICKY = 'he said "hi", \\ back\\slash\ttab\nnew line; ctrl \u0001\u0002 unicode 日本 ✓ \' quote';
/** TRICKY for the SQL warehouses, whose JSON must keep a literal `\\u0000` apart from a NUL. */
export const TRICKY_NUL = `${TRICKY}, a literal \\u0000 (not a NUL)`;

export type Rec = Record<string, unknown>;

/**
 * Records over a window. `nul` adds NUL characters (in a string and inside
 * JSON) and a literal `\\u0000` to the tricky text, for the SQL warehouses.
 */
export function records(tag: string, n: number, w: { start: number; end: number }, opts: { nul?: boolean } = {}): Rec[] {
  const tricky = opts.nul ? TRICKY_NUL : TRICKY;
  const step = Math.floor((w.end - w.start) / (n + 1));
  return Array.from({ length: n }, (_, i) => ({
    timestamp: new Date(w.start + (i + 1) * step + (i % 7)).toISOString(),
    request_id: `${tag}-${String(i).padStart(4, '0')}`,
    provider: ['openai', 'anthropic', 'bedrock'][i % 3],
    status_code: i % 9 === 0 ? null : i % 4 === 0 ? 500 : 200,
    input_tokens: 100 + i * 7,
    bytes_total: 2 ** 40 + i,
    cost_usd: i % 5 === 0 ? null : Math.round((0.0013 * i + 0.00001) * 1e8) / 1e8,
    stream: i % 3 === 0 ? null : i % 2 === 0,
    params: i % 6 === 0 ? null : { temperature: 0.5, nested: { q: tricky, arr: [1, 'two', { three: 3 }], ...(opts.nul ? { z: i === 2 ? 'x\u0000y' : 'z' } : {}) }, i },
    content_summary: i === 1 ? tricky : opts.nul && i === 2 ? 'nul\u0000here' : i % 8 === 0 ? null : `summary ${i}`,
  }));
}

/** A part's bytes, as run/export-window encodes them for this destination. */
export function encode(format: 'jsonl' | 'parquet', schema: RecordSchema, rs: Rec[]): Buffer {
  const enc = (format === 'parquet' ? parquetFormat : formatByName(format)).createEncoder(schema, { compression: 'none', metadata: { 'bifrost-logs.export': 'test' } });
  return Buffer.concat([enc.push(rs) ?? Buffer.alloc(0), enc.finish() ?? Buffer.alloc(0)]);
}

/** Rows of a staged/uploaded part, decoded independently of the product code. */
export async function decodePart(buf: Buffer): Promise<Rec[]> {
  if (buf.subarray(0, 4).toString() === 'PAR1') {
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    return (await parquetReadObjects({ file: ab, compressors: { GZIP: (b: Uint8Array) => new Uint8Array(gunzipSync(b)) } })) as Rec[];
  }
  return buf.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Rec);
}

export interface Delivery {
  window: { start: number; end: number };
  /** Records, encoded as the destination loads them, or raw bytes (malformed input). */
  parts: (Rec[] | Buffer)[];
  late?: boolean;
  aggregated?: boolean;
  schema?: RecordSchema;
}

let keySeq = 0;
/** Drives a destination as run/export-window does: parts (streamed in small chunks), then the commit. */
export async function deliver(dest: Destination, d: Delivery): Promise<CommitResult | void> {
  const schema = d.schema ?? SCHEMA;
  const kind = d.late ? 'late' : 'part';
  const format = dest.loadFormat ?? 'jsonl';
  const written: WrittenPart[] = [];
  for (const p of d.parts) {
    const key = `exp/test_${d.window.start}_${kind}-${++keySeq}.${format}`;
    const buf = Buffer.isBuffer(p) ? p : encode(format, schema, p);
    const up = await dest.openPart({ key, kind, format, contentType: 'application/octet-stream', schema });
    try {
      for (let i = 0; i < buf.length; i += 777) await up.write(buf.subarray(i, i + 777));
      await up.finish();
    } catch (err) {
      await up.abort();
      throw err;
    }
    written.push({ key, kind, rows: Buffer.isBuffer(p) ? 0 : p.length, bytes: buf.length, sha256: '' });
  }
  return dest.commit({
    exportName: 'test', window: d.window, manifestKey: 'exp/test.manifest.json', manifestBytes: Buffer.from('{}'),
    parts: written, late: !!d.late, schema, aggregated: !!d.aggregated,
  });
}

export const silentLog = { info() {}, warn() {}, verbose() {}, isVerbose: false, isQuiet: true };

/** An aggregated window: its schema, and rows scaled by k (k differs between re-deliveries). */
export const AGG_SCHEMA: RecordSchema = [
  { name: 'provider', type: 'string', nullable: true },
  { name: 'total_requests', type: 'int64', nullable: false },
  { name: 'total_cost', type: 'double', nullable: true },
];
export const aggRows = (k: number): Rec[] => [
  { provider: 'openai', total_requests: 10 * k, total_cost: 1.5 * k },
  { provider: 'anthropic', total_requests: 3 * k, total_cost: null },
];
