import { defineDestination } from '../module.js';
import { gcsConfigSchema } from './schema.js';

export default defineDestination({
  type: 'gcs',
  kind: 'object',
  schema: gcsConfigSchema,
  load: async () => (await import('./index.js')).createGcsDestination,
  flags: [
    { flag: '--bucket <name>', key: 'bucket', help: 'bucket' },
    { flag: '--api-endpoint <url>', key: 'api_endpoint', help: 'API endpoint' },
  ],
  location: (c) => `gs://${c.bucket}/`,
  init: {
    questions: [
      { key: 'bucket', message: 'Bucket' },
      { key: 'prefix', message: 'Prefix', initial: '{export}/{year}/{month}/{day}/' },
    ],
  },
});
