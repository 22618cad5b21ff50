import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { configError } from '../errors.js';
import type { TransformConfig } from '../config/schema.js';
import type { EncoderOptions } from '../format/types.js';
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
  format: 'jsonl' | 'csv' | 'parquet';
  formulaGuard: boolean;
  /** Parquet: the rowid span (lo, hi] the thread reads. */
  span?: [number, number];
}

interface News { malformed: number; samples: string[] }
export interface ChunkRequest { seq: number; lo: number; hi: number }
export type ChunkReply =
  | ({ seq: number; rows: number; bytes: Uint8Array; error?: undefined } & News)
  | { seq: number; error: string };
export interface PartRequest { cmd: 'part'; maxRows: number; opts: EncoderOptions }
export type PartReply =
  | ({ type: 'bytes' | 'end'; rows: number; bytes: Uint8Array } & News)
  | { type: 'none' }
  | { type: 'error'; error: string };

/** One part's bytes, made on a thread; `rows` is final once the bytes are drained. */
export interface ThreadPart { chunks: AsyncGenerator<Buffer>; rows(): number }

/** Rows, already encoded, in rowid order. */
export interface EncodedChunk { rows: number; bytes: Buffer }

/** Rowids per request: small enough that a chunk's objects die young in the thread's heap. */
export const CHUNK_ROWIDS = 1024;
/** Below this many rowids a window is read on the main thread: starting threads would cost more. */
export const PARALLEL_MIN_ROWIDS = 65_536;
/**
 * A thread's heap: a young generation of 8 MB (V8's default grows to 48 MB)
 * keeps the export's peak RSS near a single thread's at almost no cost in GC
 * time (measured in bench/); the old generation only ever holds a few chunks.
 */
const WORKER_HEAP = { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 512 };
/** The Parquet thread holds a row group and its encoding; a smaller old generation makes V8 collect sooner. */
const PARQUET_HEAP = { maxYoungGenerationSizeMb: 12, maxOldGenerationSizeMb: 192 };
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
    throw configError('read BIFROST_LOGS_THREADS', `expected a whole number from 1 to 64, got "${v}"`, 'unset it for one thread per core, or set 1 to keep exports on one thread');
  }
  return Math.min(4, availableParallelism());
}

/** Whether a read can be split across encoding threads. */
export function canEncodeInParallel(source: LogSource, format: string, threads: number): source is SqliteSource {
  return threads > 1 && source instanceof SqliteSource && (format === 'jsonl' || format === 'csv' || format === 'parquet');
}

function startWorker(spec: EncodeSpec, resourceLimits = WORKER_HEAP): Worker {
  return new Worker(new URL('./encode-worker.js', import.meta.url), { workerData: spec, resourceLimits });
}

function addNews(warnings: RecordWarnings, m: News): void {
  warnings.malformedJson += m.malformed;
  for (const s of m.samples) if (warnings.samples.length < 5) warnings.samples.push(s);
}

/**
 * A Parquet export on one thread of its own: read, mapped, transformed and
 * encoded there, each part streamed back a row group at a time. Parquet is
 * columnar, so its rows cannot be encoded in independent chunks; the thread
 * is for memory: its heap is capped (PARQUET_HEAP), where the main thread's
 * would grow with every row group it buffered. Returns null when the read is
 * too small to be worth a thread.
 */
export async function parquetOnThread(
  source: SqliteSource, spec: Omit<EncodeSpec, 'dbPath'>, warnings: RecordWarnings, onRows: (n: number) => void, signal?: AbortSignal,
): Promise<{ next(maxRows: number, opts: EncoderOptions): Promise<ThreadPart | null>; close(): Promise<void> } | null> {
  const [lo, hi] = await source.readSpan({ filter: spec.query.filter, columns: [], upTo: spec.query.upTo });
  if (hi - lo < PARALLEL_MIN_ROWIDS) return null;
  const w = startWorker({ ...spec, dbPath: source.path, span: [lo, hi] }, PARQUET_HEAP);
  const inbox: PartReply[] = [];
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = () => { const f = wake; wake = null; f?.(); };
  const fail = (err: Error) => { failure ??= err; notify(); };
  w.on('message', (m: PartReply) => { inbox.push(m); notify(); });
  w.on('error', fail);
  w.on('exit', (code) => fail(new Error(`the encoding thread stopped (exit code ${code})`)));
  const onAbort = () => fail(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  const take = async (): Promise<PartReply> => {
    while (!inbox.length && !failure) await new Promise<void>((r) => { wake = r; });
    if (failure) throw failure;
    const m = inbox.shift()!;
    if (m.type === 'error') throw new Error(m.error);
    return m;
  };
  const bytesOf = (m: { bytes: Uint8Array }) => Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);
  return {
    async next(maxRows, opts) {
      w.postMessage({ cmd: 'part', maxRows, opts } satisfies PartRequest);
      const first = await take();
      if (first.type === 'none') return null;
      let rows = 0;
      async function* chunks(): AsyncGenerator<Buffer> {
        for (let m = first; ; m = await take()) {
          if (m.type !== 'bytes' && m.type !== 'end') throw new Error(`unexpected "${m.type}" from the encoding thread`);
          addNews(warnings, m);
          rows += m.rows;
          if (m.rows) onRows(m.rows);
          const b = bytesOf(m);
          if (m.type === 'end') { if (b.length) yield b; return; }
          if (b.length) {
            // The thread waits for this ack before it encodes the next row group: one in flight.
            w.postMessage({ cmd: 'ack' });
            yield b;
          }
        }
      }
      return { chunks: chunks(), rows: () => rows };
    },
    async close() {
      signal?.removeEventListener('abort', onAbort);
      w.removeAllListeners('exit');
      await w.terminate();
    },
  };
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
    const w = startWorker(data);
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
      addNews(warnings, m);
      if (m.rows) yield { rows: m.rows, bytes: Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength) };
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    for (const w of workers) w.removeAllListeners('exit');
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
