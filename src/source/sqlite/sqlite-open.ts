import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { CliError, ExitCode, systemFailure } from '../../errors.js';
import type { LogTableName } from '../log-table.js';
import { missingCoreColumns, type DetectedSchema } from '../schema.js';
import { registerPercentile } from './percentile-function.js';
import { sqliteNativeBinding } from '../../util/sqlite-binding.js';

export interface OpenedSqlite {
  db: Database.Database;
  schema: DetectedSchema;
  timestampIndex: string | null;
}

/**
 * Opens a Bifrost SQLite log DB read-only and checks it is one: the file, the
 * table and its core columns; a WAL DB whose -shm cannot be made is named as
 * such (77), never "not a SQLite database".
 */
export function openSqliteLogDb(path: string, table: LogTableName): OpenedSqlite {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new CliError('open the log DB', `${path} does not exist`, { exitCode: ExitCode.noInput, hint: 'pass --db PATH, or set BIFROST_LOGS_DB' });
  }
  if (!st.isFile()) throw new CliError('open the log DB', `${path} is not a file`, { exitCode: ExitCode.noInput });
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true, nativeBinding: sqliteNativeBinding() });
    // The gateway holds the write lock in bursts; wait rather than fail.
    db.pragma('busy_timeout = 10000');
    db.pragma('query_only = 1');
  } catch (err) {
    const sys = systemFailure(err);
    throw new CliError('open the log DB', `${path}: ${(err as Error).message}`, { exitCode: sys && sys.exitCode !== ExitCode.cantCreate ? sys.exitCode : ExitCode.noInput, hint: sys?.hint, cause: err });
  }
  try {
    const info = db.prepare(`PRAGMA table_info("${table}")`).all() as Array<{ name: string }>;
    if (!info.length) {
      throw new CliError('open the log DB', `${path} is not a Bifrost log DB (it has no "${table}" table)`, { exitCode: ExitCode.noInput, hint: 'point --db at the gateway\'s logs.db (in ~/.config/bifrost or /app/data)' });
    }
    const columns = new Set(info.map((c) => c.name));
    const missing = missingCoreColumns(columns, table);
    if (missing.length) {
      throw new CliError('open the log DB', `${path} is not a Bifrost log DB (table "${table}" lacks ${missing.join(', ')})`, { exitCode: ExitCode.noInput });
    }
    // Reads are scans, which the OS page cache serves: a 2 MB page cache per connection (better-sqlite3's
    // default is 16 MB, in every encoding thread) keeps memory flat.
    db.pragma('cache_size = -2048');
    registerPercentile(db);
    return { db, schema: { columns, types: new Map(), hasIncNumber: false, table }, timestampIndex: findTimestampIndex(db, table) };
  } catch (err) {
    db.close();
    if (err instanceof CliError) throw err;
    const code = (err as { code?: string }).code ?? '';
    if (code === 'SQLITE_READONLY_DIRECTORY' || code === 'SQLITE_READONLY_CANTINIT' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY_CANTLOCK') {
      // A WAL DB needs its shared-memory file (logs.db-shm): while the gateway runs it exists; when the
      // gateway is stopped SQLite must create it, which needs write access to the directory.
      const dir = dirname(path);
      throw new CliError('open the log DB', `${path} is in WAL mode and ${basename(path)}-shm ${existsSync(`${path}-shm`) ? 'is not readable by this user' : 'does not exist'}; SQLite must create it in ${dir}, which this user may not write`, {
        exitCode: ExitCode.noPerm,
        hint: `run while the gateway is running (it keeps ${basename(path)}-shm), give this user write access to ${dir} (e.g. through the gateway's group), or export from a copy made with "sqlite3 ${path} '.backup COPY.db'"`,
        cause: err,
      });
    }
    const sys = systemFailure(err);
    if (sys && sys.exitCode !== ExitCode.noInput) throw new CliError('open the log DB', `${path}: ${sys.why}: ${(err as Error).message}`, { exitCode: sys.exitCode, hint: sys.hint, cause: err });
    const msg = (err as Error).message;
    throw new CliError('open the log DB', `${path} is not a SQLite database (${msg})`, { exitCode: ExitCode.noInput, cause: err });
  }
}

/** The index whose first column is timestamp (not a partial one), for ordered and windowed reads. */
function findTimestampIndex(db: Database.Database, table: LogTableName): string | null {
  const list = db.prepare(`PRAGMA index_list("${table}")`).all() as Array<{ name: string; partial: number }>;
  for (const ix of list) {
    if (ix.partial) continue;
    const cols = db.prepare(`PRAGMA index_info("${ix.name.replace(/"/g, '""')}")`).all() as Array<{ name: string }>;
    if (cols[0]?.name === 'timestamp') return ix.name;
  }
  return null;
}
