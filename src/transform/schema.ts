import { z } from 'zod';
import { METRICS, METRIC_ALIASES } from '../source/aggregate-sql.js';

const metricName = z.string().refine((m) => (METRICS as readonly string[]).includes(METRIC_ALIASES[m] ?? m), { error: (i) => `unknown metric ${JSON.stringify(i.input)}; metrics: ${METRICS.join(', ')}` });

/** One entry of `data.transformations[]` (they apply in order). */
export const transformSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('anonymize'),
    fields: z.array(z.string().min(1)).min(1),
    method: z.enum(['hash', 'sha256', 'redact', 'drop']).default('hash'),
    key: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal('enrich'),
    add_fields: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
  }),
  z.strictObject({
    type: z.literal('aggregate'),
    group_by: z.array(z.string().min(1)),
    metrics: z.array(metricName).min(1),
  }),
], { error: (i) => (i.code === 'invalid_union' ? `unknown transformation type ${JSON.stringify((i.input as any)?.type)}; types: anonymize, enrich, aggregate` : undefined) });
export type TransformConfig = z.infer<typeof transformSchema>;
