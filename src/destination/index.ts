import type { DestinationType } from './schemas.js';
import type { DestinationFactory } from './types.js';

/**
 * The registry: one line per destination type. Each loads its SDK only when
 * used, so `query` never pays for the cloud SDKs.
 */
export const DESTINATIONS: Record<DestinationType, () => Promise<DestinationFactory>> = {
  file: async () => (await import('./file/index.js')).createFileDestination,
  stdout: async () => (await import('./stdout/index.js')).createStdoutDestination,
  s3: async () => (await import('./s3/index.js')).createS3Destination,
  gcs: async () => (await import('./gcs/index.js')).createGcsDestination,
  azure_blob: async () => (await import('./azure-blob/index.js')).createAzureBlobDestination,
  bigquery: async () => (await import('./bigquery/index.js')).createBigQueryDestination,
  snowflake: async () => (await import('./snowflake/index.js')).createSnowflakeDestination,
  redshift: async () => (await import('./redshift/index.js')).createRedshiftDestination,
  postgres: async () => (await import('./postgres/index.js')).createPostgresDestination,
};
