import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CliError, ExitCode, systemFailure } from '../errors.js';
import { mkdirpSync } from '../util/mkdirp.js';
import type { EngineContext } from './context.js';

/** --state-dir, else log_exports.state_dir, else $XDG_STATE_HOME/bifrost-logs, else ~/.local/state/bifrost-logs. */
export function stateDir(ctx: Pick<EngineContext, 'stateDirFlag' | 'env'>, configured?: string): string {
  if (ctx.stateDirFlag) return resolve(ctx.stateDirFlag);
  if (configured) return resolve(configured);
  const xdg = ctx.env.XDG_STATE_HOME;
  return xdg ? join(xdg, 'bifrost-logs') : join(homedir(), '.local', 'state', 'bifrost-logs');
}

/**
 * Creates a directory of the state dir (the ledger's, the locks', staging).
 * One that cannot be created is one line naming it, and how to choose another
 * (77 when permission is denied, 73 when the path cannot be created).
 */
export function makeStateDir(dir: string, mode?: number): void {
  try {
    mkdirpSync(dir, mode);
  } catch (err) {
    const f = systemFailure(err);
    if (!f || f.exitCode === ExitCode.tempFail || f.exitCode === ExitCode.ioErr) throw err;
    throw new CliError('create the state directory', `${dir}: ${f.why}`, { exitCode: f.exitCode, hint: 'pass --state-dir DIR (a directory this user can write), or set XDG_STATE_HOME', cause: err });
  }
}
