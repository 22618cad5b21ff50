import type { Readable } from 'node:stream';
import type { RecordSchema } from '../record/fields.js';
import type { Logger } from '../util/logger.js';

/** One data file of a window, as run/ names it. */
export interface PartInfo {
  /** Full object key (prefix included) or file path relative to the destination root. */
  readonly key: string;
  readonly kind: 'part' | 'late';
  readonly format: 'jsonl' | 'json' | 'csv' | 'parquet' | 'report';
  readonly contentType: string;
  readonly contentEncoding?: 'gzip';
  readonly schema: RecordSchema;
}

/** An upload in progress: invisible under its key until `finish()` resolves. */
export interface PartUpload {
  /** Resolves when the bytes may be written again (backpressure). */
  write(chunk: Buffer): Promise<void>;
  /** Completes the upload; only now does the part become visible. */
  finish(): Promise<void>;
  /** Abandons the upload and removes every trace of it. Never throws. */
  abort(): Promise<void>;
}

export interface WrittenPart {
  readonly key: string;
  readonly kind: 'part' | 'late';
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
}

export interface CommitInfo {
  readonly exportName: string;
  readonly window: { start: number; end: number };
  /** The manifest object key, and its bytes: written last, it is the ack point. */
  readonly manifestKey: string;
  readonly manifestBytes: Buffer;
  /** Parts written by this run (all of the window's parts, or only the late ones). */
  readonly parts: readonly WrittenPart[];
  /** True when this run only adds late rows to a window already delivered. */
  readonly late: boolean;
  readonly schema: RecordSchema;
  /** True for aggregated exports (no request_id; rows are replaced whole). */
  readonly aggregated: boolean;
}

/** What a commit had to change so that every value fits (counted in the manifest's `warnings`). */
export interface CommitResult {
  /** E.g. `nul_replaced` (U+0000 characters replaced by U+FFFD), `text_truncated` (values cut to fit a column). */
  readonly warnings?: Readonly<Record<string, number>>;
}

export interface Destination {
  readonly type: string;
  /** Object stores and files hold parts as objects; warehouses load them into tables; stdout streams. */
  readonly kind: 'object' | 'table' | 'stream';
  /** The preferred staging format of a table destination. */
  readonly loadFormat?: 'jsonl' | 'parquet';
  /** Reachable and writable, leaving nothing visible behind. */
  check(): Promise<void>;
  openPart(part: PartInfo): Promise<PartUpload>;
  /** The ack point: writes the manifest, or runs the transactional load. */
  commit(c: CommitInfo): Promise<CommitResult | void>;
  /** Object kinds: the object's bytes, or null when it is missing (for verify and late parts). */
  readObject?(key: string): Promise<Readable | null>;
  /** Object kinds: removes an object (orphan clean-up); absent objects are fine. */
  deleteObject?(key: string): Promise<void>;
  /** Table kinds: rows of the window now in the table (for verify). */
  countWindow?(window: { start: number; end: number }): Promise<number>;
  close(): Promise<void>;
}

export interface DestinationEnv {
  readonly log: Logger;
  readonly signal?: AbortSignal;
  /** State dir, for table destinations' local staging files. */
  readonly tmpDir: string;
}

export type DestinationFactory = (config: any, env: DestinationEnv) => Promise<Destination>;
