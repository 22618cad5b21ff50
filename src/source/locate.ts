import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { CliError, ExitCode } from '../errors.js';
import { rememberSecret, resolveEnvRef, scrubKnownSecrets } from '../util/env-ref.js';
import type pg from 'pg';
import type { ChConnection } from './clickhouse/clickhouse-source.js';

export type SourceSpec =
  | { kind: 'sqlite'; path: string; from: string }
  | { kind: 'postgres'; conn: string | pg.ClientConfig; from: string; requestTimeoutSecs?: number }
  | { kind: 'clickhouse'; conn: ChConnection; from: string; requestTimeoutSecs?: number };

/** Bifrost's `logs_store` block, as its config.json writes it. */
export interface LogsStoreBlock {
  enabled?: boolean;
  type?: string;
  config?: {
    path?: string; host?: string; port?: number | string; user?: string; password?: string; db_name?: string; ssl_mode?: string;
    /** ClickHouse: */ database?: string; username?: string; protocol?: string; secure?: boolean;
  };
}

/** The `source` block of our config: a path, a URL, or a copied `logs_store`. */
export type SourceBlock = { path?: string; url?: string; request_timeout_secs?: number } & LogsStoreBlock;

/** `~` and `~/x` (a quoted path the shell did not expand) are the home directory. */
const expandHome = (p: string) => (p === '~' ? homedir() : p.startsWith('~/') ? join(homedir(), p.slice(2)) : p);

const isPgUrl = (s: string) => /^postgres(ql)?:\/\//i.test(s);
const isChUrl = (s: string) => /^(clickhouses?|https?):\/\//i.test(s);

/** A ClickHouse URL as a connection, its password remembered as a secret. */
function chFromUrl(url: string): ChConnection {
  const u = new URL(url);
  const tls = /^(clickhouses|https):$/i.test(u.protocol) || u.searchParams.get('secure') === 'true';
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  rememberSecret(password);
  return {
    url: `${tls ? 'https' : 'http'}://${u.hostname}:${u.port || (tls ? '8443' : '8123')}`,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password,
    database: decodeURIComponent(u.pathname.replace(/^\/+/, '').split('/')[0] ?? '') || 'default',
  };
}

export function specFromDbArg(db: string, from: string): SourceSpec {
  if (isPgUrl(db)) return { kind: 'postgres', conn: resolveEnvRef(db, from), from };
  if (isChUrl(db)) {
    try {
      return { kind: 'clickhouse', conn: chFromUrl(resolveEnvRef(db, from)), from };
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError('read the ClickHouse URL', `${from}: it is not a valid URL`, { exitCode: ExitCode.usage, hint: 'clickhouse://USER:PASSWORD@HOST:8123/DATABASE' });
    }
  }
  // sqlite:///abs/path, sqlite://./rel, file:///abs/path name a SQLite file.
  const sq = /^(?:sqlite3?|file):(?:\/\/)?(.*)$/i.exec(db);
  if (sq) return { kind: 'sqlite', path: resolve(expandHome(decodeURIComponent(sq[1]!))), from };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(db);
  if (scheme) {
    throw new CliError('open the log DB', `${from}: unsupported scheme "${scheme[1]}:" in ${scrubKnownSecrets(db)}`, {
      exitCode: ExitCode.usage, hint: "Bifrost log stores are SQLite (a path, or sqlite:///path), Postgres (postgres://…) or ClickHouse (clickhouse://…)",
    });
  }
  return { kind: 'sqlite', path: resolve(expandHome(db)), from };
}

/** Turns a logs_store/source block into a spec; relative paths are taken from `baseDir`. */
export function specFromBlock(block: SourceBlock, baseDir: string, from: string): SourceSpec {
  const spec = specFromBlockInner(block, baseDir, from);
  return spec.kind === 'postgres' && block.request_timeout_secs !== undefined ? { ...spec, requestTimeoutSecs: block.request_timeout_secs } : spec;
}

