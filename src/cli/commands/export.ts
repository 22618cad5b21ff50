import { randomUUID } from 'node:crypto';
import { CliError, ExitCode, usageError } from '../../errors.js';
import { DESTINATION_TYPES, destinationModule, type DestinationType } from '../../destination/index.js';
import type { ExportConfig, TransformConfig } from '../../config/schema.js';
import { mergeFilterSpecs, resolveFilter, type FilterSpec } from '../../source/filter-spec.js';
import { buildJob, type ExportJob, type JobOverrides } from '../../run/job.js';
import { recipeText, type AdhocRecipe } from '../../run/adhoc.js';
import { exportWindow, keyParts } from '../../run/export-window.js';
import { manifestKey, partKey } from '../../run/keys.js';
import { openDestination } from '../../run/destinations.js';
import { openLedger } from '../../run/ledger.js';
import { stateDir } from '../../run/state-dir.js';
import type { Ctx } from '../context.js';
import { suggest } from '../../util/suggest.js';
import { isoMs } from '../../util/time.js';
import type { LogTableName } from '../../source/log-table.js';
import { count, humanBytes } from '../../util/format.js';
import { destLocation } from '../../run/dest-location.js';

export interface ExportOptions {
  filters: FilterSpec;
  name?: string;
  dest?: string;
  format?: string;
  gzip?: boolean;
  prefix?: string;
  include?: string[];
  fields?: string[];
  anonymize?: string[];
  anonymizeMethod?: 'hash' | 'sha256' | 'redact' | 'drop';
  hashKeyEnv?: string;
  aggregateBy?: string[];
  metrics?: string[];
  addField?: Record<string, string>;
  maxRowsPerFile?: number;
  formulaGuard?: boolean;
  plan?: boolean;
  json?: boolean;
  /** Destination flags (`--out` too), in the config's words. */
  destFlags: Record<string, unknown>;
  /** --log-table (else the export's data.table, else logs). */
  logTable?: LogTableName;
}

function adHocTransforms(o: ExportOptions): TransformConfig[] | undefined {
  const mcp = o.logTable === 'mcp_tool_logs';
  const t: TransformConfig[] = [];
  if (o.anonymize?.length) {
    const method = o.anonymizeMethod ?? 'hash';
    if (method === 'hash' && !o.hashKeyEnv) throw usageError('set up --anonymize', 'the hash method needs a key', 'pass --hash-key-env NAME (an environment variable holding the key), or --anonymize-method sha256|redact|drop');
    t.push({ type: 'anonymize', fields: o.anonymize, method, key: o.hashKeyEnv ? `env.${o.hashKeyEnv}` : undefined });
  }
  if (o.addField && Object.keys(o.addField).length) t.push({ type: 'enrich', add_fields: o.addField });
  if (o.aggregateBy || o.metrics) {
    t.push({ type: 'aggregate', group_by: o.aggregateBy ?? [], metrics: o.metrics ?? (mcp ? ['calls', 'success_rate', 'avg_latency', 'total_cost'] : ['total_requests', 'success_rate', 'avg_latency', 'total_tokens', 'total_cost']) });
  }
  return t.length ? t : undefined;
}

/**
 * An ad-hoc destination is configured by flags, so what its config lacks or
 * gets wrong is said in flags (`--dest s3 needs --bucket`), exit 64.
 */
const andList = (xs: string[]) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);

function checkDestinationFlags(destType: DestinationType, config: Record<string, unknown>): void {
  const m = destinationModule(destType);
  const r = m.schema.safeParse(config, { reportInput: true });
  if (r.success) return;
  const flagOf = new Map(m.flags.map((f) => [f.key, f.flag.split(' ')[0]!]));
  const missing: string[] = [];
  const wrong: string[] = [];
  for (const i of r.error.issues) {
    const flag = flagOf.get(String(i.path[0] ?? ''));
    if (!flag) continue;
    if (i.code === 'invalid_type' && (i as { input?: unknown }).input === undefined) missing.push(flag);
    else wrong.push(`${flag}: ${i.message}`);
  }
  if (missing.length) throw usageError('parse the command line', `--dest ${destType} needs ${andList([...new Set(missing)])}`, 'see bifrost-logs export --help, or configure the export in a config file and pass --name');
  if (wrong.length) throw usageError('parse the command line', `--dest ${destType}: ${wrong.join('; ')}`, 'see bifrost-logs export --help');
}

