import Database from 'better-sqlite3';
import { makeStateDir } from './state-dir.js';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { CliError, ExitCode, systemFailure } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { sqliteNativeBinding } from '../util/sqlite-binding.js';

export interface LockInfo {
  pid: number;
  host: string;
  started_at: string;
}

export interface ExportLock {
  readonly info: LockInfo;
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface Row { export: string; pid: number; host: string; started_at: string; token: string; heartbeat_ms: number }

function openLocks(stateDir: string): Database.Database {
  const dir = join(stateDir, 'locks');
  makeStateDir(dir);
  const db = new Database(join(dir, 'locks.db'), { timeout: 15_000, nativeBinding: sqliteNativeBinding() });
  db.exec(`CREATE TABLE IF NOT EXISTS holders (
    export TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL, started_at TEXT NOT NULL,
    token TEXT NOT NULL, heartbeat_ms INTEGER NOT NULL)`);
  return db;
}

function lockError(name: string, err: unknown): CliError {
  const f = systemFailure(err);
  return new CliError(`lock ${name}`, f ? `${f.why}: ${(err as Error).message}` : (err as Error).message, { exitCode: f?.exitCode === ExitCode.tempFail || !f ? ExitCode.tempFail : f.exitCode, cause: err, hint: f?.exitCode === ExitCode.noPerm || f?.exitCode === ExitCode.cantCreate ? 'pass --state-dir DIR (a directory this user can write)' : 'try again later' });
}

/**
 * One lock per export: a row in the state dir's locks database, read and
 * written inside one `BEGIN IMMEDIATE` transaction, so deciding that a holder
 * is dead and taking its place is a single atomic step — when many runs start
 * at once exactly one wins. The row is written in the same step, so there is
 * never a lock without its holder's details. A holder refreshes its heartbeat
 * while it runs; a lock whose process is gone (same host) is taken over at
 * once, one not refreshed within the lock timeout likewise. A stopped
 * (SIGSTOP) holder keeps its lock until then.
 */
export async function acquireExportLock(stateDir: string, exportName: string, timeoutMs: number, log: Logger): Promise<ExportLock> {
  const stale = Math.max(2000, timeoutMs);
  let db: Database.Database;
  try {
    db = openLocks(stateDir);
  } catch (err) {
    throw lockError(exportName, err);
  }
  const info: LockInfo = { pid: process.pid, host: hostname(), started_at: new Date().toISOString() };
  const token = randomUUID();
  let outcome: { held: Row } | { took: Row | undefined };
  try {
    outcome = db.transaction((): { held: Row } | { took: Row | undefined } => {
      const cur = db.prepare('SELECT * FROM holders WHERE export = ?').get(exportName) as Row | undefined;
      if (cur) {
        const dead = cur.host === info.host && !alive(cur.pid);
        const expired = Date.now() - cur.heartbeat_ms > stale;
        if (!dead && !expired) return { held: cur };
      }
      db.prepare('INSERT OR REPLACE INTO holders (export, pid, host, started_at, token, heartbeat_ms) VALUES (?, ?, ?, ?, ?, ?)')
        .run(exportName, info.pid, info.host, info.started_at, token, Date.now());
      return { took: cur };
    }).immediate();
  } catch (err) {
    db.close();
    throw lockError(exportName, err);
  }
  if ('held' in outcome) {
    db.close();
    const who = outcome.held;
    throw new CliError(`run ${exportName}`, `already running (pid ${who.pid} since ${who.started_at}${who.host !== info.host ? ` on ${who.host}` : ''})`, {
      exitCode: ExitCode.tempFail,
      hint: `wait for it to finish; its lock is taken over once its process is gone or it has not been refreshed for ${Math.round(stale / 1000)} s`,
    });
  }
  const prev = outcome.took;
  if (prev) {
    if (prev.host === info.host && !alive(prev.pid)) log.warn(`${exportName}: taking over the lock of pid ${prev.pid} (since ${prev.started_at}), which is no longer running`);
    else log.warn(`${exportName}: took over a lock not refreshed within the lock timeout from pid ${prev.pid}${prev.host !== info.host ? ` on ${prev.host}` : ''} (since ${prev.started_at})`);
  }
  let released = false;
  const beat = setInterval(() => {
    try {
      const r = db.prepare('UPDATE holders SET heartbeat_ms = ? WHERE export = ? AND token = ?').run(Date.now(), exportName, token);
      if (r.changes === 0) {
        clearInterval(beat);
        log.warn(`${exportName}: the lock was taken over by another run; it may be running the same windows`);
      }
    } catch {
      // A busy or briefly unavailable locks database: the next beat tries again.
    }
  }, Math.max(500, Math.min(Math.floor(stale / 3), 30_000)));
  beat.unref();
  const drop = () => {
    clearInterval(beat);
    try {
      db.prepare('DELETE FROM holders WHERE export = ? AND token = ?').run(exportName, token);
    } catch {
      // The lock stays until its process is seen gone.
    }
    try { db.close(); } catch { /* already closed */ }
  };
  const onExit = () => { if (!released) { released = true; drop(); } };
  process.once('exit', onExit);
  return {
    info,
    async release() {
      if (released) return;
      released = true;
      process.removeListener('exit', onExit);
      drop();
    },
  };
}
