import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../support/cli.js';

/**
 * Bifrost refuses to start on PostgreSQL older than 16; a log DB on such a
 * server gets one line naming its version, exit 66. This runs a real
 * PostgreSQL 15 (Debian's postgresql-15, which CI installs), as nobody.
 */
const BIN = '/usr/lib/postgresql/15/bin';
let dir: string;
let server: ChildProcess | undefined;
let port: number;

const freePort = () => new Promise<number>((resolve, reject) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  s.on('error', reject);
});
const asNobody = (cmd: string, args: string[]) => (process.getuid?.() === 0 ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', cmd, ...args]] as const : [cmd, args] as const);

beforeAll(async () => {
  if (!existsSync(join(BIN, 'postgres'))) throw new Error(`this test needs PostgreSQL 15's server (${BIN}/postgres): apt-get install postgresql-15 (.ci/run does)`);
  dir = mkdtempSync(join(tmpdir(), 'bl-pg15-'));
  chmodSync(dir, 0o755);
  if (process.getuid?.() === 0) chownSync(dir, 65534, 65534);
  const data = join(dir, 'data');
  const [c, a] = asNobody(join(BIN, 'initdb'), ['-D', data, '-U', 'bifrost', '--auth=trust', '--no-sync']);
  execFileSync(c, [...a], { stdio: 'pipe' });
  port = await freePort();
  const [sc, sa] = asNobody(join(BIN, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off']);
  server = spawn(sc, [...sa], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr!.on('data', (d) => { log += d; });
  for (let i = 0; ; i++) {
    if (/ready to accept connections/.test(log)) break;
    if (server.exitCode !== null || i > 600) throw new Error(`PostgreSQL 15 did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  execFileSync('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'bifrost', '-d', 'postgres', '-c', 'CREATE TABLE logs (id text PRIMARY KEY, "timestamp" timestamptz, provider text, model text, status text)'], { stdio: 'pipe' });
}, 120_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGINT');
    await new Promise((r) => server!.once('exit', r));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a log DB on PostgreSQL 15', () => {
  it.each([['query'], ['stats'], ['export']])('%s: one line naming the version and Bifrost\'s minimum, exit 66', async (cmd) => {
    const args = [cmd, '--db', `postgres://bifrost@127.0.0.1:${port}/postgres`, '--since', '2026-10-01', '--until', '2026-10-02'];
    if (cmd === 'export') args.push('--dest', 'file', '--out', join(dir, 'out'), '--state-dir', join(dir, 'state'));
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(66);
    expect(r.stderr).toMatch(/^bifrost-logs: could not open the log DB: .* runs PostgreSQL 15\.\d+[^;]*; Bifrost's log store needs PostgreSQL 16 or newer$/m);
    expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('bifrost-logs:'))).toHaveLength(1);
    expect(r.stderr).not.toMatch(/pg_input_is_valid|internal error|\n\s+at /);
  });
});
