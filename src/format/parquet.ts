import { gzipSync } from 'node:zlib';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { ExportRecord, FieldType, RecordSchema } from '../record/fields.js';
import { PARQUET_INFO } from './parquet-info.js';
import type { EncoderOptions, Format } from './types.js';

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

type Compression = EncoderOptions['compression'];

/**
 * A row group is cut at 50,000 rows or at about this many bytes of values,
 * whichever comes first, so rows with large payloads cannot make one group
 * (and the memory that buffers it) grow without bound.
 */
export const ROW_GROUP_BYTES = 16 << 20;

function createWriter(schema: RecordSchema, writer: ByteWriter, compression: Compression, metadata?: Record<string, string>): ParquetWriter {
  return new ParquetWriter({
    writer,
    schema: [{ name: 'root', num_children: schema.length }, ...schema.map((f) => element(f.name, f.type, f.nullable))] as any,
    codec: compression === 'gzip' ? 'GZIP' : 'SNAPPY',
    compressors: { GZIP: (b: Uint8Array) => new Uint8Array(gzipSync(b)) },
    statistics: true,
    createdBy: 'bifrost-logs',
    kvMetadata: Object.entries(metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
}

/** Records buffered column by column, each value converted to its Parquet physical type. */
class Columns {
  private readonly names: string[];
  private readonly convs: Array<(v: unknown) => unknown>;
  private cols: unknown[][];
  rows = 0;
  /** About how many bytes the buffered values hold. */
  bytes = 0;

  constructor(schema: RecordSchema) {
    this.names = schema.map((f) => f.name);
    this.convs = schema.map((f) => {
      switch (f.type) {
        case 'timestamp': return (v: unknown) => (v === null || v === undefined ? null : BigInt(typeof v === 'number' ? v : Date.parse(String(v))));
        case 'int64': return (v: unknown) => (v === null || v === undefined ? null : BigInt(Math.round(Number(v))));
        case 'json': return (v: unknown) => (v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v));
        case 'string': return (v: unknown) => (v === null || v === undefined ? null : String(v));
        default: return (v: unknown) => (v === undefined ? null : v);
      }
    });
    this.cols = this.names.map(() => []);
  }

  add(r: ExportRecord): void {
    const { names, convs, cols } = this;
    let bytes = 0;
    for (let i = 0; i < names.length; i++) {
      const v = convs[i]!(r[names[i]!]);
      bytes += typeof v === 'string' ? v.length : 8;
      cols[i]!.push(v);
    }
    this.bytes += bytes;
    this.rows++;
  }

  /** Writes the buffered rows as one row group and empties the buffer. */
  writeGroup(pw: ParquetWriter): void {
    if (!this.rows) return;
    pw.write({ columnData: this.names.map((name, i) => ({ name, data: this.cols[i]! })) as any, rowGroupSize: this.rows });
    this.cols = this.names.map(() => []);
    this.rows = 0;
    this.bytes = 0;
  }
}

/** Columnar Parquet, one row group buffered at a time. JSON columns are UTF8 JSON text. */
export const parquetFormat: Format = {
  ...PARQUET_INFO,
  createEncoder(schema, opts) {
    const rowGroupRows = opts.rowGroupRows ?? 50_000;
    const writer = new ChunkWriter(1 << 20);
    const pw = createWriter(schema, writer, opts.compression, opts.metadata);
    const cols = new Columns(schema);
    return {
      push(records) {
        for (const r of records) {
          cols.add(r);
          if (cols.rows >= rowGroupRows || cols.bytes >= ROW_GROUP_BYTES) cols.writeGroup(pw);
        }
        return writer.take();
      },
      finish() {
        cols.writeGroup(pw);
        pw.finish();
        return writer.take();
      },
    };
  },
};

/** A row group encoded apart from its file: its bytes and metadata, offsets counted from byte 4 (after `PAR1`). */
export interface EncodedRowGroup {
  rows: number;
  bytes: Uint8Array;
  /** hyparquet's RowGroup and PageIndexes, as plain data (they cross threads by structured clone). */
  meta: { group: any; indexes: any[] };
}

/**
 * Encodes records into row groups on their own, each cut at ROW_GROUP_BYTES
 * of values: the half of a parallel Parquet export that runs on an encoding
 * thread. `ParquetAssembler` places the groups in a file.
 */
export function createRowGroupEncoder(schema: RecordSchema, compression: Compression): { add(records: readonly ExportRecord[]): void; finish(): EncodedRowGroup[] } {
  const cols = new Columns(schema);
  const groups: EncodedRowGroup[] = [];
  const cut = () => {
    if (!cols.rows) return;
    const rows = cols.rows;
    const writer = new ChunkWriter(1 << 20);
    const pw = createWriter(schema, writer, compression);
    cols.writeGroup(pw);
    groups.push({ rows, bytes: writer.take()!.subarray(4), meta: { group: pw.row_groups[0], indexes: pw.pendingIndexes } });
  };
  return {
    add(records) {
      for (const r of records) {
        cols.add(r);
        if (cols.bytes >= ROW_GROUP_BYTES) cut();
      }
    },
    finish() {
      cut();
      return groups;
    },
  };
}

/**
 * Writes a Parquet file from row groups encoded elsewhere, in order: each
 * group's offsets are moved to where its bytes land, and the footer (page
 * indexes, metadata) is written by the same ParquetWriter as a whole-file
 * export uses, so both paths produce the same structure.
 */
export class ParquetAssembler {
  private readonly writer = new ChunkWriter(1 << 16);
  private readonly pw: ParquetWriter;

  constructor(schema: RecordSchema, opts: EncoderOptions) {
    this.pw = createWriter(schema, this.writer, opts.compression, opts.metadata);
  }

  /** The file's opening magic. */
  head(): Buffer {
    return this.writer.take()!;
  }

  /** The group's bytes, to be written next; its metadata is kept for the footer. */
  add(g: EncodedRowGroup): Buffer {
    const delta = BigInt(this.writer.offset - 4);
    const { group, indexes } = g.meta;
    for (const c of group.columns) {
      c.file_offset += delta;
      const m = c.meta_data;
      if (m) {
        m.data_page_offset += delta;
        if (m.dictionary_page_offset !== undefined) m.dictionary_page_offset += delta;
        if (m.index_page_offset !== undefined) m.index_page_offset += delta;
      }
    }
    for (const ix of indexes) for (const p of ix.offsetIndex?.page_locations ?? []) p.offset += delta;
    this.pw.row_groups.push(group);
    this.pw.pendingIndexes.push(...indexes);
    this.pw.num_rows += group.num_rows;
    this.writer.offset += g.bytes.byteLength;
    return Buffer.from(g.bytes.buffer, g.bytes.byteOffset, g.bytes.byteLength);
  }

  /** Page indexes, metadata and the closing magic. */
  finish(): Buffer {
    this.pw.finish();
    return this.writer.take()!;
  }
}
