import type { z } from 'zod';
import type { DestinationModule } from './module.js';
import type { DestinationFactory } from './types.js';

/**
 * The registry: one line per destination type, in the order `--help` and
 * `init` list them. A module loads its config schema only; its SDK is
 * imported when a destination of its type is opened.
 */
export const DESTINATION_MODULES = [
  (await import('./file/module.js')).default,
  (await import('./stdout/module.js')).default,
  (await import('./s3/module.js')).default,
  (await import('./gcs/module.js')).default,
  (await import('./azure-blob/module.js')).default,
  (await import('./bigquery/module.js')).default,
  (await import('./snowflake/module.js')).default,
  (await import('./redshift/module.js')).default,
  (await import('./postgres/module.js')).default,
] as const;

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
