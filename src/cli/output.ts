import { once } from 'node:events';

/** Thrown when the reader of stdout went away (`| head`): the command ends quietly. */
export class PipeClosed extends Error {
  constructor() {
    super('stdout closed');
    this.name = 'PipeClosed';
  }
}

export interface DataOut {
  /** Writes and waits when the consumer is slower than we are. */
  write(chunk: string | Uint8Array): Promise<void>;
  readonly isTTY: boolean;
  readonly columns: number;
}

/** stdout with backpressure, where a closed pipe becomes PipeClosed. */
export function createStdout(stream: NodeJS.WriteStream = process.stdout): DataOut {
  let closed = false;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') closed = true;
  });
  return {
    isTTY: !!stream.isTTY,
    columns: stream.columns || (Number(process.env.COLUMNS) > 0 ? Number(process.env.COLUMNS) : 120),
    async write(chunk) {
      if (closed) throw new PipeClosed();
      if (!stream.write(chunk)) {
        // Both waits are cancelled once one settles, so no listener stays behind per write.
        const ac = new AbortController();
        try {
          await Promise.race([once(stream, 'drain', { signal: ac.signal }), once(stream, 'error', { signal: ac.signal }).then(() => { closed = true; })]);
        } catch (err) {
          if ((err as Error).name !== 'AbortError') closed = true;
        } finally {
          ac.abort();
        }
        if (closed) throw new PipeClosed();
      }
    },
  };
}
