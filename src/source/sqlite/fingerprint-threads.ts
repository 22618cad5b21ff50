import { Worker } from 'node:worker_threads';
import type { Filter } from '../filter.js';
import type { LogTableName } from '../log-table.js';
import type { FingerprintVersion, SourcePosition, WindowFingerprint } from '../types.js';

/** What a second thread fingerprints: the windows it takes, on its own connection to the same DB file. */
export interface FingerprintTask {
  path: string;
  table: LogTableName;
  filter: Filter;
  windows: Array<{ start: number; end: number; upTo?: SourcePosition }>;
  columns: string[];
  upTo?: SourcePosition;
  version?: FingerprintVersion;
}

/**
 * What a second thread costs, in rows the calling thread reads meanwhile:
 * starting it, unless it was started ahead (a V8 isolate, the modules, a
 * connection: ~100 ms on a 2-core VM), and the text margin its own range
 * scans (about a day of rows for daily windows).
 */
const STARTUP_ROWS = 150_000;
const WARM_ROWS = 40_000;
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
 * How many of the windows, the oldest, a second thread takes (0: none), so
 * both threads finish together: the rows split by the windows' lengths (rows
 * arrive at a steady rate), less what the second thread spends starting.
 */
export function secondThreadShare(windows: ReadonlyArray<{ start: number; end: number }>, rows: number, started = false): number {
  if (windows.length < 2 || rows < (started ? WARM_PARALLEL_MIN_ROWS : PARALLEL_MIN_ROWS)) return 0;
  const share = (rows - (started ? WARM_ROWS : STARTUP_ROWS)) / (2 * rows);
  const total = windows.reduce((s, w) => s + (w.end - w.start), 0);
  let k = 0;
  let acc = 0;
  // Take the next window while that brings the share closer than leaving it.
  while (k < windows.length - 1) {
    const len = windows[k]!.end - windows[k]!.start;
    if (Math.abs(acc + len - share * total) > Math.abs(acc - share * total)) break;
    acc += len;
    k++;
  }
  return k;
}

/**
 * The task's fingerprints from a second thread (the one started ahead, if
 * any, else a new one); rejects when the thread cannot start or fails.
 */
export function fingerprintOnSecondThread(task: FingerprintTask): Promise<WindowFingerprint[]> {
  return new Promise((resolve, reject) => {
    const w = warm ?? new Worker(WORKER, { workerData: null });
    warm = null;
    w.ref();
    w.once('message', (m: { ok?: WindowFingerprint[]; error?: string }) => (m.ok ? resolve(m.ok) : reject(new Error(m.error))));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`the fingerprint thread exited (${code}) without an answer`)));
    w.postMessage(task);
  });
}
