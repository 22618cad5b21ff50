import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { once } from 'node:events';
import type { CommitInfo, Destination, PartInfo, PartUpload } from './types.js';

/** What an object store must offer; everything else (parts, manifests) is shared. */
export interface ObjectStore {
  readonly type: string;
  /** Stores `body` under `key`, visible only once complete; rejects (leaving nothing) when aborted. */
  put(key: string, body: Readable, meta: { contentType: string; contentEncoding?: string }, signal: AbortSignal): Promise<void>;
  get(key: string): Promise<Readable | null>;
  delete(key: string): Promise<void>;
  /** Proves write access without leaving anything visible. */
  check(): Promise<void>;
  close?(): Promise<void>;
}

/** Turns a streaming `put` into a PartUpload with backpressure and abort. */
export function streamUpload(start: (body: Readable, signal: AbortSignal) => Promise<void>): PartUpload {
  const body = new PassThrough({ highWaterMark: 1 << 20 });
  const ac = new AbortController();
  let failure: unknown = null;
  const done = start(body, ac.signal).catch((err) => {
    failure = err;
    body.destroy();
    throw err;
  });
  done.catch(() => {});
  return {
    async write(chunk) {
      if (failure) throw failure;
      if (!body.write(chunk)) {
        await Promise.race([once(body, 'drain'), done.then(() => {}, () => {})]);
        if (failure) throw failure;
      }
    },
    async finish() {
      body.end();
      await done;
    },
    async abort() {
      ac.abort();
      body.destroy();
      await done.catch(() => {});
    },
  };
}

/** The Destination every object store shares: parts are objects, the manifest is written last. */
export function objectStoreDestination(store: ObjectStore): Destination {
  return {
    type: store.type,
    kind: 'object',
    check: () => store.check(),
    async openPart(part: PartInfo) {
      return streamUpload((body, signal) => store.put(part.key, body, { contentType: part.contentType, contentEncoding: part.contentEncoding }, signal));
    },
    async commit(c: CommitInfo) {
      const { Readable } = await import('node:stream');
      await store.put(c.manifestKey, Readable.from([c.manifestBytes]), { contentType: 'application/json' }, new AbortController().signal);
    },
    readObject: (key) => store.get(key),
    deleteObject: (key) => store.delete(key),
    close: async () => { await store.close?.(); },
  };
}

/** Reads a body up to `limit` bytes: the whole of it when small, or its head chained to the rest. */
export async function peek(body: Readable, limit: number): Promise<{ whole: Buffer } | { stream: Readable }> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const head: Buffer[] = [];
  let size = 0;
  while (size <= limit) {
    const n = await it.next();
    if (n.done) return { whole: Buffer.concat(head) };
    const b = typeof n.value === 'string' ? Buffer.from(n.value) : n.value;
    head.push(b);
    size += b.length;
  }
  async function* rest(): AsyncGenerator<Buffer> {
    try {
      while (head.length) yield head.shift()!;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield typeof n.value === 'string' ? Buffer.from(n.value) : n.value;
      }
    } finally {
      await it.return?.();
    }
  }
  return { stream: Readable.from(rest(), { objectMode: false }) };
}

/** The error an aborted upload or load rejects with (streams recognise the AbortError name). */
export function abortError(message = 'the upload was aborted'): Error {
  return Object.assign(new Error(message), { name: 'AbortError' });
}

/**
 * The key a destination's check() writes and deletes: under the static part
 * of the prefix template (before its first placeholder), so it needs no more
 * permission than the exports do.
 */
export function checkProbeKey(prefix: string | undefined): string {
  const p = prefix ?? '';
  const i = p.indexOf('{');
  return `${i < 0 ? p : p.slice(0, i)}.bifrost-logs-check-${randomBytes(6).toString('hex')}`;
}
