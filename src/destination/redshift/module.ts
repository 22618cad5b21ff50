import { defineDestination } from '../module.js';
import { redshiftConfigSchema } from './schema.js';

export default defineDestination({
  type: 'redshift',
  kind: 'table',
  schema: redshiftConfigSchema,
  load: async () => (await import('./index.js')).createRedshiftDestination,
  flags: [
    { flag: '--region <region>', key: 'region', help: 'region' },
    { flag: '--schema <name>', key: 'schema', help: 'schema' },
    { flag: '--table <name>', key: 'table', help: 'table' },
    { flag: '--host <host>', key: 'host', help: 'host' },
    { flag: '--port <port>', key: 'port', help: 'port', value: 'int' },
    { flag: '--database <name>', key: 'database', help: 'database' },
  ],
  init: {
    questions: [
      { key: 'host', message: 'Host' },
      { key: 'database', message: 'Database', initial: 'dev' },
      { key: 'table', message: 'Table', initial: 'request_logs' },
    ],
    fixed: { credentials: { username: 'env.REDSHIFT_USER', password: 'env.REDSHIFT_PASSWORD' } },
  },
});
