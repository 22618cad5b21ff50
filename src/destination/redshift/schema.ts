import { z } from 'zod';
import { secretString } from '../../util/secret-string.js';
import { s3ConfigSchema } from '../s3/schema.js';

const ident = z.string().regex(/^[A-Za-z_]\w*$/, 'expected a plain identifier');
export const redshiftConfigSchema = z.strictObject({
  host: z.string().optional(),
  cluster: z.string().optional(),
  region: z.string().optional(),
  port: z.number().int().positive().optional(),
  database: z.string().min(1),
  schema: ident.optional(),
  table: ident,
  ssl: z.boolean().optional(),
  insert_batch_rows: z.number().int().positive().optional(),
  request_timeout_secs: z.number().positive().optional(),
  credentials: z.strictObject({ username: secretString, password: secretString }).optional(),
  staging: z.strictObject({ s3: s3ConfigSchema, iam_role: z.string().min(1) }).optional(),
});
export type RedshiftConfig = z.infer<typeof redshiftConfigSchema>;
