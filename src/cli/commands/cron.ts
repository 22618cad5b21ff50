import { dirname, resolve } from 'node:path';
import { mkdirpSync } from '../../util/mkdirp.js';
import { packageFile } from '../../util/package-root.js';
import { CliError, ExitCode, usageError } from '../../errors.js';
import { parseDuration } from '../../util/time.js';
import { stateDir } from '../../run/state-dir.js';
import type { Ctx } from '../context.js';

const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The crontab schedule field for "every N minutes/hours". */
export function cronSpec(every: string): string {
  const ms = parseDuration(every);
  if (ms === undefined || ms < 60_000) throw usageError('parse --every', `"${every}" is not a duration of a minute or more`, 'e.g. 5m, 15m, 1h');
  const min = Math.round(ms / 60_000);
  if (min < 60) {
    if (60 % min) throw usageError('parse --every', `${min} minutes does not divide an hour`, 'use 1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30 minutes, or whole hours');
    return min === 1 ? '* * * * *' : `*/${min} * * * *`;
  }
  const h = Math.round(min / 60);
  if (h === 24 && min % 60 === 0) return '0 0 * * *';
  if (h > 24) throw usageError('parse --every', `"${every}" is longer than a day; cron cannot repeat it evenly`, 'use 1d and let each export\'s schedule (daily, weekly, monthly) decide');
  if (min % 60 || 24 % h) throw usageError('parse --every', `"${every}" does not divide a day`, 'use whole hours that divide 24');
  return h === 1 ? '0 * * * *' : `0 */${h} * * *`;
}

/** A URL with a password in its userinfo (postgres://u:p@host/db). */
function hasPassword(db: string): boolean {
  try { return new URL(db).password !== ''; } catch { return false; }
}

/** `cron`: the crontab line, with absolute paths and a log redirect. */
export async function cronCommand(ctx: Ctx, o: { every: string; log?: string }): Promise<number> {
  const spec = cronSpec(o.every);
  const cfg = await ctx.config();
  if (!cfg && !ctx.global.bifrostConfig) {
    throw new CliError('print the crontab line', 'no config file found, so `run` would have no export to run', {
      exitCode: ExitCode.config, hint: 'write one with `bifrost-logs init`, or pass --config FILE',
    });
  }
  const state = stateDir(ctx, cfg?.logExports.state_dir);
  const bin = packageFile('bin', 'bifrost-logs.js');
  const args = [process.execPath, bin, 'run', '--quiet', '--no-progress'];
  if (ctx.global.bifrostConfig) args.push('--bifrost-config', resolve(ctx.global.bifrostConfig));
  else if (cfg) args.push('--config', cfg.file);
  if (ctx.global.db) {
    if (hasPassword(ctx.global.db)) {
      throw usageError('print the crontab line', 'the --db URL holds a password, which would be written into the crontab in clear', 'set BIFROST_LOGS_DB in the crontab\'s environment, or a config whose source password is an env.NAME reference');
    }
    args.push('--db', /^postgres/i.test(ctx.global.db) ? ctx.global.db : resolve(ctx.global.db));
  }
  if (ctx.global.tz) args.push('--tz', ctx.global.tz);
  args.push('--state-dir', state);
  const envDb = ctx.env.BIFROST_LOGS_DB;
  let envLine = '';
  if (!ctx.global.db && envDb) {
    envLine = hasPassword(envDb)
      ? `# BIFROST_LOGS_DB holds a password: set it in the crontab's environment (a BIFROST_LOGS_DB=... line above), not printed here.\n`
      : `BIFROST_LOGS_DB=${/^postgres/i.test(envDb) ? envDb : resolve(envDb)}\n`;
  }
  const log = resolve(o.log ?? `${state}/run.log`);
  // The redirect needs its directory before cron's first call.
  mkdirpSync(dirname(log));
  await ctx.out.write(
    `# bifrost-logs: run every due export. cron has a minimal environment: secrets referenced as env.NAME\n` +
    `# must be set here (e.g. NAME=value lines above this one) or in a file the command sources.\n` +
    envLine +
    `${spec} ${args.map(q).join(' ')} >> ${q(log)} 2>&1\n`,
  );
  return 0;
}
