import type { ExportRecord, RecordSchema } from '../record/fields.js';

/**
 * Turns records into bytes. `push` and `finish` return whatever bytes are
 * ready (possibly none): a Parquet encoder holds at most one row group.
 */
export interface RecordEncoder {
  push(records: readonly ExportRecord[]): Buffer | null;
  finish(): Buffer | null;
}

export interface Format {
  readonly name: 'jsonl' | 'json' | 'csv' | 'parquet';
  readonly extension: string;
  readonly contentType: string;
  /** Whether --gzip wraps the file (Parquet compresses inside instead). */
  readonly wrapsGzip: boolean;
  createEncoder(schema: RecordSchema, opts: EncoderOptions): RecordEncoder;
}

export interface EncoderOptions {
  /** CSV: neutralise cells that a spreadsheet would run as a formula. */
  formulaGuard?: boolean;
  /** Parquet: internal codec. */
  compression?: 'none' | 'gzip';
  /** Parquet: rows per row group. */
  rowGroupRows?: number;
  /** Parquet: key/value metadata. */
  metadata?: Record<string, string>;
}
