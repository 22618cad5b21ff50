import type { RecordSchema } from '../record/fields.js';
import type { SourcePosition } from '../source/types.js';
import type { WrittenPart } from '../destination/types.js';

/** The manifest of one delivered window: written last, it is the proof of delivery. */
export interface Manifest {
  manifest_version: 1;
  tool: { name: 'bifrost-logs'; version: string };
  export: string;
  run_id: string;
  /** The window's revision: 1 when first delivered, +1 each time changed rows restate it. Absent in older manifests (1). */
  revision?: number;
  /** For a revision after the first: the fingerprints before and after, and the run that restated it. */
  restated?: { from_revision: number; run_id: string; rows_before: number; rows_now: number; cost_before: number; cost_now: number; tokens_before: number; tokens_now: number };
  window: { start: string; end: string };
  created_at: string;
  updated_at: string;
  /** `table`: the log table read (`logs` or `mcp_tool_logs`). */
  source: { dialect: string; table: string; position: SourcePosition; pending_ids: number };
  format: string;
  compression: 'none' | 'gzip';
  destination: string;
  rows: number;
  bytes: number;
  files: Array<WrittenPart & { run_id: string; written_at: string }>;
  schema: RecordSchema;
  filters: Record<string, unknown>;
  transformations: Record<string, unknown>[];
  redaction_policy: {
    redaction_mapping: 'never exported';
    content_hidden: 'content fields exported as null';
    offloaded_payloads: 'content_state = offloaded, content fields null';
    raw_payloads: 'only when named in fields; API keys and Authorization values scrubbed';
    csv_formula_guard: boolean;
  };
  warnings: { malformed_json: number };
}
