import { configError } from '../errors.js';
import { formatByName } from '../format/index.js';
import type { Format } from '../format/types.js';
import { resolveFields } from '../record/select.js';
import type { FieldDef } from '../record/fields.js';
import type { FilterSpec } from '../source/filter-spec.js';
import type { ExportConfig, LogExportsConfig, TransformConfig } from '../config/schema.js';
import { DESTINATION_MODULES, DESTINATION_SCHEMAS, destinationModule, type DestinationType } from '../destination/index.js';
import { rememberSecret, resolveEnvDeep, resolveEnvRef } from '../util/env-ref.js';
import { parseTimeArg } from '../util/time.js';
import { validatePrefix } from './keys.js';
import { formatIssues } from '../config/load.js';
import { planTransforms } from '../transform/compose.js';
import { ConfigProblems } from '../errors.js';

export interface Schedule {
  frequency: 'hourly' | 'daily' | 'weekly' | 'monthly';
  time: string;
  timezone: string;
  day?: string | number;
}

/** A fully resolved, frozen export: what run/ executes. Secrets are resolved here and nowhere else. */
export interface ExportJob {
  readonly name: string;
  readonly enabled: boolean;
  readonly format: Format;
  readonly compression: 'none' | 'gzip';
  readonly fields: readonly FieldDef[];
  readonly include?: readonly string[];
  readonly filterSpec: FilterSpec;
  readonly transforms: readonly TransformConfig[];
  readonly maxRowsPerFile: number;
  readonly formulaGuard: boolean;
  readonly destType: DestinationType;
  /** Resolved destination config (holds secrets: never log or persist it). */
  readonly destConfig: Record<string, unknown>;
  readonly prefixTemplate: string;
  readonly schedule?: Schedule;
  readonly timezone: string;
  readonly backfillFrom?: number;
  /** An absolute date_range makes the export a one-off backfill over it. */
  readonly oneOff?: { start: number; end: number };
  readonly settleLagMs: number;
  /** Delivered windows younger than this are checked for changed rows each run (0: never). */
  readonly restateLookbackMs: number;
  readonly lockTimeoutMs: number;
}

export const DEFAULT_SETTLE_LAG_SECS = 600;
export const DEFAULT_RESTATE_LOOKBACK_SECS = 7 * 86400;
export const DEFAULT_LOCK_TIMEOUT_SECS = 6 * 3600;
export const DEFAULT_MAX_ROWS_PER_FILE = 1_000_000;
const SECRET_KEY = /(secret|password|key|token|connection_string|sas)/i;

function rememberSecrets(v: unknown, key = ''): void {
  if (typeof v === 'string') { if (SECRET_KEY.test(key)) rememberSecret(v); return; }
  if (Array.isArray(v)) { v.forEach((x) => rememberSecrets(x, key)); return; }
  if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) rememberSecrets(x, k);
}

export interface JobOverrides {
  format?: string;
  gzip?: boolean;
  include?: string[];
  fields?: string[];
  filters?: FilterSpec;
  transforms?: TransformConfig[];
  destType?: DestinationType;
  destConfig?: Record<string, unknown>;
  maxRowsPerFile?: number;
  formulaGuard?: boolean;
  prefix?: string;
  /** --tz: the zone for dates, today/yesterday and date buckets (else the schedule's zone, else UTC). */
  timezone?: string;
}