/** Builds the job for `export`: a configured export by --name, or ad hoc from flags. */
export async function exportJobFromFlags(ctx: Ctx, o: ExportOptions): Promise<{ job: ExportJob; recipe: AdhocRecipe }> {
  const destType = o.dest as DestinationType | undefined;
  if (destType && !DESTINATION_TYPES.includes(destType)) {
    const s = suggest(destType, DESTINATION_TYPES);
    throw usageError('parse --dest', `unknown destination "${o.dest}"${s ? ` (did you mean "${s}"?)` : ''}`, `destinations: ${DESTINATION_TYPES.join(', ')}`);
  }
  const destConfig: Record<string, unknown> = { ...o.destFlags };
  const overrides: JobOverrides = {
    table: o.logTable, format: o.format, gzip: o.gzip, include: o.include, fields: o.fields, filters: o.filters,
    transforms: adHocTransforms(o), destType, destConfig, maxRowsPerFile: o.maxRowsPerFile, formulaGuard: o.formulaGuard, prefix: o.prefix,
    timezone: ctx.global.tz !== undefined ? ctx.tz : undefined,
  };
  let base: ExportConfig;
  let at = 'export';
  if (o.name) {
    const cfg = await ctx.config();
    const i = cfg?.logExports.exports.findIndex((e) => e.name === o.name) ?? -1;
    if (!cfg || i < 0) {
      const s = cfg ? suggest(o.name, cfg.logExports.exports.map((e) => e.name)) : undefined;
      throw new CliError('find the export', `no export named "${o.name}" in ${cfg ? cfg.file : 'any config file'}${s ? ` (did you mean "${s}"?)` : ''}`, { exitCode: ExitCode.config });
    }
    base = cfg.logExports.exports[i]!;
    at = `log_exports.exports[${i}]`;
  } else {
    if (!destType) throw usageError('parse the command line', '--dest is required without --name', 'e.g. --dest file --out ./out, or --dest stdout');
    // An ad-hoc export is named after its table: its keys, manifest and ledger rows say which table they hold.
    base = { name: o.logTable ?? 'logs', enabled: true, destination: { type: destType, config: {} } as ExportConfig['destination'], data: { format: 'jsonl', compression: 'none' } };
  }
  if (destType === 'file' && !destConfig.path && !(base.destination as { config?: { path?: string } }).config?.path) {
    throw usageError('parse the command line', '--dest file needs --out DIR');
  }
  if (!o.name) checkDestinationFlags(destType!, destConfig);
  return { job: buildJob(base, undefined, at, overrides, ctx.env), recipe: { export: base, overrides } };
}

