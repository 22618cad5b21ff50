import type { ExportRecord, RecordSchema } from '../record/fields.js';
import type { Cell } from '../record/mapper.js';

/**
 * Turns records into bytes. `push` and `finish` return whatever bytes are
 * ready (possibly none): a Parquet encoder holds at most one row group.
 */
export interface RecordEncoder {
  push(records: readonly ExportRecord[]): Buffer | null;
  finish(): Buffer | null;
}

/**
 * Writes rows straight from a reader's row arrays, without building records:
 * `cells` gives each field's value of a row, in schema order. The bytes equal
 * what `createEncoder` writes for the same records (rows only, no header).
 */
export interface RowWriter {
  push(rows: readonly unknown[][], cells: readonly Cell[]): Buffer | null;
}

export interface Format {
  readonly name: 'jsonl' | 'json' | 'csv' | 'parquet' | 'report';
  readonly extension: string;
  readonly contentType: string;
  /** Whether --gzip wraps the file (Parquet compresses inside instead). */
  readonly wrapsGzip: boolean;
  /** Loads what the encoder needs, where that is heavy (Parquet); call before `createEncoder`. */
  ready?(): Promise<void>;
  createEncoder(schema: RecordSchema, opts: EncoderOptions): RecordEncoder;
  /** The fast path of an export without transforms (see RowWriter). */
  createRowWriter?(schema: RecordSchema, opts: EncoderOptions): RowWriter;
  /**
   * Row-framed formats (each record its own run of bytes, no separators):
   * the byte offset just past the `n`-th record of an encoded run of
   * records, for cutting pre-encoded bytes at a part boundary.
   */
  rowEnd?(bytes: Uint8Array, n: number): number;
}

export interface EncoderOptions {
  /** CSV: neutralise cells that a spreadsheet would run as a formula. */
  formulaGuard?: boolean;
  /** CSV: write the header row (default). Encoding threads encode rows only. */
  header?: boolean;
  /** Parquet: internal codec. */
  compression?: 'none' | 'gzip';
  /** Parquet: rows per row group. */
  rowGroupRows?: number;
  /** Parquet: key/value metadata. */
  metadata?: Record<string, string>;
}
