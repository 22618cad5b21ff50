import { constants, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteSource } from './sqlite-source.js';
import type { FingerprintTask } from './fingerprint-threads.js';

/**
 * A second thread of the restatement check: its own read-only connection
 * fingerprints the older part of the windows while the calling thread does
 * the rest (fingerprint-threads.ts).
 */
// Below normal priority (this thread only, on Linux), as the encoding threads: the gateway comes first.
try { setPriority(constants.priority.PRIORITY_BELOW_NORMAL); } catch { /* not permitted here: run at normal priority */ }
const port = parentPort!;
// Started ahead of need (fingerprint-threads.ts), the thread has its modules loaded when the task comes.
const task = (workerData as FingerprintTask | null) ?? await new Promise<FingerprintTask>((resolve) => port.once('message', resolve));
let source: SqliteSource | null = null;
try {
  source = SqliteSource.open(task.path, task.table);
  port.postMessage({ ok: source.fingerprintsHere(task.filter, task.windows, task.columns, task.upTo, task.version) });
} catch (err) {
  port.postMessage({ error: (err as Error).message ?? String(err) });
} finally {
  await source?.close();
  port.close();
}
