import Database from 'better-sqlite3';
import { constants, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { runFingerprintStatement } from './fingerprint-run.js';
import type { FingerprintTask } from './fingerprint-threads.js';
import { sqliteNativeBinding } from '../../util/sqlite-binding.js';

/**
 * A second thread of the restatement check: on its own read-only connection
 * it reads one part of the rows (a statement the calling thread planned)
 * while the calling thread reads the other (fingerprint-threads.ts). The
 * calling thread has opened and checked the DB; this one only reads it, and
 * loads nothing else.
 */
// Below normal priority (this thread only, on Linux), as the encoding threads: the gateway comes first.
try { setPriority(constants.priority.PRIORITY_BELOW_NORMAL); } catch { /* not permitted here: run at normal priority */ }
const port = parentPort!;
// Started ahead of need (fingerprint-threads.ts), the thread has its modules loaded when the task comes.
const task = (workerData as FingerprintTask | null) ?? await new Promise<FingerprintTask>((resolve) => port.once('message', resolve));
let db: Database.Database | null = null;
try {
  // As sqlite-open.ts opens it: read-only, waiting out the gateway's write bursts, a small page cache.
  db = new Database(task.path, { readonly: true, fileMustExist: true, nativeBinding: sqliteNativeBinding() });
  db.pragma('busy_timeout = 10000');
  db.pragma('query_only = 1');
  db.pragma('cache_size = -2048');
  port.postMessage({ ok: runFingerprintStatement(db, task.statement) });
} catch (err) {
  port.postMessage({ error: (err as Error).message ?? String(err) });
} finally {
  db?.close();
  port.close();
}
