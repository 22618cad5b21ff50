import { existsSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { isValidZone } from '../../util/time.js';
import * as p from '@clack/prompts';
import { CliError, ExitCode, usageError } from '../../errors.js';
import { validateConfig } from '../../config/load.js';
import { DESTINATION_MODULES } from '../../destination/index.js';
import type { Ctx } from '../context.js';

function cancelled(v: unknown): asserts v is string | boolean | string[] {
  // Ctrl-C (or Esc) at a prompt: nothing written, exit 130 as for any SIGINT.
  if (p.isCancel(v)) throw new CliError('write the config', 'cancelled, nothing written', { exitCode: ExitCode.sigint });
}

/** `init`: asks for source, destination, format, schedule and filters; writes a config that `check` accepts. */
export async function initCommand(ctx: Ctx, o: { out?: string }): Promise<number> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw usageError('start the wizard', 'it needs an interactive terminal', 'write bifrost-logs.config.json by hand (see the README), or run init in a terminal');
  }
  const out = resolve(o.out ?? 'bifrost-logs.config.json');
  p.intro('bifrost-logs init');
  if (existsSync(out)) {
    const ok = await p.confirm({ message: `${out} exists. Overwrite it?`, initialValue: false });
    cancelled(ok);
    if (!ok) { p.cancel('left as it is'); return 0; }
  }
  const kind = await p.select({ message: 'Where are the gateway logs?', options: [
    { value: 'sqlite', label: 'SQLite logs.db' }, { value: 'postgres', label: 'Postgres log store' }, { value: 'bifrost', label: "Read logs_store from Bifrost's config.json" },
  ] });
  cancelled(kind);
  let source: Record<string, unknown> | undefined;
  if (kind === 'sqlite') {
    const home = (v: string) => (v === '~' || v.startsWith('~/') ? join(homedir(), v.slice(1)) : v);
    const path = await p.text({
      message: 'Path to logs.db', initialValue: ctx.global.db ?? join(homedir(), '.config/bifrost/logs.db'),
      validate: (v) => (v && existsSync(home(v.trim())) ? undefined : `no file at ${v ?? ''}`),
    });
    cancelled(path);
    // Absolute, so the config means the same file from any working directory (cron starts in $HOME).
    source = { path: resolve(home(String(path).trim())) };
  } else if (kind === 'postgres') {
    const url = await p.text({ message: 'Postgres URL (use ${VAR} for the password)', placeholder: 'postgres://bifrost:${PGPASSWORD}@db:5432/bifrost' });
    cancelled(url);
    source = { url };
  }
  const name = await p.text({ message: 'Export name', initialValue: 'daily_export', validate: (v) => (/^[A-Za-z0-9][\w.-]*$/.test(v ?? '') ? undefined : 'letters, digits, _ . -') });
  cancelled(name);
  // The destinations that have questions, in the registry's order.
  const offered = DESTINATION_MODULES.filter((m) => m.init);
  const destType = await p.select({ message: 'Destination', options: offered.map((m) => ({ value: m.type, label: m.type })) });
  cancelled(destType);
  const destConfig: Record<string, unknown> = {};
  const wizard = offered.find((m) => m.type === destType)!.init!;
  for (const q of wizard.questions) {
    const v = await p.text({ message: q.message, initialValue: q.initial });
    cancelled(v);
    if (v) destConfig[q.key] = q.path ? resolve(String(v)) : v;
  }
  Object.assign(destConfig, wizard.fixed);
  const format = await p.select({ message: 'Format', options: ['parquet', 'jsonl', 'csv', 'json'].map((v) => ({ value: v, label: v })) });
  cancelled(format);
  const frequency = await p.select({ message: 'Schedule', options: ['daily', 'hourly', 'weekly', 'monthly'].map((v) => ({ value: v, label: v })) });
  cancelled(frequency);
  const time = await p.text({ message: 'Time (HH:MM)', initialValue: '02:00', validate: (v) => (/^([01]\d|2[0-3]):[0-5]\d$/.test(v ?? '') ? undefined : 'HH:MM') });
  cancelled(time);
  const timezone = await p.text({ message: 'Timezone (IANA)', initialValue: 'UTC', validate: (v) => (v && isValidZone(v.trim()) ? undefined : `unknown timezone "${v ?? ''}" (an IANA name such as Europe/Berlin or UTC)`) });
  cancelled(timezone);
  const providers = await p.text({ message: 'Only these providers (comma-separated, empty for all)', initialValue: '' });
  cancelled(providers);
  const schedule: Record<string, unknown> = { frequency, time, timezone };
  if (frequency === 'weekly') schedule.day = 'monday';
  if (frequency === 'monthly') schedule.day = 1;
  const filters: Record<string, unknown> = {};
  if (providers) filters.providers = String(providers).split(',').map((s) => s.trim()).filter(Boolean);
  const config = {
    ...(source ? { source } : {}),
    log_exports: {
      enabled: true,
      exports: [{
        name, enabled: true, schedule,
        destination: { type: destType, config: destConfig },
        data: { format, compression: format === 'parquet' ? 'none' : 'gzip', filters },
      }],
    },
  };
  validateConfig(config, out);
  writeFileSync(out, JSON.stringify(config, null, 2) + '\n');
  p.outro(`wrote ${out}; next: bifrost-logs check --config ${out}${kind === 'bifrost' ? ' --bifrost-config PATH' : ''}`);
  return 0;
}
