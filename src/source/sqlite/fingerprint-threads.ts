import { Worker } from 'node:worker_threads';
import type { FingerprintPartial, FingerprintStatement } from './fingerprint-run.js';

/** What a second thread reads: one part of a fingerprint plan, on its own connection to the same DB file. */
export interface FingerprintTask {
  path: string;
  statement: FingerprintStatement;
}

/**
 * What a second thread costs, in rows the calling thread reads meanwhile:
 * starting it, unless it was started ahead (a V8 isolate, the modules, a
 * connection: ~100 ms on a 2-core VM), or else opening its connection and
 * passing the answer.
 */
const STARTUP_ROWS = 150_000;
const WARM_ROWS = 5_000;
/**
 * Below this many rows in the span one thread does it all. Measured on the
 * benchmark's DBs (7 daily windows, 2 cores): 1M rows (~270k in the span)
 * 0.19 s on one thread, 0.23 s on two when the second starts on demand;
 * 5M rows (~1.3M) 0.95 s on one, 0.65 s on two.
 */
export const PARALLEL_MIN_ROWS = 500_000;
/** The same with a thread started ahead (startFingerprintThread). */
export const WARM_PARALLEL_MIN_ROWS = 120_000;

const WORKER = new URL('./fingerprint-worker.js', import.meta.url);
let warm: Worker | null = null;

/**
 * Starts the second thread ahead of need, for a command that will likely
 * fingerprint (run, verify): it loads its modules while this thread loads the
 * command's and its config. Until given a task it holds no connection and
 * keeps nothing alive; unused, it ends with the process.
 */
export function startFingerprintThread(): void {
  if (warm) return;
  try {
    const w = new Worker(WORKER, { workerData: null });
    w.unref();
    w.on('error', () => { if (warm === w) warm = null; });
    warm = w;
  } catch { warm = null; }
}

/** Whether a thread started ahead is waiting for a task. */
export function warmThreadReady(): boolean {
  return warm !== null;
}

/**
 * The share of the rows (0: none) a second thread reads, so both threads
 * finish together: a little under half, less what it spends starting.
 */
export function secondThreadShare(rows: number, started = false): number {
  if (rows < (started ? WARM_PARALLEL_MIN_ROWS : PARALLEL_MIN_ROWS)) return 0;
  return (rows - (started ? WARM_ROWS : STARTUP_ROWS)) / (2 * rows);
}

/**
 * The task's partial sums from a second thread (the one started ahead, if
 * any, else a new one); rejects when the thread cannot start or fails.
 */
export function fingerprintOnSecondThread(task: FingerprintTask): Promise<FingerprintPartial[]> {
  return new Promise((resolve, reject) => {
    const w = warm ?? new Worker(WORKER, { workerData: null });
    warm = null;
    w.ref();
    w.once('message', (m: { ok?: FingerprintPartial[]; error?: string }) => (m.ok ? resolve(m.ok) : reject(new Error(m.error))));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`the fingerprint thread exited (${code}) without an answer`)));
    w.postMessage(task);
  });
}
