import { Command, Option } from 'commander';
import { ExitCode } from '../errors.js';
import { VERSION } from '../version.js';
import { createCtx, type Ctx, type GlobalOptions } from './context.js';
import { createLogger } from './log.js';
import { createStdout, PipeClosed } from './output.js';
import { reportError } from './report-error.js';
import { logTableFromFlags } from './log-table-flag.js';
import { addFilterOptions, addLogTableOption, addSourceOptions, filterSpecFromFlags, parseBool, parseKeyValue, parseList, parseNonNegInt, parsePositiveInt } from './options.js';
import { stopProgressBars } from './progress.js';

type Action = (ctx: Ctx, opts: Record<string, any>, args: string[]) => Promise<number>;

let exitCode: number = ExitCode.ok;
let activeCtx: (Ctx & { closeAll(): Promise<void> }) | null = null;

/** Wraps a command: builds the context, runs it, records its exit code. Commands never exit the process. */
function action(fn: Action) {
  return async (...a: unknown[]) => {
    const cmd = a[a.length - 1] as Command;
    const opts = cmd.optsWithGlobals() as Record<string, any>;
    const global: GlobalOptions = {
      quiet: opts.quiet, verbose: opts.verbose, progress: opts.progress, stateDir: opts.stateDir, tz: opts.tz,
      db: opts.db, bifrostConfig: opts.bifrostConfig, config: opts.config,
    };
    const log = createLogger(global);
    const ctx = createCtx(global, log, createStdout(), abortAll.signal);
    activeCtx = ctx;
    try {
      exitCode = await fn(ctx, opts, cmd.args);
    } finally {
      await ctx.closeAll();
      activeCtx = null;
    }
  };
}

const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

/**
 * `run` and `verify` fingerprint the delivered windows: a second thread for a
 * large span starts now, and loads while this one loads the command and its
 * config (source/sqlite/fingerprint-threads.ts).
 */
async function warmFingerprintThread(): Promise<void> {
  (await import('../source/sqlite/fingerprint-threads.js')).startFingerprintThread();
}

