import Database from 'better-sqlite3';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CliError, ExitCode, systemFailure } from '../errors.js';
import type { PendingIds, SourcePosition, WindowFingerprint } from '../source/types.js';
import { scrubKnownSecrets } from '../util/env-ref.js';
import type { Manifest } from './manifest.js';
import { makeStateDir } from './state-dir.js';
import { sqliteNativeBinding } from '../util/sqlite-binding.js';

export type RunStatus = 'pending' | 'running' | 'success' | 'failed';
export type RunKind = 'window' | 'late' | 'adhoc' | 'unplaced' | 'restate';

export interface RunRow {
  id: number;
  run_id: string;
  export: string;
  kind: RunKind;
  window_start: number;
  window_end: number;
  destination: string | null;
  status: RunStatus;
  attempt: number;
  rows: number | null;
  bytes: number | null;
  files: number | null;
  position_kind: string | null;
  position_value: number | null;
  pending_ids: string | null;
  manifest_key: string | null;
  manifest: string | null;
  started_at: number;
  finished_at: number | null;
  error: string | null;
  pid: number | null;
  host: string | null;
  /** JSON WindowFingerprint of the window's rows as delivered (null: not computed). */
  fingerprint: string | null;
  /** The window's revision this run delivered (null before revisions: 1). */
  revision: number | null;
  /** For restatements: JSON {old, new, rows_changed}. */
  restate: string | null;
  /** For ad-hoc runs: how the export was asked for (JSON AdhocRecipe, secrets scrubbed). */
  recipe: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL UNIQUE,
  export TEXT NOT NULL,
  kind TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  window_end INTEGER NOT NULL,
  destination TEXT,
  status TEXT NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 1,
  rows INTEGER, bytes INTEGER, files INTEGER,
  position_kind TEXT, position_value INTEGER,
  pending_ids TEXT,
  manifest_key TEXT, manifest TEXT,
  started_at INTEGER NOT NULL, finished_at INTEGER,
  error TEXT, pid INTEGER, host TEXT
);
CREATE INDEX IF NOT EXISTS runs_window ON runs(export, window_start, window_end, status);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');
`;

export interface Ledger {
  readonly path: string;
  /** The state dir it lives in. */
  readonly dir: string;
  begin(r: { runId: string; export: string; window: { start: number; end: number }; kind: RunKind; destination: string; recipe?: string }): number;
  succeed(id: number, r: { rows: number; bytes: number; files: number; position: SourcePosition; pendingIds: PendingIds; manifest: Manifest; manifestKey: string; fingerprint?: WindowFingerprint | null; revision?: number; restate?: unknown }): void;
  /** Records a fingerprint for a window delivered before fingerprints existed. */
  setFingerprint(id: number, fp: WindowFingerprint): void;
  fail(id: number, err: unknown): void;
  /** Marks runs left `running` by a dead process as failed (called under the export's lock). */
  reapInterrupted(exportName: string): number;
  /** The newest successful run of each delivered window of an export. */
  delivered(exportName: string): RunRow[];
  /** The latest successful run for one window (its manifest is the window's current manifest). */
  latestForWindow(exportName: string, start: number, end: number): RunRow | undefined;
  get(runId: string): RunRow | undefined;
  /** How far the export's late-row scan has read the source (rows at or before it were placed or reported). */
  scanMark(exportName: string): { position: SourcePosition; processing: string[] } | undefined;
  setScanMark(exportName: string, m: { position: SourcePosition; processing: string[] }): void;
  /** Records rows that no window can take (they fall before the export's first delivered window). */
  noteUnplaced(r: { runId: string; export: string; window: { start: number; end: number }; rows: number; destination: string; position: SourcePosition; message: string }): void;
  list(filter?: { export?: string; status?: string; limit?: number }): RunRow[];
  /** Delivered ad-hoc runs that recorded how they were asked for, oldest first. */
  adhoc(): RunRow[];
  close(): void;
}

export async function openLedger(dir: string): Promise<Ledger> {
  const path = join(dir, 'ledger.db');
  let db: Database.Database;
  makeStateDir(dir);
  try {
    // The wait from the start: after a kill -9 the first opener recovers the WAL under an exclusive lock,
    // and runs started at the same moment must wait for it rather than fail.
    db = new Database(path, { timeout: 15_000, nativeBinding: sqliteNativeBinding() });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(SCHEMA);
    // Additive migration: ledgers from before restatement gain the columns, their rows read as revision 1.
    const have = new Set((db.prepare('PRAGMA table_info(runs)').all() as Array<{ name: string }>).map((c) => c.name));
    for (const [c, t] of [['fingerprint', 'TEXT'], ['revision', 'INTEGER'], ['restate', 'TEXT'], ['recipe', 'TEXT']] as const) {
      if (have.has(c)) continue;
      // Another run may add it between our look and our ALTER.
      try { db.exec(`ALTER TABLE runs ADD COLUMN ${c} ${t}`); } catch (err) { if (!/duplicate column/i.test((err as Error).message)) throw err; }
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const f = systemFailure(err);
    throw new CliError('open the ledger', `${path}: ${f ? `${f.why}: ${e.message}` : e.message}`, { exitCode: f?.exitCode ?? ExitCode.cantCreate, hint: f?.exitCode === ExitCode.tempFail ? f.hint : 'pass --state-dir DIR (a writable directory)', cause: err });
  }
  const host = hostname();
  const wrap = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      const e = err as { code?: string; message: string };
      const f = systemFailure(err);
      throw new CliError(`record the run in the ledger (${what})`, f ? `${f.why}: ${e.message}` : e.message, { exitCode: f?.exitCode ?? ExitCode.software, hint: f?.hint, cause: err });
    }
  };
  return {
    path,
    dir,
    begin(r) {
      return wrap('begin', () => {
        const prev = db.prepare('SELECT COUNT(*) AS n FROM runs WHERE export = ? AND window_start = ? AND window_end = ? AND kind = ?').get(r.export, r.window.start, r.window.end, r.kind) as { n: number };
        const info = db.prepare('INSERT INTO runs (run_id, export, kind, window_start, window_end, destination, status, attempt, started_at, pid, host, recipe) VALUES (?, ?, ?, ?, ?, ?, \'running\', ?, ?, ?, ?, ?)')
          .run(r.runId, r.export, r.kind, r.window.start, r.window.end, r.destination, prev.n + 1, Date.now(), process.pid, host, r.recipe ?? null);
        return Number(info.lastInsertRowid);
      });
    },
    succeed(id, r) {
      wrap('success', () => db.prepare('UPDATE runs SET status = \'success\', rows = ?, bytes = ?, files = ?, position_kind = ?, position_value = ?, pending_ids = CAST(? AS TEXT), manifest_key = ?, manifest = ?, finished_at = ?, error = NULL, fingerprint = ?, revision = ?, restate = ? WHERE id = ?')
        .run(r.rows, r.bytes, r.files, r.position.kind, r.position.value, r.pendingIds.json, r.manifestKey, JSON.stringify(r.manifest), Date.now(), r.fingerprint ? JSON.stringify(r.fingerprint) : null, r.revision ?? 1, r.restate === undefined ? null : JSON.stringify(r.restate), id));
    },
    setFingerprint(id, fp) {
      wrap('fingerprint', () => db.prepare('UPDATE runs SET fingerprint = ? WHERE id = ?').run(JSON.stringify(fp), id));
    },
    fail(id, err) {
      const msg = scrubKnownSecrets(err instanceof Error ? err.message : String(err)).slice(0, 2000);
      try {
        db.prepare('UPDATE runs SET status = \'failed\', error = ?, finished_at = ? WHERE id = ?').run(msg, Date.now(), id);
      } catch { /* the failure itself is reported to the operator */ }
    },
    reapInterrupted(exportName) {
      return wrap('reap', () => db.prepare('UPDATE runs SET status = \'failed\', error = \'interrupted (the process died)\', finished_at = ? WHERE export = ? AND status IN (\'running\', \'pending\')').run(Date.now(), exportName).changes);
    },
    delivered(exportName) {
      return db.prepare(`SELECT * FROM runs r WHERE export = ? AND status = 'success' AND kind IN ('window', 'late', 'restate')
        AND id = (SELECT max(id) FROM runs s WHERE s.export = r.export AND s.window_start = r.window_start AND s.window_end = r.window_end AND s.status = 'success' AND s.kind IN ('window', 'late', 'restate'))
        ORDER BY window_start`).all(exportName) as RunRow[];
    },
    latestForWindow(exportName, start, end) {
      return db.prepare(`SELECT * FROM runs WHERE export = ? AND window_start = ? AND window_end = ? AND status = 'success' AND kind IN ('window', 'late', 'restate', 'adhoc') ORDER BY id DESC LIMIT 1`).get(exportName, start, end) as RunRow | undefined;
    },
    scanMark(exportName) {
      const r = db.prepare('SELECT value FROM meta WHERE key = ?').get(`late_scan:${exportName}`) as { value: string } | undefined;
      return r ? JSON.parse(r.value) as { position: SourcePosition; processing: string[] } : undefined;
    },
    setScanMark(exportName, p) {
      wrap('scan mark', () => db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(`late_scan:${exportName}`, JSON.stringify(p)));
    },
    noteUnplaced(r) {
      wrap('unplaced rows', () => db.prepare('INSERT INTO runs (run_id, export, kind, window_start, window_end, destination, status, attempt, rows, bytes, files, position_kind, position_value, started_at, finished_at, error, pid, host) VALUES (?, ?, \'unplaced\', ?, ?, ?, \'success\', 1, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?)')
        .run(r.runId, r.export, r.window.start, r.window.end, r.destination, r.rows, r.position.kind, r.position.value, Date.now(), Date.now(), r.message, process.pid, host));
    },
    get(runId) {
      return db.prepare('SELECT * FROM runs WHERE run_id = ? OR run_id LIKE ? ORDER BY id DESC LIMIT 1').get(runId, `${runId}%`) as RunRow | undefined;
    },
    list(f = {}) {
      const conds: string[] = [];
      const params: unknown[] = [];
      if (f.export) { conds.push('export = ?'); params.push(f.export); }
      if (f.status) { conds.push('status = ?'); params.push(f.status); }
      return db.prepare(`SELECT * FROM runs ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${f.limit ?? 50}`).all(...params) as RunRow[];
    },
    adhoc() {
      return db.prepare('SELECT * FROM runs WHERE kind = \'adhoc\' AND status = \'success\' AND recipe IS NOT NULL ORDER BY id').all() as RunRow[];
    },
    close() {
      if (db.open) db.close();
    },
  };
}
