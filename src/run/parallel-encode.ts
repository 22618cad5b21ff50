import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { configError, deserializeError, type SerializedError } from '../errors.js';
import { releaseEvery } from '../util/gc.js';
import type { TransformConfig } from '../transform/schema.js';
import type { EncoderOptions } from '../format/types.js';
import type { EncodedRowGroup } from '../format/parquet.js';
import type { RecordSchema } from '../record/fields.js';
import type { RecordWarnings } from '../record/json-cell.js';
import type { Filter } from '../source/filter.js';
import { SqliteSource } from '../source/sqlite/sqlite-source.js';
import type { Excluded, LogSource, SourcePosition } from '../source/types.js';
import type { RunVars } from '../transform/types.js';
import type { LogTableName } from '../source/log-table.js';

/** What an encoding thread needs to rebuild the main thread's mapper, transforms and encoder. */
export interface EncodeSpec {
  dbPath: string;
  query: { filter: Filter; upTo?: SourcePosition; exclude?: Excluded };
  /** The log table (default logs). */
  table?: LogTableName;
  fields: string[];
  transforms: TransformConfig[];
  vars: RunVars;
  timezone: string;
  format: 'jsonl' | 'csv' | 'parquet';
  formulaGuard: boolean;
  /** Parquet: the codec inside the file. */
  compression?: EncoderOptions['compression'];
}

interface News { malformed: number; samples: string[] }
type Failed = { seq: number; error: SerializedError };
/** JSONL/CSV: the rows of the rowid range (lo, hi], encoded. */
export interface ChunkRequest { seq: number; lo: number; hi: number }
export type ChunkReply = ({ seq: number; rows: number; bytes: Uint8Array; error?: undefined } & News) | Failed;
/** Parquet: the rows of the rowid range (lo, hi], at most `limit` of them, as row groups. */
export interface GroupRequest { seq: number; lo: number; hi: number; limit: number }
/** `next`: the rowid the groups stop after (`hi` when they hold the whole range). */
export type GroupReply = ({ seq: number; rows: number; next: number; groups: EncodedRowGroup[]; error?: undefined } & News) | Failed;

/** One part's bytes, made on a thread; `rows` is final once the bytes are drained. */
export interface ThreadPart { chunks: AsyncGenerator<Buffer>; rows(): number }

/** Rows, already encoded, in rowid order. */
export interface EncodedChunk { rows: number; bytes: Buffer }

/** A parallel Parquet export's parts, each assembled from row groups in rowid order. */
export interface ParquetParts {
  next(maxRows: number, opts: EncoderOptions): Promise<ThreadPart | null>;
  close(): Promise<void>;
}

/** Rowids per request: small enough that a chunk's objects die young in the thread's heap. */
export const CHUNK_ROWIDS = 1024;
/** Rowids per Parquet request: a row group holds at most this many rows (and ROW_GROUP_BYTES of values). */
export const GROUP_ROWIDS = 8192;
/** Below this many rowids a window is read on the main thread: starting threads would cost more. */
export const PARALLEL_MIN_ROWIDS = 65_536;
/**
 * A thread's heap. A young generation of 2 MB (V8's default grows to 48 MB)
 * keeps the export's peak RSS near a single thread's at no cost in time: a
 * chunk's objects die young, and a small nursery stays in the CPU's caches
 * (1M-row CSV: 138 MB and the same wall time as 4 MB, 143 MB; 8 MB took 8%
 * longer at 150 MB). The old generation only ever holds a few chunks. A Parquet thread
 * keeps a row group's values alive until it encodes them, so they survive
 * young collections either way: 6 MB costs it more GC time but keeps three
 * isolates under the RSS target (measured in bench/; see the README).
 */
const WORKER_HEAP = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 512 };
const PARQUET_HEAP = { maxYoungGenerationSizeMb: 6, maxOldGenerationSizeMb: 512 };
/** Requests in flight per thread: enough to keep it busy, few enough to bound memory. */
const DEPTH = 3;
const PARQUET_DEPTH = 2;
/** Transferred buffers received between collections on the main thread (see releaseEvery). */
const RELEASE_BYTES = 16 << 20;

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

function addNews(warnings: RecordWarnings, m: News): void {
  warnings.malformedJson += m.malformed;
  for (const s of m.samples) if (warnings.samples.length < 5) warnings.samples.push(s);
}

/**
 * Encoding threads answering numbered requests: each request goes to the
 * least busy thread, and replies are taken by number, in whatever order the
 * caller needs them. A thread's error, its exit, or the abort signal fails
 * every wait.
 */
class EncodePool<Req extends { seq: number }, Reply extends { seq: number; error?: SerializedError }> {
  private readonly workers: Array<{ w: Worker; busy: number }> = [];
  private readonly done = new Map<number, Reply>();
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private readonly onAbort = () => this.fail(this.signal!.reason instanceof Error ? this.signal!.reason : new Error('aborted'));
  private seqs = 0;

  constructor(spec: EncodeSpec, threads: number, heap: typeof WORKER_HEAP, private readonly signal?: AbortSignal) {
    signal?.addEventListener('abort', this.onAbort, { once: true });
    for (let i = 0; i < threads; i++) {
      const slot = { w: new Worker(new URL('./encode-worker.js', import.meta.url), { workerData: spec, resourceLimits: heap }), busy: 0 };
      slot.w.on('message', (m: Reply) => { slot.busy--; this.done.set(m.seq, m); this.notify(); });
      slot.w.on('error', (err) => this.fail(err));
      slot.w.on('exit', (code) => this.fail(new Error(`an encoding thread stopped (exit code ${code})`)));
      this.workers.push(slot);
    }
  }