/** Resolves one configured export (plus flag overrides) into a job. */
export function buildJob(e: ExportConfig, le: Pick<LogExportsConfig, 'settle_lag_secs' | 'lock_timeout_secs' | 'restate_lookback_secs'> | undefined, at: string, o: JobOverrides = {}, env: NodeJS.ProcessEnv = process.env): ExportJob {
  const destType = (o.destType ?? e.destination.type) as DestinationType;
  const baseConfig = o.destType && o.destType !== e.destination.type ? {} : ((e.destination as { config?: Record<string, unknown> }).config ?? {});
  const merged: Record<string, unknown> = { ...baseConfig, ...(o.destConfig ?? {}) };
  if (o.prefix !== undefined) merged.prefix = o.prefix;
  const parsed = DESTINATION_SCHEMAS[destType].safeParse(merged);
  if (!parsed.success) throw new ConfigProblems(at, formatIssues(parsed.error.issues).map((l) => `${at}.destination.config${l.startsWith('(root)') ? l.slice(6) : `.${l}`}`));
  const destConfig = resolveEnvDeep(parsed.data as Record<string, unknown>, `${at}.destination.config`, env);
  rememberSecrets(destConfig);
  const prefixTemplate = String((destConfig as { prefix?: string }).prefix ?? '');
  validatePrefix(prefixTemplate, `${at}.destination.config.prefix`);

  const data = e.data;
  const include = o.include ?? data.include;
  const fields = o.fields ?? data.fields;
  const transforms = (o.transforms ?? data.transformations ?? []).map((t, i) => {
    const where = `${at}.data.transformations[${i}]`;
    if (t.type === 'anonymize' && t.key) {
      const key = resolveEnvRef(t.key, `${where}.key`, env);
      rememberSecret(key);
      return { ...t, key };
    }
    if (t.type === 'anonymize' && t.method === 'hash' && env.BIFROST_LOGS_HASH_KEY) {
      // Without `key`, the documented default variable supplies it.
      rememberSecret(env.BIFROST_LOGS_HASH_KEY);
      return { ...t, key: env.BIFROST_LOGS_HASH_KEY };
    }
    if (t.type === 'enrich') return { ...t, add_fields: resolveEnvDeep(t.add_fields, `${where}.add_fields`, env) };
    return t;
  });
  const scheduleZone = e.schedule?.timezone ?? 'UTC';
  const timezone = o.timezone ?? scheduleZone;
  if ((o.format ?? data.format) === 'report' && destinationModule(destType).kind === 'table') {
    const files = DESTINATION_MODULES.filter((m) => m.kind === 'object').map((m) => m.type);
    throw configError('load the config', `${at}.data.format: a report is a file; ${destType} loads rows`, `send reports to ${files.slice(0, -1).join(', ')} or ${files.at(-1)}`);
  }
  const filterSpec: FilterSpec = { ...(data.filters as FilterSpec | undefined), ...(o.filters ?? {}) };
  let oneOff: ExportJob['oneOff'];
  const dr = data.filters?.date_range;
  if (dr && typeof dr === 'object' && !o.filters?.since && !o.filters?.until) {
    const now = Date.now();
    oneOff = { start: parseTimeArg(dr.start, now, timezone, `${at}.data.filters.date_range.start`), end: dr.end ? parseTimeArg(dr.end, now, timezone, `${at}.data.filters.date_range.end`) : now };
    if (oneOff.start >= oneOff.end) throw configError('load the config', `${at}.data.filters.date_range: start is not before end`);
  }
  const fieldDefs = resolveFields({ include, fields });
  // Build the transforms once now, so a bad one is a config error before any run starts.
  planTransforms(transforms, fieldDefs.map(({ name, type, nullable }) => ({ name, type, nullable })),
    { export_name: e.name, run_id: '', window_start: '', window_end: '', exported_at: '' }, timezone, `${at}.data.transformations`);
  let backfillFrom: number | undefined;
  if (e.backfill_from) backfillFrom = parseTimeArg(e.backfill_from, Date.now(), timezone, `${at}.backfill_from`);
  return Object.freeze({
    name: e.name,
    enabled: e.enabled,
    format: formatByName(o.format ?? data.format),
    compression: o.gzip !== undefined ? (o.gzip ? 'gzip' : 'none') : data.compression,
    fields: fieldDefs,
    include,
    filterSpec,
    transforms,
    maxRowsPerFile: o.maxRowsPerFile ?? data.max_rows_per_file ?? DEFAULT_MAX_ROWS_PER_FILE,
    formulaGuard: o.formulaGuard ?? data.csv_formula_guard ?? true,
    destType,
    destConfig,
    prefixTemplate,
    schedule: e.schedule ? { frequency: e.schedule.frequency, time: e.schedule.time ?? '00:00', timezone: scheduleZone, day: e.schedule.day } : undefined,
    timezone,
    backfillFrom,
    oneOff,
    settleLagMs: 1000 * (e.settle_lag_secs ?? le?.settle_lag_secs ?? DEFAULT_SETTLE_LAG_SECS),
    restateLookbackMs: 1000 * (e.restate_lookback_secs ?? le?.restate_lookback_secs ?? DEFAULT_RESTATE_LOOKBACK_SECS),
    lockTimeoutMs: 1000 * (e.lock_timeout_secs ?? le?.lock_timeout_secs ?? DEFAULT_LOCK_TIMEOUT_SECS),
  });
}
