import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { CliError, ExitCode, systemFailure } from '../../errors.js';
import { mkdirp } from '../../util/mkdirp.js';

/** A part spooled to a local file before a warehouse loads it. */
export interface Spool {
  readonly path: string;
  /** Bytes written so far. */
  readonly bytes: number;
  write(chunk: Buffer): Promise<void>;
  /** Flushes and closes the file; a failed write or a full disk is a one-line CliError. */
  close(): Promise<void>;
  /** Deletes the file, whatever state it is in. */
  discard(): Promise<void>;
}

/**
 * Opens `<dir>/<name>` for a part: the directory mode 0700 and the file 0600,
 * because spooled rows are log content. Writes respect backpressure; ENOSPC
 * exits 75 (try again later), other I/O errors 69.
 */
export async function openSpool(dir: string, name: string, warehouse: string): Promise<Spool> {
  await mkdirp(dir, 0o700);
  const path = join(dir, name);
  const out: WriteStream = createWriteStream(path, { flags: 'wx', mode: 0o600 });
  let failure: unknown = null;
  out.on('error', (err) => { failure ??= err; });
  const ioFail = (err: unknown) => new CliError(`spool a part for ${warehouse}`, `${path}: ${(err as Error).message}`, {
    exitCode: systemFailure(err)?.exitCode ?? ExitCode.unavailable, hint: systemFailure(err)?.hint, cause: err,
  });
  let bytes = 0;
  return {
    path,
    get bytes() { return bytes; },
    async write(chunk) {
      if (failure) throw ioFail(failure);
      bytes += chunk.length;
      if (!out.write(chunk)) {
        await Promise.race([once(out, 'drain').catch(() => {}), finished(out).catch(() => {})]);
        if (failure) throw ioFail(failure);
      }
    },
    async close() {
      out.end();
      try { await finished(out); } catch (err) { throw ioFail(failure ?? err); }
    },
    async discard() {
      out.destroy();
      await finished(out).catch(() => {});
      await rm(path, { force: true }).catch(() => {});
    },
  };
}
