import type { Destination, WrittenPart } from '../destination/types.js';
import { formatByName } from '../format/index.js';
import type { Format } from '../format/types.js';
import type { RecordWarnings } from '../record/json-cell.js';
import { resolveFilter } from '../source/filter-spec.js';
import type { Filter } from '../source/filter.js';
import type { LogSource, PendingIds, SourcePosition } from '../source/types.js';
import { isoMs } from '../util/time.js';
import type { RunVars } from '../transform/types.js';
import type { ExportJob } from './job.js';
import { renderPrefix, type KeyParts } from './keys.js';
import type { Manifest } from './manifest.js';

export interface WindowSpec {
  /** [start, end): the slot's window, or the ad-hoc --since/--until. */
  readonly start: number;
  readonly end: number;
}

export interface LateSpec {
  /** Deliver only rows inserted after this position… */
  readonly after: SourcePosition;
  /** …plus these rows that were still processing at the last delivery. */
  readonly pendingIds: readonly string[];
  /** The window's manifest so far. */
  readonly previous: Manifest;
}

export interface RestateSpec {
  /** The window's current manifest (the revision being replaced). */
  readonly previous: Manifest;
  readonly revision: number;
  readonly restated: NonNullable<Manifest['restated']>;
}

export interface WindowResult {
  readonly manifest: Manifest;
  readonly manifestKey: string;
  /** Parts written by this run. */
  readonly parts: WrittenPart[];
  readonly rows: number;
  readonly bytes: number;
  readonly warnings: RecordWarnings;
  /** Rows still processing now, re-checked by the next run. */
  readonly pendingIds: PendingIds;
  readonly position: SourcePosition;
}

export interface ExportWindowOptions {
  readonly job: ExportJob;
  readonly source: LogSource;
  readonly dest: Destination;
  readonly window: WindowSpec;
  readonly runId: string;
  /** The snapshot: rows inserted after it wait for the next run. */
  readonly upTo: SourcePosition;
  readonly late?: LateSpec;
  /** A new revision of a delivered window whose rows changed: written whole beside the current one, which it then replaces. */
  readonly restate?: RestateSpec;
  /** The filter without its time range (resolved once per run). */
  readonly baseFilter?: Filter;
  readonly now: number;
  readonly signal?: AbortSignal;
  onRows?(n: number): void;
  onPart?(p: WrittenPart): void;
  /** Detail for --verbose. */
  onVerbose?(msg: string): void;
}

/** The filter of a window: the job's filters, the window, and never `processing` rows. */
export function windowFilter(job: ExportJob, w: WindowSpec, now: number): Filter {
  const f = resolveFilter({ ...job.filterSpec, date_range: undefined, since: undefined, until: undefined }, now, job.timezone);
  return { ...f, start: w.start > 0 ? w.start : undefined, end: w.end, completedOnly: true };
}

/** The format parts are written in: table destinations choose their own load format. */
export function partFormat(job: ExportJob, dest: Destination): { format: Format; gzip: boolean } {
  if (dest.kind === 'table') return { format: formatByName(dest.loadFormat ?? 'jsonl'), gzip: false };
  return { format: job.format, gzip: job.compression === 'gzip' && job.format.wrapsGzip };
}

export function keyParts(job: ExportJob, w: WindowSpec): KeyParts {
  return { prefix: renderPrefix(job.prefixTemplate, job.name, w.start, job.timezone), exportName: job.name, start: w.start, end: w.end };
}

/** The run variables of enrich's `{…}` templates. */
export function runVars(job: ExportJob, w: WindowSpec, runId: string, now: number): RunVars {
  return { export_name: job.name, run_id: runId, window_start: isoMs(w.start), window_end: isoMs(w.end), exported_at: isoMs(now) };
}
