import { gzipSync } from 'node:zlib';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { FieldType } from '../record/fields.js';
import type { Format } from './types.js';

/** A ByteWriter that hands each flushed row group out instead of growing forever. */
class ChunkWriter extends ByteWriter {
  chunks: Buffer[] = [];
  flush(): void {
    if (this.index > 0) {
      this.chunks.push(Buffer.from(this.buffer.slice(0, this.index)));
      this.index = 0;
    }
  }
  override finish(): void {
    this.flush();
  }
  take(): Buffer | null {
    this.flush();
    if (!this.chunks.length) return null;
    const b = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    return b;
  }
}

function element(name: string, type: FieldType, nullable: boolean): Record<string, unknown> {
  const repetition_type = nullable ? 'OPTIONAL' : 'REQUIRED';
  switch (type) {
    case 'timestamp': return { name, repetition_type, type: 'INT64', converted_type: 'TIMESTAMP_MILLIS', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' } };
    case 'int32': return { name, repetition_type, type: 'INT32' };
    case 'int64': return { name, repetition_type, type: 'INT64' };
    case 'double': return { name, repetition_type, type: 'DOUBLE' };
    case 'bool': return { name, repetition_type, type: 'BOOLEAN' };
    default: return { name, repetition_type, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } };
  }
}

/** Columnar Parquet, one row group buffered at a time. JSON columns are UTF8 JSON text. */
export const parquetFormat: Format = {
  name: 'parquet',
  extension: 'parquet',
  contentType: 'application/vnd.apache.parquet',
  wrapsGzip: false,
  createEncoder(schema, opts) {
    const rowGroupRows = opts.rowGroupRows ?? 50_000;
    const writer = new ChunkWriter(1 << 20);
    const pw = new ParquetWriter({
      writer,
      schema: [{ name: 'root', num_children: schema.length }, ...schema.map((f) => element(f.name, f.type, f.nullable))] as any,
      codec: opts.compression === 'gzip' ? 'GZIP' : 'SNAPPY',
      compressors: { GZIP: (b: Uint8Array) => new Uint8Array(gzipSync(b)) },
      statistics: true,
      createdBy: 'bifrost-logs',
      kvMetadata: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    });
    const names = schema.map((f) => f.name);
    const convs = schema.map((f) => {
      switch (f.type) {
        case 'timestamp': return (v: unknown) => (v === null || v === undefined ? null : BigInt(typeof v === 'number' ? v : Date.parse(String(v))));
        case 'int64': return (v: unknown) => (v === null || v === undefined ? null : BigInt(Math.round(Number(v))));
        case 'json': return (v: unknown) => (v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v));
        case 'string': return (v: unknown) => (v === null || v === undefined ? null : String(v));
        default: return (v: unknown) => (v === undefined ? null : v);
      }
    });
    let cols: unknown[][] = names.map(() => []);
    let buffered = 0;
    const flushGroup = () => {
      if (!buffered) return;
      pw.write({ columnData: names.map((name, i) => ({ name, data: cols[i]! })) as any, rowGroupSize: buffered });
      cols = names.map(() => []);
      buffered = 0;
    };
    return {
      push(records) {
        for (const r of records) {
          for (let i = 0; i < names.length; i++) cols[i]!.push(convs[i]!(r[names[i]!]));
          if (++buffered >= rowGroupRows) flushGroup();
        }
        return writer.take();
      },
      finish() {
        flushGroup();
        pw.finish();
        return writer.take();
      },
    };
  },
};
