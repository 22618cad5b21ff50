import { join } from 'node:path';
import { makeStateDir, stateDir } from './state-dir.js';
import { CliError, ExitCode, isUnreachable, systemFailure } from '../errors.js';
import { DESTINATIONS } from '../destination/index.js';
import type { Destination } from '../destination/types.js';
import type { EngineContext } from './context.js';
import type { ExportJob } from './job.js';

/**
 * Creates a job's destination through the registry (its SDK is imported only
 * now). `stateDir` is the run's state dir (the config's, when it names one).
 */
export async function openDestination(ctx: Pick<EngineContext, 'log' | 'stateDirFlag' | 'env'>, job: ExportJob, o: { signal?: AbortSignal; stateDir?: string } = {}): Promise<{ dest: Destination }> {
  const load = DESTINATIONS[job.destType];
  if (!load) throw new CliError('open the destination', `destination type "${job.destType}" is not available in this build`, { exitCode: ExitCode.config });
  const factory = await load();
  // Staging files hold log content: keep them in a private directory of this user's state dir.
  const tmpDir = join(o.stateDir ?? stateDir(ctx), 'tmp');
  makeStateDir(tmpDir, 0o700);
  try {
    const dest = await factory(job.destConfig, { log: ctx.log, signal: o.signal, tmpDir });
    return { dest };
  } catch (err) {
    if (err instanceof CliError) throw err;
    const f = systemFailure(err);
    if (f) throw new CliError(`open the ${job.destType} destination`, `${f.why}: ${(err as Error).message}`, { exitCode: f.exitCode, hint: f.hint, cause: err });
    throw new CliError(`open the ${job.destType} destination`, (err as Error).message, { exitCode: isUnreachable(err) ? ExitCode.unavailable : ExitCode.config, cause: err });
  }
}