/** `bifrost-logs export`: one window [--since, --until), delivered with a manifest. */
export async function exportCommand(ctx: Ctx, o: ExportOptions): Promise<number> {
  const { job, recipe } = await exportJobFromFlags(ctx, o);
  const now = ctx.now();
  const spec = mergeFilterSpecs(job.filterSpec, o.filters);
  const filter = resolveFilter(spec, now, job.timezone);
  const window = { start: filter.start ?? 0, end: filter.end ?? now };
  const { source, spec: sourceSpec } = await ctx.openSource(job.table);
  const upTo = await source.position();
  const baseFilter = { ...filter, start: filter.start, end: window.end, completedOnly: true };

  if (o.plan) {
    const rows = await source.count(baseFilter, { upTo });
    const kp = keyParts(job, window);
    const planned = {
      export: job.name, destination: job.destType, format: job.format.name, compression: job.compression,
      window: { start: filter.start !== undefined ? isoMs(window.start) : null, end: isoMs(window.end) },
      estimated_rows: rows,
      estimated_files: rows ? Math.ceil(rows / job.maxRowsPerFile) : 0,
      manifest_key: manifestKey(kp),
      first_key: partKey(kp, 'part', 1, job.format.extension, job.compression === 'gzip' && job.format.wrapsGzip),
    };
    if (o.json) await ctx.out.write(JSON.stringify(planned) + '\n');
    else await ctx.out.write(`export ${planned.export} → ${planned.destination} (${planned.format}${job.compression === 'gzip' ? ', gzip' : ''})\n  window   ${planned.window.start ?? '(beginning)'} → ${planned.window.end}\n  rows     ~${rows} (COUNT now)\n  files    ${planned.estimated_files}\n  manifest ${planned.manifest_key}\n`);
    return 0;
  }

  if (job.destType === 'stdout' && job.format.name === 'parquet' && ctx.out.isTTY) {
    throw usageError('write Parquet to stdout', 'stdout is a terminal, and Parquet is binary', 'redirect it (> logs.parquet), pipe it, or use --dest file --out DIR');
  }
  const { dest } = await openDestination(ctx, job);
  const runId = randomUUID();
  const progress = ctx.progress(job.name);
  if (progress.enabled) progress.start(await source.count(baseFilter, { upTo }));
  const started = Date.now();
  const ledger = dest.kind === 'stream' ? null : await openLedger(stateDir(ctx)).catch((err) => { ctx.log.warn(`the ledger is not available, the run is not recorded: ${(err as Error).message}`); return null; });
  const id = ledger?.begin({ runId, export: job.name, window, kind: 'adhoc', destination: job.destType, recipe: recipeText({ ...recipe, sqlitePath: sourceSpec.kind === 'sqlite' ? sourceSpec.path : undefined }) });
  try {
    const r = await exportWindow({ job, source, dest, window, runId, upTo, baseFilter, now, signal: ctx.signal, onRows: (n) => progress.tick(n), onVerbose: (m) => ctx.log.verbose(m) });
    progress.stop();
    if (id !== undefined) ledger!.succeed(id, { rows: r.rows, bytes: r.bytes, files: r.parts.length, position: r.position, pendingIds: r.pendingIds, manifest: r.manifest, manifestKey: r.manifestKey });
    const secs = (Date.now() - started) / 1000;
    if (r.warnings.malformedJson && !ctx.log.isQuiet) ctx.log.warn(`${r.warnings.malformedJson} malformed JSON cell(s) exported as text (e.g. ${r.warnings.samples.join('; ')})`);
    if (dest.kind !== 'stream') {
      if (o.json) await ctx.out.write(JSON.stringify({ event: 'finished', export: job.name, run_id: runId, rows: r.rows, files: r.parts.map((p) => p.key), bytes: r.bytes, manifest: r.manifestKey, seconds: secs, still_processing: r.pendingIds.count }) + '\n');
      else ctx.log.info(`${job.name}: ${count(r.rows, 'row')}, ${count(r.parts.length, 'file')}, ${humanBytes(r.bytes)} in ${secs.toFixed(1)}s → ${destLocation(job)} (manifest ${r.manifestKey})`);
    }
    // Rows the gateway has not finished are left out of an export; say so, so "48,503 of 50,000" is not a mystery.
    const pending = r.pendingIds.count;
    if (pending && !o.json) ctx.log.info(`${job.name}: ${pending.toLocaleString('en-US')} ${pending === 1 ? 'row is' : 'rows are'} still processing in the gateway and ${pending === 1 ? 'was' : 'were'} left out; a scheduled export (run) delivers ${pending === 1 ? 'it' : 'them'} once finished`);
    return 0;
  } catch (err) {
    progress.stop();
    if (id !== undefined) ledger!.fail(id, ctx.signal.aborted ? ctx.signal.reason ?? err : err);
    throw err;
  } finally {
    ledger?.close();
    await dest.close();
  }
}