  private notify(): void { const f = this.wake; this.wake = null; f?.(); }
  private fail(err: Error): void { this.failure ??= err; this.notify(); }

  /** Sends a request; returns its number. */
  send(req: Omit<Req, 'seq'>): number {
    const slot = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const seq = this.seqs++;
    slot.busy++;
    slot.w.postMessage({ ...req, seq });
    return seq;
  }

  /** The reply to request `seq`, once it has come. */
  async reply(seq: number): Promise<Exclude<Reply, Failed>> {
    while (!this.done.has(seq) && !this.failure) await new Promise<void>((r) => { this.wake = r; });
    if (this.failure) throw this.failure;
    const m = this.done.get(seq)!;
    this.done.delete(seq);
    if (m.error !== undefined) throw deserializeError(m.error);
    return m as Exclude<Reply, Failed>;
  }

  async close(): Promise<void> {
    this.signal?.removeEventListener('abort', this.onAbort);
    for (const { w } of this.workers) w.removeAllListeners('exit');
    await Promise.all(this.workers.map(({ w }) => w.terminate()));
  }
}

/** The rowid span (lo, hi] a read covers, or null when it is too small to be worth the threads. */
async function threadSpan(source: SqliteSource, spec: Omit<EncodeSpec, 'dbPath'>): Promise<[number, number] | null> {
  const [lo, hi] = await source.readSpan({ filter: spec.query.filter, columns: [], upTo: spec.query.upTo });
  return hi - lo < PARALLEL_MIN_ROWIDS ? null : [lo, hi];
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
  const span = await threadSpan(source, spec);
  if (!span) return null;
  const [lo, hi] = span;
  return chunksInOrder(new EncodePool<ChunkRequest, ChunkReply>({ ...spec, dbPath: source.path }, threads, WORKER_HEAP, signal), threads, lo, hi, warnings);
}

async function* chunksInOrder(pool: EncodePool<ChunkRequest, ChunkReply>, threads: number, lo: number, hi: number, warnings: RecordWarnings): AsyncGenerator<EncodedChunk> {
  const release = releaseEvery(RELEASE_BYTES);
  const sent: number[] = [];
  let at = lo;
  try {
    for (;;) {
      while (at < hi && sent.length < threads * DEPTH) {
        const to = Math.min(hi, at + CHUNK_ROWIDS);
        sent.push(pool.send({ lo: at, hi: to }));
        at = to;
      }
      const seq = sent.shift();
      if (seq === undefined) return;
      const m = await pool.reply(seq);
      addNews(warnings, m);
      release(m.bytes.byteLength);
      if (m.rows) yield { rows: m.rows, bytes: Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength) };
    }
  } finally {
    await pool.close();
  }
}

/**
 * A Parquet export on `threads` encoding threads. Each thread reads, maps,
 * transforms and encodes the row groups of one rowid range of GROUP_ROWIDS at
 * a time; the main thread writes the groups in rowid order and each part's
 * footer (ParquetAssembler). A part holds at most `maxRows` rows: a range
 * that would overflow it is encoded again up to the part's remaining rows,
 * and the rest of the range opens the next part. Returns null when the read
 * is too small to be worth the threads.
 */
export async function parallelParquet(
  source: SqliteSource, spec: Omit<EncodeSpec, 'dbPath'>, schema: RecordSchema, threads: number, warnings: RecordWarnings, onRows: (n: number) => void, signal?: AbortSignal,
): Promise<ParquetParts | null> {
  const span = await threadSpan(source, spec);
  if (!span) return null;
  const [lo, hi] = span;
  const { ParquetAssembler } = await import('../format/parquet.js');
  const pool = new EncodePool<GroupRequest, GroupReply>({ ...spec, dbPath: source.path }, threads, PARQUET_HEAP, signal);
  const release = releaseEvery(RELEASE_BYTES);
  // Requests in rowid order: the head holds the next groups to write.
  const queue: Array<{ seq: number; lo: number; hi: number }> = [];
  const send = (from: number, to: number, limit: number) => ({ seq: pool.send({ lo: from, hi: to, limit }), lo: from, hi: to });
  let at = lo;
  let maxRows = Infinity;
  let ready: EncodedRowGroup[] = [];

  /** The next row group, when its request's rows fit in `room`; null at the end of the read. */
  const nextGroup = async (room: number): Promise<EncodedRowGroup | null> => {
    while (!ready.length) {
      while (at < hi && queue.length < threads * PARQUET_DEPTH) {
        const to = Math.min(hi, at + GROUP_ROWIDS);
        queue.push(send(at, to, maxRows));
        at = to;
      }
      const head = queue.shift();
      if (!head) return null;
      let m = await pool.reply(head.seq);
      if (m.rows > room) m = await pool.reply(send(head.lo, head.hi, room).seq);
      // The groups stopped at their row limit: the rest of the range comes next.
      if (m.next < head.hi) queue.unshift(send(m.next, head.hi, maxRows));
      addNews(warnings, m);
      if (m.rows) onRows(m.rows);
      ready = m.groups;
    }
    return ready.shift()!;
  };

  return {
    async next(partRows, opts) {
      maxRows = partRows;
      const first = await nextGroup(partRows);
      if (!first) return null;
      const asm = new ParquetAssembler(schema, opts);
      let rows = 0;
      async function* chunks(): AsyncGenerator<Buffer> {
        yield asm.head();
        for (let g: EncodedRowGroup | null = first; g; g = ready.length ? ready.shift()! : rows < partRows ? await nextGroup(partRows - rows) : null) {
          rows += g.rows;
          release(g.bytes.byteLength);
          yield asm.add(g);
        }
        yield asm.finish();
      }
      return { chunks: chunks(), rows: () => rows };
    },
    close: () => pool.close(),
  };
}