export function buildProgram(): Command {
  const program = new Command('bifrost-logs')
    .description('Export, query and report on Bifrost gateway request logs.')
    .version(VERSION, '--version')
    .option('--quiet', 'only errors on stderr')
    .option('--verbose', 'more detail, and the cause chain of errors')
    .option('--no-progress', 'no progress bar')
    .option('--state-dir <dir>', 'where the ledger and locks live')
    .option('--tz <zone>', 'timezone for dates, buckets and today/yesterday', undefined)
    .showSuggestionAfterError(true)
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .configureOutput({
      writeErr: (s) => {
        if (/^error: /.test(s)) return; // reported by the top-level handler in our format
        process.stderr.write(s);
      },
    });
  program.addHelpText('after', examples([
    'bifrost-logs query --since 24h --providers openai --json | jq .cost_usd',
    'bifrost-logs stats --since 7d --group-by provider,model',
    'bifrost-logs export --since 2026-10-01 --until 2026-10-02 --dest file --out ./out --format parquet',
    'bifrost-logs run          # from cron: every export that is due',
  ]));

  addLogTableOption(addFilterOptions(addSourceOptions(program.command('query').description('print log records (table on a TTY, NDJSON in a pipe)'))))
    .option('--fields <list>', 'exact fields to print', parseList)
    .option('--include <groups>', 'add field groups: request_logs, response_logs, error_logs, metrics, traces (mcp_tool_logs: tool_io, error_logs, identity, traces)', parseList)
    .addOption(new Option('--sort <key>', 'sort key').choices(['timestamp', 'latency', 'tokens', 'cost']).default('timestamp'))
    .addOption(new Option('--order <dir>', 'sort order').choices(['asc', 'desc']).default('desc'))
    .option('--limit <n>', 'at most N records (default 100)', parsePositiveInt)
    .option('--offset <n>', 'skip N records', parseNonNegInt)
    .option('--all', 'no limit')
    .option('--json', 'NDJSON, one record per line')
    .option('--csv', 'CSV with a header')
    .option('--table [log-table]', 'a table even in a pipe; --table mcp_tool_logs: that log table, as a table')
    .addHelpText('after', examples([
      'bifrost-logs query --since 1h',
      'bifrost-logs query --all --json --has-errors | jq -r .request_id',
      'bifrost-logs query --status-codes 429 --fields timestamp,model,latency_ms --csv',
    ]))
    .action(action(async (ctx, o) => (await import('./commands/query.js')).queryCommand(ctx, {
      filters: filterSpecFromFlags(o), fields: o.fields, include: o.include, sort: o.sort, order: o.order,
      limit: o.limit, offset: o.offset, all: o.all, json: o.json, csv: o.csv, table: o.table !== undefined, logTable: logTableFromFlags(o, true),
    })));

  addLogTableOption(addFilterOptions(addSourceOptions(program.command('stats').description("usage statistics with Bifrost's definitions"))))
    .option('--table <log-table>', 'the log table (as --log-table)')
    .option('--group-by <list>', 'group by record fields and/or hour, date, week, month', parseList)
    .addOption(new Option('--bucket <size>', 'add a time bucket').choices(['hour', 'day', 'week', 'month']))
    .option('--metrics <list>', 'metrics to compute (default: Bifrost\'s)', parseList)
    .option('--json', 'one JSON object (NDJSON per group with --group-by)')
    .option('--csv', 'CSV with a header')
    .option('--chart', 'on a terminal: a chart of the bucketed series (day by default) after the table')
    .addHelpText('after', examples([
      'bifrost-logs stats --since 24h --json',
      'bifrost-logs stats --since 14d --chart',
      'bifrost-logs stats --since 30d --group-by provider,model --csv',
      'bifrost-logs stats --since 7d --bucket day --tz Europe/Berlin',
    ]))
    .action(action(async (ctx, o) => (await import('./commands/stats.js')).statsCommand(ctx, {
      filters: filterSpecFromFlags(o), groupBy: o.groupBy, bucket: o.bucket, metrics: o.metrics, json: o.json, csv: o.csv, chart: o.chart, logTable: logTableFromFlags(o, true),
    })));

  addFilterOptions(addSourceOptions(program.command('report').description('a self-contained HTML usage and cost report')))
    .option('--group-by <field>', 'group the table by team, customer, virtual_key, user, key or a record field (default model)')
    .option('--out <file>', 'where to write the HTML (default report.html; - for stdout)')
    .option('--json', 'print the report data as JSON instead')
    .addHelpText('after', examples([
      'bifrost-logs report --since 30d --group-by team --out report.html',
      'bifrost-logs report --since 2026-10-01 --until 2026-11-01 --group-by customer',
    ]))
    .action(action(async (ctx, o) => (await import('./commands/report.js')).reportCommand(ctx, {
      filters: filterSpecFromFlags(o), groupBy: o.groupBy, out: o.out, json: o.json,
    })));

  const exportCommand = addLogTableOption(addFilterOptions(addSourceOptions(program.command('export').description('export one window to a file, stdout, an object store or a warehouse'))))
    .option('--name <export>', 'use a configured export (flags override it)')
    .option('--dest <type>', 'the destination type')
    .addOption(new Option('--format <format>', 'json, jsonl, csv, parquet'))
    .option('--gzip', 'gzip the files (Parquet: the GZIP codec)')
    .option('--prefix <template>', 'key prefix, with {year} {month} {day} {hour} {date} {export}')
    .option('--include <groups>', 'add field groups', parseList)
    .option('--fields <list>', 'exact fields', parseList)
    .option('--anonymize <fields>', 'anonymize these fields', parseList)
    .addOption(new Option('--anonymize-method <method>', 'hash (HMAC-SHA256), sha256, redact, drop').choices(['hash', 'sha256', 'redact', 'drop']))
    .option('--hash-key-env <name>', 'environment variable holding the HMAC key')
    .option('--aggregate-by <list>', 'aggregate: group by fields and time buckets', parseList)
    .option('--metrics <list>', 'aggregate: metrics', parseList)
    .option('--add-field <name=value>', 'enrich: add a field (repeatable)', parseKeyValue)
    .option('--max-rows-per-file <n>', 'split files at N rows (default 1,000,000)', parsePositiveInt)
    .addOption(new Option('--no-formula-guard', 'CSV: do not neutralise cells that start with = + - @'))
    .option('--plan', 'show what would be exported, write nothing')
    .option('--json', 'print the result (or the plan) as JSON')
    .addHelpText('after', examples([
      'bifrost-logs export --since 2026-10-01 --until 2026-10-02 --dest file --out ./out --format parquet',
      'bifrost-logs export --since 24h --dest stdout --format csv > day.csv',
      'bifrost-logs export --since 7d --dest s3 --bucket logs --region eu-west-1 --format parquet --gzip',
      'bifrost-logs export --since 30d --dest file --out ./out --aggregate-by date,provider --metrics total_requests,total_cost',
      'BIFROST_LOGS_HASH_KEY=… bifrost-logs export --since 1d --dest file --out ./out --anonymize customer_id --hash-key-env BIFROST_LOGS_HASH_KEY',
    ]))
    .action(action(async (ctx, o) => {
      const destFlags = (await import('./destination-flags.js')).destinationConfigFromFlags(o);
      return (await import('./commands/export.js')).exportCommand(ctx, {
        filters: filterSpecFromFlags(o), name: o.name, dest: o.dest, format: o.format, gzip: o.gzip, prefix: o.prefix,
        include: o.include, fields: o.fields, anonymize: o.anonymize, anonymizeMethod: o.anonymizeMethod, hashKeyEnv: o.hashKeyEnv,
        aggregateBy: o.aggregateBy, metrics: o.metrics, addField: o.addField, maxRowsPerFile: o.maxRowsPerFile,
        formulaGuard: o.formulaGuard, plan: o.plan, json: o.json, destFlags, logTable: logTableFromFlags(o, false),
      });
    }));

  // Its destinations' flags come from the registry, loaded only when `export` is the command (the schemas load zod).
  program.hook('preSubcommand', async (_program, sub) => {
    if (sub === exportCommand) (await import('./destination-flags.js')).addDestinationOptions(exportCommand);
  });

  addSourceOptions(program.command('run').description('the crontab entry: run every export that is due').argument('[names...]', 'only these exports'))
    .option('--plan', 'show the windows that are due, run nothing')
    .option('--json', 'NDJSON run events on stdout')
    .option('--now <time>', 'replace the clock (RFC 3339), for replays and tests')
    .addHelpText('after', examples(['bifrost-logs run --quiet', 'bifrost-logs run daily_s3_export --plan', 'bifrost-logs run --json >> /var/log/bifrost-logs.ndjson']))
    .action(action(async (ctx, o, args) => { await warmFingerprintThread(); return (await import('./commands/run.js')).runCommand(ctx, { names: args, plan: o.plan, json: o.json, now: o.now }); }));

  const jobs = program.command('jobs').description('the ledger of runs')
    .addHelpText('after', examples(['bifrost-logs jobs list --status failed', 'bifrost-logs jobs show 3f2a9c1e', 'bifrost-logs jobs retry 3f2a9c1e']));
  addSourceOptions(jobs.command('list').description('recent runs'))
    .option('--export <name>', 'only this export')
    .option('--status <status>', 'only runs with this status')
    .option('--limit <n>', 'at most N runs (default 50)', parsePositiveInt)
    .option('--json', 'NDJSON')
    .addHelpText('after', examples(['bifrost-logs jobs list', 'bifrost-logs jobs list --export daily_s3_export --status failed --limit 10', 'bifrost-logs jobs list --json | jq -r .run_id']))
    .action(action(async (ctx, o) => (await import('./commands/jobs.js')).jobsListCommand(ctx, o)));
  addSourceOptions(jobs.command('show').description('one run in full').argument('<run-id>'))
    .option('--json', 'JSON')
    .addHelpText('after', examples(['bifrost-logs jobs show 3f2a9c1e          # a run id, or its first 8 characters as jobs list shows them', 'bifrost-logs jobs show 3f2a9c1e --json | jq .manifest.files']))
    .action(action(async (ctx, o, args) => (await import('./commands/jobs.js')).jobsShowCommand(ctx, args[0]!, o)));
  addSourceOptions(jobs.command('retry').description('run a failed window again').argument('<run-id>'))
    .option('--json', 'NDJSON run events')
    .addHelpText('after', examples(['bifrost-logs jobs list --status failed', 'bifrost-logs jobs retry 3f2a9c1e']))
    .action(action(async (ctx, o, args) => (await import('./commands/jobs.js')).jobsRetryCommand(ctx, args[0]!, o)));

  addSourceOptions(program.command('verify').description('re-check delivered files against their manifests and the DB').argument('[name]'))
    .option('--run <run-id>', 'only this run\'s window')
    .option('--json', 'NDJSON results')
    .addHelpText('after', examples(['bifrost-logs verify', 'bifrost-logs verify daily_s3_export', 'bifrost-logs verify --run 3f2a9c1e --json']))
    .action(action(async (ctx, o, args) => { await warmFingerprintThread(); return (await import('./commands/verify.js')).verifyCommand(ctx, { name: args[0], run: o.run, json: o.json }); }));

  addSourceOptions(program.command('check').description('config valid, DB readable, destinations reachable').argument('[name]'))
    .option('--json', 'JSON results')
    .addHelpText('after', examples(['bifrost-logs check', 'bifrost-logs check --config ./bifrost-logs.config.json daily_s3_export', 'bifrost-logs check --json']))
    .action(action(async (ctx, o, args) => (await import('./commands/check.js')).checkCommand(ctx, { name: args[0], json: o.json })));

  addSourceOptions(program.command('init').description('interactive wizard that writes a config file'))
    .option('--out <path>', 'where to write (default ./bifrost-logs.config.json)')
    .addHelpText('after', examples(['bifrost-logs init', 'bifrost-logs init --out ~/.config/bifrost-logs/config.json']))
    .action(action(async (ctx, o) => (await import('./commands/init.js')).initCommand(ctx, { out: o.out })));

  addSourceOptions(program.command('cron').description('print the crontab line to install'))
    .option('--every <duration>', 'how often cron calls run: minutes dividing an hour, hours dividing a day, or 1d', '15m')
    .option('--log <path>', 'log file for the redirect')
    .addHelpText('after', '\nExamples:\n  bifrost-logs cron --config ./bifrost-logs.config.json\n  bifrost-logs cron --every 1h --tz Europe/Berlin\n  bifrost-logs cron --every 1d | crontab -   # replaces your crontab; prefer crontab -e')
    .action(action(async (ctx, o) => (await import('./commands/cron.js')).cronCommand(ctx, { every: o.every, log: o.log })));

  const config = program.command('config').description('config helpers')
    .addHelpText('after', examples(['bifrost-logs config schema > bifrost-logs.schema.json']));
  config.command('schema').description('print the JSON Schema of the config file, for editors')
    .addHelpText('after', examples(['bifrost-logs config schema > bifrost-logs.schema.json   # then "$schema": "./bifrost-logs.schema.json" in the config']))
    .action(action(async (ctx) => (await import('./commands/config-schema.js')).configSchemaCommand(ctx)));

  return program;
}

