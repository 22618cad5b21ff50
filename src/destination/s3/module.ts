import { defineDestination } from '../module.js';
import { s3ConfigSchema } from './schema.js';

export default defineDestination({
  type: 's3',
  kind: 'object',
  schema: s3ConfigSchema,
  load: async () => (await import('./index.js')).createS3Destination,
  flags: [
    { flag: '--bucket <name>', key: 'bucket', help: 'bucket' },
    { flag: '--region <region>', key: 'region', help: 'region' },
    { flag: '--endpoint <url>', key: 'endpoint', help: 'endpoint (MinIO, R2, Azurite)' },
    { flag: '--force-path-style [bool]', key: 'force_path_style', help: 'path-style addressing', value: 'bool' },
    { flag: '--sse <mode>', key: 'sse', help: 'server-side encryption (AES256, aws:kms)' },
  ],
  location: (c) => `s3://${c.bucket}/`,
  init: {
    questions: [
      { key: 'bucket', message: 'Bucket' },
      { key: 'region', message: 'Region', initial: 'us-east-1' },
      { key: 'prefix', message: 'Prefix', initial: '{export}/{year}/{month}/{day}/' },
    ],
  },
});
