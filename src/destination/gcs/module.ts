import { defineDestination } from '../module.js';
import { gcsConfigSchema } from './schema.js';

export default defineDestination({
  type: 'gcs',
  schema: gcsConfigSchema,
  load: async () => (await import('./index.js')).createGcsDestination,
  flags: [
    { flag: '--bucket <name>', key: 'bucket', help: 'bucket' },
    { flag: '--api-endpoint <url>', key: 'api_endpoint', help: 'API endpoint' },
  ],
  init: {
    questions: [
      { key: 'bucket', message: 'Bucket' },
      { key: 'prefix', message: 'Prefix', initial: '{export}/{year}/{month}/{day}/' },
    ],
  },
});
