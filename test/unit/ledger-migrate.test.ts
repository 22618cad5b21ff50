import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openLedger } from '../../src/run/ledger.js';

/** The ledger schema as released before restatement (no fingerprint, revision or restate columns). */
const OLD_SCHEMA = `
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL UNIQUE, export TEXT NOT NULL, kind TEXT NOT NULL,
  window_start INTEGER NOT NULL, window_end INTEGER NOT NULL, destination TEXT, status TEXT NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 1, rows INTEGER, bytes INTEGER, files INTEGER, position_kind TEXT, position_value INTEGER,
  pending_ids TEXT, manifest_key TEXT, manifest TEXT, started_at INTEGER NOT NULL, finished_at INTEGER, error TEXT, pid INTEGER, host TEXT
);
CREATE INDEX runs_window ON runs(export, window_start, window_end, status);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta(key, value) VALUES ('schema_version', '1');
INSERT INTO runs (run_id, export, kind, window_start, window_end, destination, status, rows, position_kind, position_value, pending_ids, manifest_key, manifest, started_at, finished_at)
  VALUES ('r1', 'daily', 'window', 0, 86400000, 'file', 'success', 3, 'rowid', 10, '[]', 'k', '{"files":[]}', 1, 2);
`;

describe('an old ledger', () => {
  it('opens, gains the restatement columns, and its windows read as revision 1 without a fingerprint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bl-ledger-'));
    try {
      const db = new Database(join(dir, 'ledger.db'));
      db.exec(OLD_SCHEMA);
      db.close();
      const ledger = await openLedger(dir);
      const [w] = ledger.delivered('daily');
      expect([w!.run_id, w!.rows, w!.fingerprint, w!.revision, w!.restate]).toEqual(['r1', 3, null, null, null]);
      ledger.setFingerprint(w!.id, { rows: 3, cost: 1, tokens: 2, hash: 5 });
      expect(JSON.parse(ledger.delivered('daily')[0]!.fingerprint!)).toEqual({ rows: 3, cost: 1, tokens: 2, hash: 5 });
      expect(ledger.scanMark('daily')).toBeUndefined();
      ledger.close();
      // Opening again is a no-op.
      (await openLedger(dir)).close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
