import type { Logger } from './log.js';
import type { DataOut } from './output.js';
import { createProgress } from './progress.js';
import { printError } from './report-error.js';
import type { EngineContext } from '../run/context.js';
import { locateSource, type SourceSpec } from '../source/locate.js';
import { openSource } from '../source/open.js';
import type { LogSource } from '../source/types.js';
import type { LoadedConfig } from '../config/load.js';
import { isValidZone } from '../util/time.js';
import { type CliError, usageError } from '../errors.js';

/** Global flags every command sees. */
export interface GlobalOptions {
  quiet?: boolean;
  verbose?: boolean;
  progress?: boolean;
  stateDir?: string;
  tz?: string;
  db?: string;
  bifrostConfig?: string;
  config?: string;
}

/** A command's context: the engine's, and the command line's flags, stdout, config and log DB. */
export interface Ctx extends EngineContext {
  readonly out: DataOut;
  readonly global: GlobalOptions;
  /** The configured timezone (--tz, else UTC). */
  readonly tz: string;
  /** Loads the config file once (null when there is none). */
  config(): Promise<LoadedConfig | null>;
  /** Locates and opens the log DB. */
  openSource(): Promise<{ source: LogSource; spec: SourceSpec }>;
  /** Things to close at exit. */
  onClose(fn: () => Promise<void> | void): void;
}

export function createCtx(global: GlobalOptions, log: Logger, out: DataOut, signal: AbortSignal = new AbortController().signal, env: NodeJS.ProcessEnv = process.env): Ctx & { closeAll(): Promise<void> } {
  const tz = global.tz ?? 'UTC';
  if (!isValidZone(tz)) throw usageError('parse --tz', `unknown timezone "${tz}"`, 'use an IANA name such as Europe/Berlin or UTC');
  const closers: Array<() => Promise<void> | void> = [];
  let cfg: Promise<LoadedConfig | null> | null = null;
  const ctx = {
    log, out, global, env, tz, signal,
    now: () => Date.now(),
    events: null,
    stateDirFlag: global.stateDir,
    progress: (label: string) => createProgress(global, label),
    reportFailure: (label: string, err: CliError) => printError(err, { verbose: log.isVerbose, label }),
    config(): Promise<LoadedConfig | null> {
      // Loaded on first use: the config code (cosmiconfig, zod) is most of the CLI's start-up.
      cfg ??= import('../config/load.js').then((m) => m.loadConfig({ configPath: global.config, bifrostConfig: global.bifrostConfig, env }));
      return cfg;
    },
    async openSource() {
      // --db, --bifrost-config and $BIFROST_LOGS_DB come before the config file's source: no need to load it.
      const loaded = global.db || global.bifrostConfig || env.BIFROST_LOGS_DB ? null : await ctx.config();
      const spec = locateSource({
        db: global.db,
        bifrostConfig: global.bifrostConfig,
        configSource: loaded?.source ? { block: loaded.source, file: loaded.file } : undefined,
        env,
      });
      log.verbose(`reading ${spec.kind === 'sqlite' ? spec.path : spec.kind} (from ${spec.from})`);
      const source = await openSource(spec);
      closers.push(() => source.close());
      return { source, spec };
    },
    onClose(fn: () => Promise<void> | void) { closers.push(fn); },
    async closeAll() {
      for (const fn of closers.reverse()) await Promise.resolve(fn()).catch(() => {});
      closers.length = 0;
    },
  };
  return ctx;
}
