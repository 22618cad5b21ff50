import { z } from 'zod';
import { secretString } from '../../util/secret-string.js';

export const bigqueryConfigSchema = z.strictObject({
  project_id: z.string().min(1),
  dataset: z.string().regex(/^\w+$/, 'expected letters, digits and _'),
  table: z.string().regex(/^\w+$/, 'expected letters, digits and _'),
  location: z.string().optional(),
  api_endpoint: z.string().optional(),
  load_format: z.enum(['jsonl', 'parquet']).optional(),
  request_timeout_secs: z.number().positive().optional(),
  credentials: z.strictObject({ service_account_key: secretString }).optional(),
});
export type BigQueryConfig = z.infer<typeof bigqueryConfigSchema>;
