import { z } from 'zod';
import { secretString } from '../../util/secret-string.js';

const ident = z.string().regex(/^[A-Za-z_]\w*$/, 'expected a plain identifier');
export const postgresConfigSchema = z.strictObject({
  url: secretString,
  schema: ident.optional(),
  table: ident,
  request_timeout_secs: z.number().positive().optional(),
});
export type PostgresConfig = z.infer<typeof postgresConfigSchema>;
