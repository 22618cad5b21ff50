import { defineDestination } from '../module.js';
import { bigqueryConfigSchema } from './schema.js';

export default defineDestination({
  type: 'bigquery',
  kind: 'table',
  schema: bigqueryConfigSchema,
  load: async () => (await import('./index.js')).createBigQueryDestination,
  flags: [
    { flag: '--api-endpoint <url>', key: 'api_endpoint', help: 'API endpoint' },
    { flag: '--table <name>', key: 'table', help: 'table' },
    { flag: '--project-id <id>', key: 'project_id', help: 'project' },
    { flag: '--dataset <name>', key: 'dataset', help: 'dataset' },
    { flag: '--location <loc>', key: 'location', help: 'location' },
  ],
  init: {
    questions: [
      { key: 'project_id', message: 'Project id' },
      { key: 'dataset', message: 'Dataset', initial: 'bifrost' },
      { key: 'table', message: 'Table', initial: 'request_logs' },
    ],
  },
});
