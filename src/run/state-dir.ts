import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { EngineContext } from './context.js';

/** --state-dir, else log_exports.state_dir, else $XDG_STATE_HOME/bifrost-logs, else ~/.local/state/bifrost-logs. */
export function stateDir(ctx: Pick<EngineContext, 'stateDirFlag' | 'env'>, configured?: string): string {
  if (ctx.stateDirFlag) return resolve(ctx.stateDirFlag);
  if (configured) return resolve(configured);
  const xdg = ctx.env.XDG_STATE_HOME;
  return xdg ? join(xdg, 'bifrost-logs') : join(homedir(), '.local', 'state', 'bifrost-logs');
}
