import { defineDestination } from '../module.js';
import { snowflakeConfigSchema } from './schema.js';

export default defineDestination({
  type: 'snowflake',
  kind: 'table',
  schema: snowflakeConfigSchema,
  load: async () => (await import('./index.js')).createSnowflakeDestination,
  flags: [
    { flag: '--schema <name>', key: 'schema', help: 'schema' },
    { flag: '--table <name>', key: 'table', help: 'table' },
    { flag: '--database <name>', key: 'database', help: 'database' },
    { flag: '--account <name>', key: 'account', help: 'account' },
    { flag: '--warehouse <name>', key: 'warehouse', help: 'warehouse' },
  ],
  init: {
    questions: [
      { key: 'account', message: 'Account' },
      { key: 'database', message: 'Database' },
      { key: 'schema', message: 'Schema', initial: 'PUBLIC' },
      { key: 'table', message: 'Table', initial: 'REQUEST_LOGS' },
    ],
    fixed: { credentials: { username: 'env.SNOWFLAKE_USER', password: 'env.SNOWFLAKE_PASSWORD' } },
  },
});
