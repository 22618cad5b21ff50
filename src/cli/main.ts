import { Command, CommanderError, Option } from 'commander';
import { CliError, ExitCode, systemFailure } from '../errors.js';
import { scrubKnownSecrets } from '../util/env-ref.js';
import { VERSION } from '../version.js';
import { createCtx, type Ctx, type GlobalOptions } from './context.js';
import { createLogger } from './log.js';
import { createStdout, PipeClosed } from './output.js';
import { logTableFromFlags } from './log-table-flag.js';
import { addFilterOptions, addLogTableOption, addSourceOptions, filterSpecFromFlags, parseBool, parseKeyValue, parseList, parseNonNegInt, parsePositiveInt } from './options.js';

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

  const query = addLogTableOption(addFilterOptions(addSourceOptions(program.command('query').description('print log records (table on a TTY, NDJSON in a pipe)'))))
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
  void query;

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

  addLogTableOption(addFilterOptions(addSourceOptions(program.command('export').description('export one window to a file, stdout, an object store or a warehouse'))))
    .option('--name <export>', 'use a configured export (flags override it)')
    .option('--dest <type>', 'file, stdout, s3, gcs, azure_blob, bigquery, snowflake, redshift, postgres')
    .addOption(new Option('--format <format>', 'json, jsonl, csv, parquet'))
    .option('--gzip', 'gzip the files (Parquet: the GZIP codec)')
    .option('--out <dir>', 'output directory for --dest file')
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
    .option('--bucket <name>', 's3/gcs: bucket')
    .option('--region <region>', 's3: region')
    .option('--endpoint <url>', 's3/azure_blob: endpoint (MinIO, R2, Azurite)')
    .addOption(new Option('--force-path-style [bool]', 's3: path-style addressing').argParser(parseBool))
    .option('--sse <mode>', 's3: server-side encryption (AES256, aws:kms)')
    .option('--api-endpoint <url>', 'gcs/bigquery: API endpoint')
    .option('--container <name>', 'azure_blob: container')
    .option('--account-name <name>', 'azure_blob: storage account')
    .option('--connection-string <value>', 'azure_blob: connection string (prefer env.NAME)')
    .option('--url <url>', 'postgres: connection URL')
    .option('--schema <name>', 'postgres/redshift/snowflake: schema')
    .option('--table <name>', 'warehouses: table')
    .option('--project-id <id>', 'bigquery: project')
    .option('--dataset <name>', 'bigquery: dataset')
    .option('--location <loc>', 'bigquery: location')
    .option('--host <host>', 'redshift: host')
    .option('--port <port>', 'redshift: port', parsePositiveInt)
    .option('--database <name>', 'redshift/snowflake: database')
    .option('--account <name>', 'snowflake: account')
    .option('--warehouse <name>', 'snowflake: warehouse')
    .addHelpText('after', examples([
      'bifrost-logs export --since 2026-10-01 --until 2026-10-02 --dest file --out ./out --format parquet',
      'bifrost-logs export --since 24h --dest stdout --format csv > day.csv',
      'bifrost-logs export --since 7d --dest s3 --bucket logs --region eu-west-1 --format parquet --gzip',
      'bifrost-logs export --since 30d --dest file --out ./out --aggregate-by date,provider --metrics total_requests,total_cost',
      'BIFROST_LOGS_HASH_KEY=… bifrost-logs export --since 1d --dest file --out ./out --anonymize customer_id --hash-key-env BIFROST_LOGS_HASH_KEY',
    ]))
    .action(action(async (ctx, o) => {
      const destFlags: Record<string, unknown> = {};
      const map: Record<string, string> = {
        bucket: 'bucket', region: 'region', endpoint: 'endpoint', forcePathStyle: 'force_path_style', sse: 'sse', apiEndpoint: 'api_endpoint',
        container: 'container', accountName: 'account_name', connectionString: 'connection_string', url: 'url', schema: 'schema', table: 'table',
        projectId: 'project_id', dataset: 'dataset', location: 'location', host: 'host', port: 'port', database: 'database', account: 'account', warehouse: 'warehouse',
      };
      for (const [flag, key] of Object.entries(map)) if (o[flag] !== undefined) destFlags[key] = o[flag];
      return (await import('./commands/export.js')).exportCommand(ctx, {
        filters: filterSpecFromFlags(o), name: o.name, dest: o.dest, format: o.format, gzip: o.gzip, out: o.out, prefix: o.prefix,
        include: o.include, fields: o.fields, anonymize: o.anonymize, anonymizeMethod: o.anonymizeMethod, hashKeyEnv: o.hashKeyEnv,
        aggregateBy: o.aggregateBy, metrics: o.metrics, addField: o.addField, maxRowsPerFile: o.maxRowsPerFile,
        formulaGuard: o.formulaGuard, plan: o.plan, json: o.json, destFlags, logTable: logTableFromFlags(o, false),
      });
    }));

  addSourceOptions(program.command('run').description('the crontab entry: run every export that is due').argument('[names...]', 'only these exports'))
    .option('--plan', 'show the windows that are due, run nothing')
    .option('--json', 'NDJSON run events on stdout')
    .option('--now <time>', 'replace the clock (RFC 3339), for replays and tests')
    .addHelpText('after', examples(['bifrost-logs run --quiet', 'bifrost-logs run daily_s3_export --plan', 'bifrost-logs run --json >> /var/log/bifrost-logs.ndjson']))
    .action(action(async (ctx, o, args) => (await import('./commands/run.js')).runCommand(ctx, { names: args, plan: o.plan, json: o.json, now: o.now })));

  const jobs = program.command('jobs').description('the ledger of runs');
  addSourceOptions(jobs.command('list').description('recent runs'))
    .option('--export <name>', 'only this export')
    .option('--status <status>', 'only runs with this status')
    .option('--limit <n>', 'at most N runs (default 50)', parsePositiveInt)
    .option('--json', 'NDJSON')
    .action(action(async (ctx, o) => (await import('./commands/jobs.js')).jobsListCommand(ctx, o)));
  addSourceOptions(jobs.command('show').description('one run in full').argument('<run-id>'))
    .option('--json', 'JSON')
    .action(action(async (ctx, o, args) => (await import('./commands/jobs.js')).jobsShowCommand(ctx, args[0]!, o)));
  addSourceOptions(jobs.command('retry').description('run a failed window again').argument('<run-id>'))
    .option('--json', 'NDJSON run events')
    .action(action(async (ctx, o, args) => (await import('./commands/jobs.js')).jobsRetryCommand(ctx, args[0]!, o)));

  addSourceOptions(program.command('verify').description('re-check delivered files against their manifests and the DB').argument('[name]'))
    .option('--run <run-id>', 'only this run\'s window')
    .option('--json', 'NDJSON results')
    .action(action(async (ctx, o, args) => (await import('./commands/verify.js')).verifyCommand(ctx, { name: args[0], run: o.run, json: o.json })));

  addSourceOptions(program.command('check').description('config valid, DB readable, destinations reachable').argument('[name]'))
    .option('--json', 'JSON results')
    .action(action(async (ctx, o, args) => (await import('./commands/check.js')).checkCommand(ctx, { name: args[0], json: o.json })));

  addSourceOptions(program.command('init').description('interactive wizard that writes a config file'))
    .option('--out <path>', 'where to write (default ./bifrost-logs.config.json)')
    .action(action(async (ctx, o) => (await import('./commands/init.js')).initCommand(ctx, { out: o.out })));

  addSourceOptions(program.command('cron').description('print the crontab line to install'))
    .option('--every <duration>', 'how often cron calls run: minutes dividing an hour, hours dividing a day, or 1d', '15m')
    .option('--log <path>', 'log file for the redirect')
    .addHelpText('after', '\nExamples:\n  bifrost-logs cron --config ./bifrost-logs.config.json\n  bifrost-logs cron --every 1h --tz Europe/Berlin\n  bifrost-logs cron --every 1d | crontab -   # replaces your crontab; prefer crontab -e')
    .action(action(async (ctx, o) => (await import('./commands/cron.js')).cronCommand(ctx, { every: o.every, log: o.log })));

  const config = program.command('config').description('config helpers');
  config.command('schema').description('print the JSON Schema of the config file, for editors')
    .action(action(async (ctx) => (await import('./commands/config-schema.js')).configSchemaCommand(ctx)));

  return program;
}

