import { createReadStream, createWriteStream } from 'node:fs';
import { open, readdir, rename, rm, stat } from 'node:fs/promises';
import { mkdirp } from '../../util/mkdirp.js';
import { dirname, join, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { CliError, ExitCode, systemFailure } from '../../errors.js';
import { objectStoreDestination, type ObjectStore } from '../object-store.js';
import type { DestinationFactory } from '../types.js';
import type { FileConfig } from './schema.js';

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

function ioError(action: string, err: unknown): CliError {
  if (err instanceof CliError) return err;
  const f = systemFailure(err);
  if (f) return new CliError(action, f.why, { exitCode: f.exitCode, hint: f.hint, cause: err });
  return new CliError(action, (err as Error).message, { exitCode: ExitCode.unavailable, cause: err });
}

/**
 * Local files: written to a hidden temp name in the same directory, fsynced,
 * then renamed, so a final name only ever holds a complete file.
 */
export function createFileStore(root: string): ObjectStore {
  const base = resolve(root);
  const pathOf = (key: string) => {
    const p = resolve(base, key);
    if (p !== base && !p.startsWith(base + sep)) throw new CliError('write the export', `object key "${key}" escapes ${base}`, { exitCode: ExitCode.config });
    return p;
  };
  return {
    type: 'file',
    async put(key, body, _meta, signal) {
      const final = pathOf(key);
      const dir = dirname(final);
      const base = final.slice(dir.length + 1);
      const tmp = join(dir, `.${base}.tmp-${randomBytes(4).toString('hex')}`);
      try {
        await mkdirp(dir);
        // A temp file of this key can only be left by a killed attempt (runs of one export are locked).
        for (const f of await readdir(dir)) if (f.startsWith(`.${base}.tmp-`)) await rm(join(dir, f), { force: true });
        await pipeline(body, createWriteStream(tmp, { flags: 'wx' }), { signal });
        await fsyncPath(tmp);
        await rename(tmp, final);
        await fsyncPath(dir).catch(() => {});
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => {});
        if ((err as Error).name === 'AbortError') throw err;
        throw ioError(`write ${final}`, err);
      }
    },
    async get(key) {
      const p = pathOf(key);
      try { await stat(p); } catch { return null; }
      return createReadStream(p) as Readable;
    },
    async delete(key) {
      await rm(pathOf(key), { force: true });
    },
    async check() {
      try {
        await mkdirp(base);
        const probe = join(base, `.bifrost-logs-check-${randomBytes(4).toString('hex')}`);
        const fh = await open(probe, 'wx');
        await fh.close();
        await rm(probe, { force: true });
      } catch (err) {
        throw ioError(`write to ${base}`, err);
      }
    },
  };
}

export const createFileDestination: DestinationFactory = async (config: FileConfig) => objectStoreDestination(createFileStore(config.path));
