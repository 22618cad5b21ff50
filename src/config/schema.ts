import { z } from 'zod';
import { DESTINATION_SCHEMAS, DESTINATION_TYPES } from '../destination/index.js';
import { ANY_FIELD_NAMES, ANY_GROUP_NAMES } from '../record/select.js';
import { LOG_TABLES } from '../source/log-table.js';
import { transformSchema, type TransformConfig } from '../transform/schema.js';
import { isValidZone, NAMED_RANGES } from '../util/time.js';

// A config is parsed once per process: zod's compiled fast path (built with `new Function` on the first parse)
// costs more to build than it saves, ~3 ms of every command's start.
z.config({ jitless: true });

const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;
export { WEEKDAYS };

const hhmm = z.string().refine((s) => /^([01]\d|2[0-3]):[0-5]\d$/.test(s), { error: (i) => `expected HH:MM, got ${JSON.stringify(i.input)}` });
const zone = z.string().refine(isValidZone, { error: (i) => `unknown timezone ${JSON.stringify(i.input)}` });
const rfc3339ish = z.string().refine((s) => /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/i.test(s), { error: (i) => `expected a date or RFC 3339 time, got ${JSON.stringify(i.input)}` });

export const scheduleSchema = z.strictObject({
  frequency: z.enum(['hourly', 'daily', 'weekly', 'monthly']),
  time: hhmm.optional(),
  timezone: zone.optional(),
  day: z.union([z.enum(WEEKDAYS), z.number().int().min(1).max(31)]).optional(),
}).superRefine((s, ctx) => {
  if (s.frequency === 'weekly' && s.day !== undefined && typeof s.day !== 'string') ctx.addIssue({ code: 'custom', path: ['day'], message: `expected a weekday name for weekly, got ${JSON.stringify(s.day)}` });
  if (s.frequency === 'monthly' && s.day !== undefined && typeof s.day !== 'number') ctx.addIssue({ code: 'custom', path: ['day'], message: `expected a day of the month 1–31 for monthly, got ${JSON.stringify(s.day)}` });
  if ((s.frequency === 'daily' || s.frequency === 'hourly') && s.day !== undefined) ctx.addIssue({ code: 'custom', path: ['day'], message: `day is only for weekly and monthly schedules` });
});

const statusCodes = z.array(z.number().int().min(100).max(599));
const stringList = z.array(z.string().min(1));

export const filtersSchema = z.strictObject({
  date_range: z.union([z.enum(NAMED_RANGES as unknown as [string, ...string[]]), z.strictObject({ start: rfc3339ish, end: rfc3339ish.optional() })]).optional(),
  providers: stringList.optional(),
  models: stringList.optional(),
  customers: stringList.optional(),
  status_codes: statusCodes.optional(),
  min_latency_ms: z.number().min(0).optional(),
  max_latency_ms: z.number().min(0).optional(),
  has_errors: z.boolean().optional(),
  status: z.array(z.enum(['success', 'error', 'cancelled', 'processing'])).optional(),
  objects: stringList.optional(),
  virtual_keys: stringList.optional(),
  teams: stringList.optional(),
  business_units: stringList.optional(),
  users: stringList.optional(),
  min_tokens: z.number().min(0).optional(),
  max_tokens: z.number().min(0).optional(),
  min_cost: z.number().min(0).optional(),
  max_cost: z.number().min(0).optional(),
  search: z.string().optional(),
  metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).optional(),
  servers: stringList.optional(),
  tools: stringList.optional(),
});

export { transformSchema, type TransformConfig };

export const dataSchema = z.strictObject({
  format: z.enum(['json', 'jsonl', 'csv', 'parquet', 'report']).default('jsonl'),
  compression: z.enum(['none', 'gzip']).default('none'),
  /** The log table the export reads: logs (LLM requests) or mcp_tool_logs (MCP tool calls). */
  table: z.enum(LOG_TABLES).optional(),
  include: z.array(z.enum(ANY_GROUP_NAMES as [string, ...string[]])).optional(),
  fields: z.array(z.enum(ANY_FIELD_NAMES as [string, ...string[]])).optional(),
  filters: filtersSchema.optional(),
  transformations: z.array(transformSchema).optional(),
  max_rows_per_file: z.number().int().positive().optional(),
  csv_formula_guard: z.boolean().optional(),
});

const destinationSchema = z.discriminatedUnion('type', DESTINATION_TYPES.map((t) =>
  z.strictObject({ type: z.literal(t), config: (DESTINATION_SCHEMAS[t] as z.ZodType).optional() }),
) as any, { error: (i) => (i.code === 'invalid_union' ? `unknown destination type ${JSON.stringify((i.input as any)?.type)}; types: ${DESTINATION_TYPES.join(', ')}` : undefined) });

export const exportSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'expected letters, digits, _ . -'),
  enabled: z.boolean().default(true),
  schedule: scheduleSchema.optional(),
  backfill_from: rfc3339ish.optional(),
  settle_lag_secs: z.number().int().min(0).optional(),
  restate_lookback_secs: z.number().int().min(0).optional(),
  lock_timeout_secs: z.number().int().positive().optional(),
  destination: destinationSchema,
  data: dataSchema.default({ format: 'jsonl', compression: 'none' }),
});
export type ExportConfig = z.infer<typeof exportSchema>;

export const logExportsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  state_dir: z.string().optional(),
  settle_lag_secs: z.number().int().min(0).optional(),
  restate_lookback_secs: z.number().int().min(0).optional(),
  lock_timeout_secs: z.number().int().positive().optional(),
  /** No longer used (late rows are looked for at any age); accepted so old configs load. */
  late_horizon_secs: z.number().int().min(0).optional(),
  log_retention_days: z.number().int().positive().optional(),
  exports: z.array(exportSchema).default([]),
}).superRefine((le, ctx) => {
  const seen = new Set<string>();
  le.exports.forEach((e, i) => {
    if (seen.has(e.name)) ctx.addIssue({ code: 'custom', path: ['exports', i, 'name'], message: `duplicate export name ${JSON.stringify(e.name)}` });
    seen.add(e.name);
  });
});

const sourceSchema = z.strictObject({
  path: z.string().optional(),
  url: z.string().optional(),
  /** Postgres: connect/answer deadline in seconds. */
  request_timeout_secs: z.number().positive().optional(),
  enabled: z.boolean().optional(),
  type: z.enum(['sqlite', 'postgres', 'clickhouse']).optional(),
  config: z.strictObject({
    path: z.string().optional(), host: z.string().optional(), port: z.union([z.number(), z.string()]).optional(),
    user: z.string().optional(), password: z.string().optional(), db_name: z.string().optional(), ssl_mode: z.string().optional(),
    max_idle_conns: z.number().optional(), max_open_conns: z.number().optional(),
    database: z.string().optional(), username: z.string().optional(), protocol: z.string().optional(), secure: z.boolean().optional(),
    dial_timeout: z.number().optional(), cluster: z.string().optional(), managed_replication: z.boolean().optional(), table_engine: z.string().optional(),
  }).optional(),
});

export const configFileSchema = z.strictObject({
  $schema: z.string().optional(),
  source: sourceSchema.optional(),
  log_exports: logExportsSchema.optional(),
});
export type ConfigFile = z.infer<typeof configFileSchema>;
export type LogExportsConfig = z.infer<typeof logExportsSchema>;
