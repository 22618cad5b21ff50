import { z } from 'zod';
import { secretString } from '../../util/secret-string.js';

export const azureBlobConfigSchema = z.strictObject({
  container: z.string().min(1),
  prefix: z.string().optional(),
  account_name: z.string().optional(),
  account_key: secretString.optional(),
  connection_string: secretString.optional(),
  sas_token: secretString.optional(),
  endpoint: z.string().optional(),
  request_timeout_secs: z.number().positive().optional(),
});
export type AzureBlobConfig = z.infer<typeof azureBlobConfigSchema>;
