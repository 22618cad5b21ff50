import type { z } from 'zod';
import type { DestinationModule } from './module.js';
import type { DestinationFactory } from './types.js';
import file from './file/module.js';
import stdout from './stdout/module.js';
import s3 from './s3/module.js';
import gcs from './gcs/module.js';
import azureBlob from './azure-blob/module.js';
import bigquery from './bigquery/module.js';
import snowflake from './snowflake/module.js';
import redshift from './redshift/module.js';
import postgres from './postgres/module.js';

/**
 * The registry: one line per destination type, in the order `--help` and
 * `init` list them. A module loads its config schema only; its SDK is
 * imported when a destination of its type is opened.
 */
export const DESTINATION_MODULES = [file, stdout, s3, gcs, azureBlob, bigquery, snowflake, redshift, postgres] as const;

export type DestinationType = (typeof DESTINATION_MODULES)[number]['type'];
export const DESTINATION_TYPES = DESTINATION_MODULES.map((m) => m.type) as DestinationType[];

const byType = <T>(f: (m: DestinationModule) => T) => Object.fromEntries(DESTINATION_MODULES.map((m) => [m.type, f(m)])) as Record<DestinationType, T>;

/** The module of a type. */
export function destinationModule(type: DestinationType): DestinationModule {
  return DESTINATION_MODULES.find((m) => m.type === type)!;
}

/** Each type's config schema. */
export const DESTINATION_SCHEMAS: Record<DestinationType, z.ZodType> = byType((m) => m.schema);

/** Each type's factory, loaded on first use. */
export const DESTINATIONS: Record<DestinationType, () => Promise<DestinationFactory>> = byType((m) => () => m.load());
