import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Ctx } from '../cli/context.js';

/** --state-dir, else log_exports.state_dir, else $XDG_STATE_HOME/bifrost-logs, else ~/.local/state/bifrost-logs. */
export function stateDir(ctx: Pick<Ctx, 'global' | 'env'>, configured?: string): string {
  if (ctx.global.stateDir) return resolve(ctx.global.stateDir);
  if (configured) return resolve(configured);
  const xdg = ctx.env.XDG_STATE_HOME;
  return xdg ? join(xdg, 'bifrost-logs') : join(homedir(), '.local', 'state', 'bifrost-logs');
}
