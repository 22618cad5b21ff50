import { defineDestination } from '../module.js';
import { postgresConfigSchema } from './schema.js';

export default defineDestination({
  type: 'postgres',
  kind: 'table',
  schema: postgresConfigSchema,
  load: async () => (await import('./index.js')).createPostgresDestination,
  flags: [
    { flag: '--url <url>', key: 'url', help: 'connection URL' },
    { flag: '--schema <name>', key: 'schema', help: 'schema' },
    { flag: '--table <name>', key: 'table', help: 'table' },
  ],
  init: {
    questions: [
      { key: 'url', message: 'Target URL (an env reference)', initial: 'env.EXPORT_DATABASE_URL' },
      { key: 'table', message: 'Table', initial: 'request_logs' },
    ],
  },
});