/** The subcommand named on the command line (`export`, `jobs list`), for a help hint. */
function commandPath(program: Command, argv: string[]): string {
  const names: string[] = [];
  let cmd: Command = program;
  for (const a of argv.slice(2)) {
    if (a.startsWith('-')) continue;
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!sub) break;
    names.push(sub.name());
    cmd = sub;
  }
  return ['bifrost-logs', ...names].join(' ');
}

function report(err: unknown, verbose: boolean, program?: Command, argv: string[] = []): number {
  if (err instanceof PipeClosed) return ExitCode.ok;
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
    // One line: the suggestion stays on it, in our words.
    const msg = err.message.replace(/^error: /, '').replace(/\s*\(Did you mean (.+?)\?\)\s*$/s, ' (did you mean $1?)').replace(/\s*\n\s*/g, ' ').trim();
    process.stderr.write(`bifrost-logs: could not parse the command line: ${msg}\n`);
    const where = program ? commandPath(program, argv) : 'bifrost-logs';
    if (err.code !== 'commander.executeSubCommandAsync') process.stderr.write(`hint: see ${where} --help\n`);
    return ExitCode.usage;
  }
  if (err instanceof CliError) {
    const problems = (err as { problems?: string[] }).problems;
    if (problems && problems.length > 1) {
      process.stderr.write(scrubKnownSecrets(`bifrost-logs: could not ${err.action}: ${problems.length} problems\n${problems.map((p) => `  ${p}`).join('\n')}\n`));
    } else process.stderr.write(scrubKnownSecrets(`bifrost-logs: ${err.message}\n`));
    if (err.detail) process.stderr.write(scrubKnownSecrets(err.detail.replace(/\n?$/, '\n')));
    if (err.hint) process.stderr.write(scrubKnownSecrets(`hint: ${err.hint}\n`));
    if (verbose) printCauses(err);
    return err.exitCode;
  }
  const sys = systemFailure(err);
  if (sys) {
    process.stderr.write(scrubKnownSecrets(`bifrost-logs: could not finish: ${sys.why}: ${(err as Error)?.message ?? String(err)}\n`));
    process.stderr.write(`hint: ${sys.hint}\n`);
    if (verbose) printCauses(err as Error);
    return sys.exitCode;
  }
  const e = err as Error;
  process.stderr.write(scrubKnownSecrets(`bifrost-logs: could not finish: internal error: ${e?.message ?? String(err)}\n`));
  process.stderr.write('hint: this is a bug; run again with --verbose and report the output\n');
  if (verbose && e?.stack) process.stderr.write(scrubKnownSecrets(e.stack) + '\n');
  return ExitCode.software;
}

function printCauses(err: Error): void {
  let c: unknown = err.cause;
  let depth = 0;
  while (c && depth++ < 8) {
    const e = c as Error;
    process.stderr.write(scrubKnownSecrets(`  caused by: ${e?.message ?? String(c)}\n`));
    c = e?.cause;
  }
}

/** The one top-level handler: errors become a line, a hint and an exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const verbose = argv.includes('--verbose');
  const onSignal = (sig: NodeJS.Signals) => {
    const code = sig === 'SIGINT' ? ExitCode.sigint : ExitCode.sigterm;
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
    return report(err, verbose, program, argv);
  }
}

/** Aborted on SIGINT/SIGTERM: long work listens to it and cleans up. */
export const abortAll = new AbortController();
let signalCode: number | null = null;

// `bifrost-logs … | head` closes our stdout: that is a normal end, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

main(process.argv).then((code) => {
  process.exitCode = code;
  // Let stdout drain, then leave even if an SDK keeps a socket open.
  setTimeout(() => process.exit(code), 200).unref();
});
