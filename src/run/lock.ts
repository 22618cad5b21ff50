import lockfile from 'proper-lockfile';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CliError, ExitCode } from '../errors.js';
import type { Logger } from '../cli/log.js';

export interface LockInfo {
  pid: number;
  host: string;
  started_at: string;
}

export interface ExportLock {
  readonly info: LockInfo;
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// The holder's details live beside the lock directory, which proper-lockfile
// must be able to rmdir when it finds the lock stale.
const infoPath = (lockDir: string) => `${lockDir}.json`;

function readInfo(lockDir: string): LockInfo | null {
  try {
    return JSON.parse(readFileSync(infoPath(lockDir), 'utf8')) as LockInfo;
  } catch {
    return null;
  }
}

/**
 * One lock per export (proper-lockfile: an atomic mkdir, its mtime refreshed
 * while held). A holder that is merely stopped (SIGSTOP) keeps the lock until
 * the lock timeout; a holder whose process is gone loses it at once.
 */
export async function acquireExportLock(stateDir: string, exportName: string, timeoutMs: number, log: Logger): Promise<ExportLock> {
  const dir = join(stateDir, 'locks');
  mkdirSync(dir, { recursive: true });
  const target = join(dir, `${exportName}`);
  if (!existsSync(target)) writeFileSync(target, '');
  const lockDir = `${target}.lock`;
  const existing = existsSync(lockDir) ? readInfo(lockDir) : null;
  if (existsSync(lockDir)) {
    if (existing && existing.host === hostname() && !alive(existing.pid)) {
      log.warn(`${exportName}: taking over the lock of pid ${existing.pid} (since ${existing.started_at}), which is no longer running`);
      rmSync(lockDir, { recursive: true, force: true });
    } else if (!existing) {
      // A lock directory without info: its holder died between mkdir and the info write.
      const age = Date.now() - statSync(lockDir).mtimeMs;
      if (age > 30_000) {
        log.warn(`${exportName}: removing an incomplete lock left ${Math.round(age / 1000)}s ago`);
        rmSync(lockDir, { recursive: true, force: true });
      }
    }
  }
  const stale = Math.max(2000, timeoutMs);
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(target, {
      stale,
      update: Math.min(Math.floor(stale / 2), 30_000),
      retries: 0,
      realpath: false,
      onCompromised: (err) => log.warn(`${exportName}: the lock was compromised (${err.message}); another run may have taken it over`),
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED') {
      const who = readInfo(lockDir);
      throw new CliError(`run ${exportName}`, `already running (pid ${who?.pid ?? '?'} since ${who?.started_at ?? '?'}${who && who.host !== hostname() ? ` on ${who.host}` : ''})`, { exitCode: ExitCode.tempFail, hint: 'wait for it to finish; a dead holder is taken over automatically' });
    }
    throw new CliError(`lock ${exportName}`, (err as Error).message, { exitCode: ExitCode.tempFail, cause: err });
  }
  const info: LockInfo = { pid: process.pid, host: hostname(), started_at: new Date().toISOString() };
  if (existing && existing.pid !== process.pid && alive(existing.pid) && existing.host === hostname()) {
    log.warn(`${exportName}: took over a lock older than the lock timeout from pid ${existing.pid} (since ${existing.started_at})`);
  }
  writeFileSync(infoPath(lockDir), JSON.stringify(info));
  let released = false;
  const onExit = () => { if (!released) rmSync(lockDir, { recursive: true, force: true }); };
  process.once('exit', onExit);
  return {
    info,
    async release() {
      if (released) return;
      released = true;
      process.removeListener('exit', onExit);
      rmSync(infoPath(lockDir), { force: true });
      await release().catch(() => rmSync(lockDir, { recursive: true, force: true }));
    },
  };
}
