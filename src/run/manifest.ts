import type { RecordSchema } from '../record/fields.js';
import { describeFilter } from '../source/filter-spec.js';
import type { Filter } from '../source/filter.js';
import type { SourcePosition } from '../source/types.js';
import type { WrittenPart } from '../destination/types.js';
import { isoMs } from '../util/time.js';
import { VERSION } from '../version.js';
import type { ExportJob } from './job.js';

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
  /** Values the export had to change, by kind: `malformed_json` (kept as text), and what a warehouse changed to fit (`nul_replaced`, `text_truncated`). */
  warnings: { malformed_json: number } & Record<string, number>;
}

/** What a window's delivery knows when its parts are written. */
export interface ManifestInput {
  readonly job: ExportJob;
  readonly window: { start: number; end: number };
  readonly runId: string;
  readonly revision: number;
  /** A late run: the window's manifest so far (its files stay, the new ones are added). */
  readonly late?: Manifest;
  /** A restatement: the revision replaced, and what changed. */
  readonly restate?: { previous: Manifest; restated: NonNullable<Manifest['restated']> };
  /** Aggregated windows are re-delivered whole. */
  readonly aggregated: boolean;
  /** The parts this run wrote. */
  readonly parts: readonly WrittenPart[];
  readonly source: { dialect: string; position: SourcePosition; pendingIds: number };
  /** The parts' format, and whether they are gzipped as files. */
  readonly format: string;
  readonly gzip: boolean;
  readonly destination: string;
  readonly schema: RecordSchema;
  readonly filter: Filter;
  readonly transformations: Record<string, unknown>[];
  readonly malformedJson: number;
}

/** The manifest of a window after this run: the window's files so far, the run's parts, and how they were made. */
export function buildManifest(i: ManifestInput): Manifest {
  const { job, late: prev } = i;
  const nowIso = isoMs(Date.now());
  const files = [
    ...(prev && !i.aggregated ? prev.files : []),
    ...i.parts.map((p) => ({ ...p, run_id: i.runId, written_at: nowIso })),
  ];
  return {
    manifest_version: 1,
    tool: { name: 'bifrost-logs', version: VERSION },
    export: job.name,
    run_id: prev?.run_id ?? i.runId,
    revision: i.revision,
    ...(i.restate ? { restated: i.restate.restated } : prev?.restated ? { restated: prev.restated } : {}),
    window: { start: isoMs(i.window.start), end: isoMs(i.window.end) },
    created_at: prev?.created_at ?? i.restate?.previous.created_at ?? nowIso,
    updated_at: nowIso,
    source: { dialect: i.source.dialect, table: job.table, position: i.source.position, pending_ids: i.source.pendingIds },
    format: i.format,
    compression: i.gzip ? 'gzip' : job.format.name === 'parquet' && job.compression === 'gzip' ? 'gzip' : 'none',
    destination: i.destination,
    rows: files.reduce((a, f) => a + f.rows, 0),
    bytes: files.reduce((a, f) => a + f.bytes, 0),
    files,
    schema: i.schema,
    filters: describeFilter(i.filter),
    transformations: i.transformations,
    redaction_policy: {
      redaction_mapping: 'never exported',
      content_hidden: 'content fields exported as null',
      offloaded_payloads: 'content_state = offloaded, content fields null',
      raw_payloads: 'only when named in fields; API keys and Authorization values scrubbed',
      csv_formula_guard: i.format === 'csv' ? job.formulaGuard : false,
    },
    warnings: { ...prev?.warnings, malformed_json: (prev?.warnings.malformed_json ?? 0) + i.malformedJson },
  };
}

/** Adds what a destination changed while committing (a late part's counts add to the window's). */
export function addCommitWarnings(m: Manifest, add: Readonly<Record<string, number>> | undefined): void {
  for (const [k, v] of Object.entries(add ?? {})) m.warnings[k] = (m.warnings[k] ?? 0) + v;
}