/** The one top-level handler: errors become a line, a hint and an exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const verbose = argv.includes('--verbose');
  const onSignal = (sig: NodeJS.Signals) => {
    const code = sig === 'SIGINT' ? ExitCode.sigint : ExitCode.sigterm;
    stopProgressBars();
    process.stderr.write(`bifrost-logs: stopped by ${sig}\n`);
    signalCode = code;
    abortAll.abort(new Error(`stopped by ${sig}`));
    // A second signal, or a stuck clean-up, ends the process at once.
    setTimeout(() => process.exit(code), 10_000).unref();
    process.once(sig, () => process.exit(code));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (argv.length <= 2) {
    // Bare `bifrost-logs`: the help, on stdout, exit 0.
    program.outputHelp();
    return ExitCode.ok;
  }
  try {
    await program.parseAsync(argv);
    return signalCode ?? exitCode;
  } catch (err) {
    if (signalCode !== null) {
      await activeCtx?.closeAll();
      return signalCode;
    }
    return reportError(err, verbose, program, argv);
  }
}

/** Aborted on SIGINT/SIGTERM: long work listens to it and cleans up. */
export const abortAll = new AbortController();
let signalCode: number | null = null;

/** The binary's entry: runs `main` and ends the process with its exit code. */
export function start(argv: string[] = process.argv): void {
  // `bifrost-logs … | head` closes our stdout: that is a normal end, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  void main(argv).then((code) => {
    process.exitCode = code;
    // Let stdout drain, then leave even if an SDK keeps a socket open.
    setTimeout(() => process.exit(code), 200).unref();
  });
}
