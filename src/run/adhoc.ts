import type { ExportConfig } from '../config/schema.js';
import { scrubKnownSecrets } from '../util/env-ref.js';
import { buildJob, type ExportJob, type JobOverrides } from './job.js';

/**
 * How an ad-hoc export was asked for, kept in the ledger so `verify` can
 * rebuild its job without a config file. Secrets stay references (`env.NAME`)
 * or are scrubbed to `***`; a server's URL is not kept (it may hold a password).
 */
export interface AdhocRecipe {
  readonly export: ExportConfig;
  readonly overrides: JobOverrides;
  /** The SQLite file the export read, when it read one. */
  readonly sqlitePath?: string;
}

/** The recipe as the ledger keeps it. */
export function recipeText(r: AdhocRecipe): string {
  return scrubKnownSecrets(JSON.stringify(r));
}

/** The job an ad-hoc run was made with, rebuilt from its recipe. */
export function jobFromRecipe(text: string, env: NodeJS.ProcessEnv): { job: ExportJob; sqlitePath?: string } {
  const r = JSON.parse(text) as AdhocRecipe;
  return { job: buildJob(r.export, undefined, `the ledger's record of ${r.export.name}`, r.overrides, env), sqlitePath: r.sqlitePath };
}
