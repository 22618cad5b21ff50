import { mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

function notCreatable(path: string, cause: NodeJS.ErrnoException): NodeJS.ErrnoException {
  // The parent exists yet mkdir says ENOENT (as /proc and other virtual file systems do):
  // nothing can be created there. Node's recursive mkdir retries such a path forever.
  const err = new Error(`cannot create a directory in ${dirname(path)}`) as NodeJS.ErrnoException;
  err.code = cause.code === 'ENOENT' ? 'ENOTSUP' : cause.code;
  err.path = path;
  err.syscall = 'mkdir';
  return err;
}

function checkDir(path: string, isDir: boolean): void {
  if (!isDir) {
    const err = new Error(`${path} exists and is not a directory`) as NodeJS.ErrnoException;
    err.code = 'ENOTDIR';
    err.path = path;
    throw err;
  }
}

/** `mkdir -p` that ends on every path: one mkdir per missing component, never a retry loop. */
export async function mkdirp(path: string, mode?: number): Promise<void> {
  const p = resolve(path);
  try {
    checkDir(p, (await stat(p)).isDirectory());
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const parent = dirname(p);
  if (parent !== p) await mkdirp(parent, mode);
  try {
    await mkdir(p, mode !== undefined ? { mode } : undefined);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EEXIST') { checkDir(p, (await stat(p)).isDirectory()); return; }
    throw e.code === 'ENOENT' ? notCreatable(p, e) : e;
  }
}

export function mkdirpSync(path: string, mode?: number): void {
  const p = resolve(path);
  try {
    checkDir(p, statSync(p).isDirectory());
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const parent = dirname(p);
  if (parent !== p) mkdirpSync(parent, mode);
  try {
    mkdirSync(p, mode !== undefined ? { mode } : undefined);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EEXIST') { checkDir(p, statSync(p).isDirectory()); return; }
    throw e.code === 'ENOENT' ? notCreatable(p, e) : e;
  }
}
