import { z } from 'zod';
import { secretString } from '../../util/secret-string.js';

const ident = z.string().regex(/^[A-Za-z_][\w$]*$/, 'expected a plain identifier');
export const snowflakeConfigSchema = z.strictObject({
  request_timeout_secs: z.number().positive().optional(),
  account: z.string().min(1),
  database: ident,
  schema: ident,
  table: ident,
  warehouse: z.string().optional(),
  role: z.string().optional(),
  access_url: z.string().optional(),
  insert_max_rows: z.number().int().positive().optional(),
  credentials: z.strictObject({
    username: secretString,
    password: secretString.optional(),
    private_key: secretString.optional(),
    private_key_path: z.string().optional(),
    private_key_passphrase: secretString.optional(),
  }),
});
export type SnowflakeConfig = z.infer<typeof snowflakeConfigSchema>;
