import { configError } from '../errors.js';
import type { ExportRecord, FieldType, RecordSchema } from '../record/fields.js';
import type { TransformConfig } from './schema.js';
import { normaliseMetric, TIME_BUCKETS, GROUPABLE_FIELDS } from '../source/aggregate-sql.js';
import type { AggregateSpec } from '../source/types.js';
import { createAnonymize } from './anonymize.js';
import { createEnrich } from './enrich.js';
import type { RecordTransform, RunVars } from './types.js';

export interface TransformPlan {
  /** Present when the export aggregates: computed in SQL, then the transforms run on its rows. */
  readonly aggregate?: AggregateSpec;
  readonly transforms: readonly RecordTransform[];
  readonly schema: RecordSchema;
  readonly descriptions: Record<string, unknown>[];
  apply(records: ExportRecord[]): ExportRecord[];
}

const COUNT_METRICS = new Set(['count', 'total_requests', 'success_count', 'error_count', 'cancelled_count', 'total_tokens', 'input_tokens', 'output_tokens']);
/** Metrics that are never null (Bifrost's GetStats gives 0 on an empty result). */
const NON_NULL_METRICS = new Set([...COUNT_METRICS, 'success_rate', 'error_rate', 'cancelled_rate', 'avg_latency', 'total_cost']);

/** The schema of aggregated rows: group keys, then metrics. */
export function aggregateSchema(groupBy: readonly string[], metrics: readonly string[]): RecordSchema {
  return [
    ...groupBy.map((g) => ({ name: g, type: (g === 'status_code' ? 'int32' : 'string') as FieldType, nullable: true })),
    ...metrics.map((m) => ({ name: m, type: (COUNT_METRICS.has(normaliseMetric(m)) ? 'int64' : 'double') as FieldType, nullable: !NON_NULL_METRICS.has(normaliseMetric(m)) })),
  ];
}

/**
 * Builds the transforms in the order written. An `aggregate` is pushed down
 * to SQL; transforms written before it act on its group keys (a keyed hash
 * maps groups one-to-one), so redact/drop of a grouped field must come after.
 */
export function planTransforms(configs: readonly TransformConfig[], recordSchema: RecordSchema, vars: RunVars, timezone: string, at = 'transformations'): TransformPlan {
  const aggIdx = configs.findIndex((t) => t.type === 'aggregate');
  if (configs.filter((t) => t.type === 'aggregate').length > 1) throw configError('set up transformations', `${at}: only one aggregate is allowed`);
  let schema = recordSchema;
  const transforms: RecordTransform[] = [];
  let aggregate: AggregateSpec | undefined;
  configs.forEach((t, i) => {
    const where = `${at}[${i}]`;
    if (t.type === 'aggregate') {
      for (const g of t.group_by) {
        if (!(TIME_BUCKETS as readonly string[]).includes(g) && !(GROUPABLE_FIELDS as readonly string[]).includes(g)) {
          throw configError('set up aggregate', `${where}.group_by: cannot group by "${g}"`, `group by: ${[...GROUPABLE_FIELDS, ...TIME_BUCKETS].join(', ')}`);
        }
      }
      t.metrics.forEach(normaliseMetric);
      aggregate = { groupBy: t.group_by, metrics: t.metrics, timezone };
      // Earlier transforms must survive aggregation: only 1:1 key maps do.
      for (const prev of configs.slice(0, i)) {
        if (prev.type === 'anonymize' && (prev.method === 'redact' || prev.method === 'drop') && prev.fields.some((f) => t.group_by.includes(f))) {
          throw configError('set up transformations', `${where}: "${prev.method}" of a grouped field must come after the aggregate`);
        }
      }
      schema = aggregateSchema(t.group_by, t.metrics);
      return;
    }
    const tr = t.type === 'anonymize' ? createAnonymize(t.fields, t.method, t.key, where) : createEnrich(t.add_fields, vars);
    if (aggIdx >= 0 && i < aggIdx && t.type === 'anonymize') {
      // Validate against the record, apply to the aggregated rows' keys.
      tr.schema(recordSchema);
      const grouped = t.fields.filter((f) => (configs[aggIdx] as { group_by: string[] }).group_by.includes(f));
      if (grouped.length) transforms.push(createAnonymize(grouped, t.method, t.key, where));
      return;
    }
    schema = tr.schema(schema);
    transforms.push(tr);
  });
  if (aggregate) {
    // Transforms after the aggregate (and enrich before it) act on the aggregated rows.
    let s = aggregateSchema(aggregate.groupBy, aggregate.metrics);
    for (const tr of transforms) s = tr.schema(s);
    schema = s;
  }
  return {
    aggregate,
    transforms,
    schema,
    descriptions: configs.map((t) => (t.type === 'anonymize' ? { type: t.type, fields: t.fields, method: t.method } : t.type === 'enrich' ? { type: t.type, add_fields: Object.keys(t.add_fields) } : { ...t })),
    apply(records) {
      let r = records;
      for (const t of transforms) r = t.apply(r);
      return r;
    },
  };
}