function specFromBlockInner(block: SourceBlock, baseDir: string, from: string): SourceSpec {
  if (block.url) return specFromDbArg(resolveEnvRef(block.url, `${from}.url`), from);
  if (block.path) return { kind: 'sqlite', path: resolve(baseDir, resolveEnvRef(block.path, `${from}.path`)), from };
  const type = (block.type ?? 'sqlite').toLowerCase();
  const c = block.config ?? {};
  if (type === 'postgres') {
    const password = c.password !== undefined ? resolveEnvRef(String(c.password), `${from}.config.password`) : undefined;
    rememberSecret(password);
    const ssl = (c.ssl_mode ?? 'disable').toLowerCase();
    return {
      kind: 'postgres', from,
      conn: {
        host: c.host ? resolveEnvRef(String(c.host), `${from}.config.host`) : 'localhost',
        port: c.port !== undefined ? Number(resolveEnvRef(String(c.port), `${from}.config.port`)) : 5432,
        user: c.user ? resolveEnvRef(String(c.user), `${from}.config.user`) : undefined,
        password,
        database: c.db_name ? resolveEnvRef(String(c.db_name), `${from}.config.db_name`) : undefined,
        ssl: ssl === 'disable' || ssl === '' ? false : { rejectUnauthorized: ssl === 'verify-full' || ssl === 'verify-ca' },
      },
    };
  }
  if (type === 'clickhouse') {
    const v = (x: unknown, field: string) => (x === undefined || x === null || x === '' ? undefined : resolveEnvRef(String(x), `${from}.config.${field}`));
    const password = v(c.password, 'password');
    rememberSecret(password);
    // Always HTTP(S): Bifrost's native protocol (9000/9440) maps to the server's HTTP port (8123/8443).
    const tls = c.secure === true;
    const http = (c.protocol ?? '').toLowerCase() === 'http';
    const port = http && c.port !== undefined ? v(c.port, 'port') : tls ? '8443' : '8123';
    return {
      kind: 'clickhouse', from,
      conn: { url: `${tls ? 'https' : 'http'}://${v(c.host, 'host') ?? 'localhost'}:${port}`, username: v(c.username ?? c.user, 'username'), password, database: v(c.database ?? c.db_name, 'database') ?? 'default' },
    };
  }
  if (type === 'sqlite') {
    const p = c.path ? resolveEnvRef(c.path, `${from}.config.path`) : 'logs.db';
    return { kind: 'sqlite', path: isAbsolute(p) ? p : resolve(baseDir, p), from };
  }
  throw new CliError('find the log DB', `${from}: unsupported logs_store type "${block.type}"`, { exitCode: ExitCode.config, hint: 'Bifrost log stores are "sqlite", "postgres" or "clickhouse"' });
}

/** Reads Bifrost's config.json (JSON with env. references left unresolved). */
export function readBifrostConfig(path: string): Record<string, any> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError('read the Bifrost config', `${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { exitCode: ExitCode.noInput });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError('read the Bifrost config', `${path}: invalid JSON (${(err as Error).message})`, { exitCode: ExitCode.config });
  }
}

export function specFromBifrostConfig(path: string): SourceSpec | null {
  const cfg = readBifrostConfig(path);
  const store = cfg.logs_store as LogsStoreBlock | undefined;
  if (!store) return null;
  return specFromBlock(store, dirname(resolve(path)), `${path} logs_store`);
}

export interface LocateOptions {
  db?: string;
  bifrostConfig?: string;
  /** The `source` block of the loaded config file, with that file's path. */
  configSource?: { block: SourceBlock; file: string };
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  home?: string;
}

/**
 * Finds the log DB: --db, --bifrost-config, BIFROST_LOGS_DB, the config
 * file's source, Bifrost's config.json in its app dirs, then the default
 * logs.db files. The error lists every place tried.
 */
export function locateSource(o: LocateOptions): SourceSpec {
  const env = o.env ?? process.env;
  const cwd = o.cwd ?? process.cwd();
  const home = o.home ?? homedir();
  if (o.db) return specFromDbArg(o.db, '--db');
  if (o.bifrostConfig) {
    const s = specFromBifrostConfig(o.bifrostConfig);
    if (s) return s;
    throw new CliError('find the log DB', `${o.bifrostConfig} has no logs_store block`, { exitCode: ExitCode.noInput, hint: 'pass --db PATH_OR_URL' });
  }
  const tried: string[] = ['--db (not given)'];
  if (env.BIFROST_LOGS_DB) return specFromDbArg(env.BIFROST_LOGS_DB, 'BIFROST_LOGS_DB');
  tried.push('$BIFROST_LOGS_DB (not set)');
  if (o.configSource) return specFromBlock(o.configSource.block, dirname(o.configSource.file), `${o.configSource.file} source`);
  tried.push('config file source (none)');
  for (const dir of [join(home, '.config', 'bifrost'), '/app/data']) {
    const cfg = join(dir, 'config.json');
    if (existsSync(cfg)) {
      const s = specFromBifrostConfig(cfg);
      if (s) return s;
      tried.push(`${cfg} (no logs_store)`);
    } else tried.push(`${cfg} (not found)`);
  }
  for (const p of [join(home, '.config', 'bifrost', 'logs.db'), join(cwd, 'logs.db')]) {
    if (existsSync(p)) return { kind: 'sqlite', path: p, from: p };
    tried.push(`${p} (not found)`);
  }
  throw new CliError('find the log DB', `no log DB found; tried ${tried.join(', ')}`, {
    exitCode: ExitCode.noInput,
    hint: 'pass --db PATH_OR_URL, --bifrost-config PATH, or set BIFROST_LOGS_DB',
  });
}
