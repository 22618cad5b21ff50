import { z } from 'zod';
import { secretString } from '../../util/secret-string.js';

export const gcsConfigSchema = z.strictObject({
  bucket: z.string().min(1),
  prefix: z.string().optional(),
  project_id: z.string().optional(),
  api_endpoint: z.string().optional(),
  request_timeout_secs: z.number().positive().optional(),
  credentials: z.strictObject({ service_account_key: secretString }).optional(),
});
export type GcsConfig = z.infer<typeof gcsConfigSchema>;
