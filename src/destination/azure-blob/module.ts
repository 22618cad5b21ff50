import { defineDestination } from '../module.js';
import { azureBlobConfigSchema } from './schema.js';

export default defineDestination({
  type: 'azure_blob',
  kind: 'object',
  schema: azureBlobConfigSchema,
  load: async () => (await import('./index.js')).createAzureBlobDestination,
  flags: [
    { flag: '--endpoint <url>', key: 'endpoint', help: 'endpoint (MinIO, R2, Azurite)' },
    { flag: '--container <name>', key: 'container', help: 'container' },
    { flag: '--account-name <name>', key: 'account_name', help: 'storage account' },
    { flag: '--connection-string <value>', key: 'connection_string', help: 'connection string (prefer env.NAME)' },
  ],
  location: (c) => `azure container ${c.container}`,
  init: {
    questions: [
      { key: 'container', message: 'Container' },
      { key: 'connection_string', message: 'Connection string (an env reference)', initial: 'env.AZURE_STORAGE_CONNECTION_STRING' },
    ],
  },
});
