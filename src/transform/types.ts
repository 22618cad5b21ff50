import type { ExportRecord, RecordSchema } from '../record/fields.js';

/** A per-record transformation; it may change the schema (drop, redact, enrich). */
export interface RecordTransform {
  readonly description: Record<string, unknown>;
  schema(input: RecordSchema): RecordSchema;
  /** Transforms records in place and returns them. */
  apply(records: ExportRecord[]): ExportRecord[];
}

/** Values known once a window starts, for enrich's `{…}` run variables. */
export interface RunVars {
  export_name: string;
  run_id: string;
  window_start: string;
  window_end: string;
  exported_at: string;
}
