import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { CliError, ExitCode, deserializeError, serializeError, systemFailure } from '../../src/errors.js';

describe('errors across a thread boundary', () => {
  it('a CliError keeps its class, exit code and hint through structured clone', async () => {
    // Structured clone is what postMessage does; a real worker proves nothing is lost on the way.
    const w = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.on("message", (m) => parentPort.postMessage(m));', { eval: true });
    const err = new CliError('read the log DB', 'the database is busy', { exitCode: ExitCode.tempFail, hint: 'try again later' });
    w.postMessage(serializeError(err));
    const back = deserializeError(await new Promise((r) => w.once('message', r)));
    await w.terminate();
    expect(back).toBeInstanceOf(CliError);
    expect(back.message).toBe(err.message);
    expect((back as CliError).exitCode).toBe(75);
    expect((back as CliError).hint).toBe('try again later');
  });
  it('an SQLite or system error keeps its code, so it is classified the same on the main thread', () => {
    const e = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    const back = deserializeError(structuredClone(serializeError(e)));
    expect(back).not.toBeInstanceOf(CliError);
    expect(systemFailure(back)?.exitCode).toBe(75);
  });
  it.each([
    ['SQLITE_BUSY', 75], ['SQLITE_FULL', 75], ['ENOSPC', 75], ['SQLITE_IOERR_READ', 74], ['EIO', 74],
    ['SQLITE_CORRUPT', 66], ['SQLITE_NOTADB', 66], ['EACCES', 77], ['SQLITE_READONLY_DIRECTORY', 77],
    ['ENOTDIR', 73], ['EEXIST', 73], ['EROFS', 73],
  ])('%s → %i', (code, exit) => {
    expect(systemFailure(Object.assign(new Error('x'), { code }))?.exitCode).toBe(exit);
    // Down the cause chain too.
    expect(systemFailure(new Error('wrapped', { cause: Object.assign(new Error('x'), { code }) }))?.exitCode).toBe(exit);
  });
  it('a SQL bug is not a system failure (70 stays 70)', () => {
    expect(systemFailure(Object.assign(new Error('no such column: x'), { code: 'SQLITE_ERROR' }))).toBeNull();
  });
});
