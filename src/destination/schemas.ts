import type { z } from 'zod';
import { fileConfigSchema } from './file/schema.js';
import { stdoutConfigSchema } from './stdout/schema.js';
import { s3ConfigSchema } from './s3/schema.js';
import { gcsConfigSchema } from './gcs/schema.js';
import { azureBlobConfigSchema } from './azure-blob/schema.js';
import { bigqueryConfigSchema } from './bigquery/schema.js';
import { snowflakeConfigSchema } from './snowflake/schema.js';
import { redshiftConfigSchema } from './redshift/schema.js';
import { postgresConfigSchema } from './postgres/schema.js';

/** Each destination's config schema, loadable without its SDK. One line per type. */
export const DESTINATION_SCHEMAS = {
  file: fileConfigSchema,
  stdout: stdoutConfigSchema,
  s3: s3ConfigSchema,
  gcs: gcsConfigSchema,
  azure_blob: azureBlobConfigSchema,
  bigquery: bigqueryConfigSchema,
  snowflake: snowflakeConfigSchema,
  redshift: redshiftConfigSchema,
  postgres: postgresConfigSchema,
} satisfies Record<string, z.ZodType>;

export type DestinationType = keyof typeof DESTINATION_SCHEMAS;
export const DESTINATION_TYPES = Object.keys(DESTINATION_SCHEMAS) as DestinationType[];
