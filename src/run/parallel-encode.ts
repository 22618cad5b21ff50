import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { TransformConfig } from '../config/schema.js';
import type { RecordWarnings } from '../record/json-cell.js';
import type { Filter } from '../source/filter.js';
import { SqliteSource } from '../source/sqlite/sqlite-source.js';
import type { LogSource, SourcePosition } from '../source/types.js';
import type { RunVars } from '../transform/types.js';

/** What an encoding thread needs to rebuild the main thread's mapper, transforms and encoder. */
export interface EncodeSpec {
  dbPath: string;
  query: { filter: Filter; upTo?: SourcePosition };
  fields: string[];
  transforms: TransformConfig[];
  vars: RunVars;
  timezone: string;
  format: 'jsonl' | 'csv';
  formulaGuard: boolean;
}

export interface ChunkRequest { seq: number; lo: number; hi: number }
export type ChunkReply =
  | { seq: number; rows: number; bytes: Uint8Array; malformed: number; samples: string[]; error?: undefined }
  | { seq: number; error: string };

/** Rows, already encoded, in rowid order. */
export interface EncodedChunk { rows: number; bytes: Buffer }

/** Rowids per request: small enough that a chunk's objects die young in the thread's heap. */
export const CHUNK_ROWIDS = 2048;
/** Below this many rowids a window is read on the main thread: starting threads would cost more. */
export const PARALLEL_MIN_ROWIDS = 65_536;
/**
 * A thread's heap: a young generation of 12 MB (V8's default grows to 48 MB)
 * keeps the export's peak RSS near a single thread's at almost no cost in GC
 * time (measured in bench/); the old generation only ever holds a few chunks.
 */
const WORKER_HEAP = { maxYoungGenerationSizeMb: 12, maxOldGenerationSizeMb: 512 };
/** Requests in flight per thread: enough to keep it busy, few enough to bound memory. */
const DEPTH = 3;

/**
 * Encoding threads for an export: `BIFROST_LOGS_THREADS` (1 turns them off),
 * by default one per core, at most 4.
 */
export function encodeThreads(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.BIFROST_LOGS_THREADS;
  if (v !== undefined && v !== '') {
    const n = Number(v);
    if (Number.isInteger(n) && n >= 1 && n <= 64) return n;
  }
  return Math.min(4, availableParallelism());
}

/** Whether a read can be split across encoding threads. */
export function canEncodeInParallel(source: LogSource, format: string, threads: number): source is SqliteSource {
  return threads > 1 && source instanceof SqliteSource && (format === 'jsonl' || format === 'csv');
}

/**
 * Reads, maps, transforms and encodes a SQLite read in rowid ranges on
 * `threads` worker threads, each with its own read-only connection and short
 * statements, and yields the encoded chunks in rowid order: the bytes equal
 * what the main thread would have written. Memory stays bounded by
 * `threads × DEPTH` chunks; ranges without rows cost one empty reply.
 * Returns null when the read is too small to be worth the threads.
 */
export async function parallelEncode(
  source: SqliteSource, spec: Omit<EncodeSpec, 'dbPath'>, threads: number, warnings: RecordWarnings, signal?: AbortSignal,
): Promise<AsyncGenerator<EncodedChunk> | null> {
  const [lo, hi] = await source.readSpan({ filter: spec.query.filter, columns: [], upTo: spec.query.upTo });
  if (hi - lo < PARALLEL_MIN_ROWIDS) return null;
  return run(source.path, spec, threads, lo, hi, warnings, signal);
}

async function* run(dbPath: string, spec: Omit<EncodeSpec, 'dbPath'>, threads: number, lo: number, hi: number, warnings: RecordWarnings, signal?: AbortSignal): AsyncGenerator<EncodedChunk> {
  const total = Math.ceil((hi - lo) / CHUNK_ROWIDS);
  const workers: Worker[] = [];
  const done = new Map<number, ChunkReply>();
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = () => { const w = wake; wake = null; w?.(); };
  const onAbort = () => { failure ??= signal!.reason instanceof Error ? signal!.reason : new Error('aborted'); notify(); };
  signal?.addEventListener('abort', onAbort, { once: true });
  const data: EncodeSpec = { ...spec, dbPath };
  for (let i = 0; i < threads; i++) {
    const w = new Worker(new URL('./encode-worker.js', import.meta.url), { workerData: data, resourceLimits: WORKER_HEAP });
    w.on('message', (m: ChunkReply) => { done.set(m.seq, m); notify(); });
    w.on('error', (err) => { failure ??= err; notify(); });
    w.on('exit', (code) => { if (code !== 0) { failure ??= new Error(`an encoding thread stopped (exit code ${code})`); notify(); } });
    workers.push(w);
  }
  let sent = 0;
  const send = () => {
    const seq = sent++;
    const a = lo + seq * CHUNK_ROWIDS;
    workers[seq % threads]!.postMessage({ seq, lo: a, hi: Math.min(hi, a + CHUNK_ROWIDS) } satisfies ChunkRequest);
  };
  try {
    while (sent < total && sent < threads * DEPTH) send();
    for (let seq = 0; seq < total; seq++) {
      while (!done.has(seq) && !failure) await new Promise<void>((r) => { wake = r; });
      if (failure) throw failure;
      const m = done.get(seq)!;
      done.delete(seq);
      if (m.error !== undefined) throw new Error(m.error);
      if (sent < total) send();
      warnings.malformedJson += m.malformed;
      for (const s of m.samples) if (warnings.samples.length < 5) warnings.samples.push(s);
      if (m.rows) yield { rows: m.rows, bytes: Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength) };
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    for (const w of workers) w.removeAllListeners('exit');
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
