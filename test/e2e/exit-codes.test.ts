import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { cli, cliUnprivileged, type CliResult } from '../support/cli.js';

/**
 * One row per line of the README's exit-code table: the situation, the command,
 * the code. (130/143 are in hardening.test.ts: they need a run stopped mid-way. 70 means a bug in the
 * product, which no input can reach on purpose; test/unit/errors.test.ts checks that an unclassified
 * failure, a SQL error among them, maps to it.)
 */
let dir: string;
let db: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-exit-'));
  chmodSync(dir, 0o755);
  db = join(dir, 'logs.db');
  writeSqlite(db, { rows: 300, seed: 4, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 2 });
  chmodSync(db, 0o644);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ADHOC = ['--since', '2026-10-01', '--until', '2026-10-02', '--format', 'jsonl'];
const state = (name: string) => ['--state-dir', join(dir, `st-${name}`)];
const isRoot = process.getuid?.() === 0;

/** Runs the CLI as an unprivileged user (as root: nobody, through setpriv; otherwise as this user). */
function cliAsUser(args: string[]): Promise<CliResult> {
  if (!isRoot) return cli(args);
  const home = join(dir, 'nobody-home');
  mkdirSync(home, { recursive: true, mode: 0o777 });
  chmodSync(home, 0o777);
  return cliUnprivileged(args, { HOME: home });
}

function runConfig(name: string, exports: Array<{ name: string; out: string }>): string {
  const cfg = join(dir, `${name}.json`);
  writeFileSync(cfg, JSON.stringify({ source: { path: db }, log_exports: { exports: exports.map((e) => ({
    name: e.name, schedule: { frequency: 'daily', time: '00:00', timezone: 'UTC' }, backfill_from: '2026-10-01',
    destination: { type: 'file', config: { path: e.out } }, data: { format: 'jsonl' },
  })) } }));
  return cfg;
}

function holdExclusive(path: string): Promise<ChildProcess> {
  const script = `import Database from ${JSON.stringify(new URL('../../node_modules/better-sqlite3/lib/index.js', import.meta.url).pathname)};
    const db = new Database(${JSON.stringify(path)}); db.exec('BEGIN EXCLUSIVE'); process.stdout.write('held\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => child.stdout!.once('data', () => resolve(child)));
}

interface Row { code: number; what: string; run: () => Promise<CliResult>; line: RegExp }

const rows: Row[] = [
  { code: 0, what: 'success', line: /^$/, run: () => cli(['export', '--db', db, ...ADHOC, '--dest', 'file', '--out', join(dir, 'ok'), ...state('ok')]) },
  { code: 1, what: 'run: one export failed, another succeeded', line: /bad: could not write .*a part of the path is not a directory/, run: async () => {
    writeFileSync(join(dir, 'a-file'), '');
    const cfg = runConfig('partial', [{ name: 'good', out: join(dir, 'partial-out') }, { name: 'bad', out: join(dir, 'a-file', 'sub') }]);
    return cli(['run', '--config', cfg, ...state('partial'), '--now', '2026-10-02T01:00:00Z']);
  } },
  { code: 64, what: 'bad command line', line: /could not parse the command line/, run: () => cli(['export', '--frobnicate']) },
  { code: 65, what: 'verify found differences', line: /is missing/, run: async () => {
    const out = join(dir, 'verify-out');
    const cfg = runConfig('verify', [{ name: 'v', out }]);
    const r = await cli(['run', '--config', cfg, ...state('verify'), '--now', '2026-10-02T01:00:00Z']);
    expect(r.code, r.stderr).toBe(0);
    const part = readdirSync(out, { recursive: true }).map(String).find((f) => f.endsWith('.jsonl'))!;
    rmSync(join(out, part));
    return cli(['verify', '--config', cfg, ...state('verify')]);
  } },
  { code: 66, what: 'log DB not found', line: /does not exist/, run: () => cli(['query', '--db', join(dir, 'nope.db')]) },
  { code: 66, what: 'not a SQLite database', line: /not a SQLite database|damaged/, run: () => { writeFileSync(join(dir, 'junk.db'), 'x'.repeat(4096)); return cli(['query', '--db', join(dir, 'junk.db')]); } },
  { code: 69, what: 'the DB is unreachable', line: /could not/, run: () => cli(['query', '--db', 'postgres://u:p@127.0.0.1:1/x']) },
  { code: 73, what: '--out is a file', line: /could not write .*a part of the path is not a directory/, run: () => { writeFileSync(join(dir, 'out-file'), ''); return cli(['export', '--db', db, ...ADHOC, '--dest', 'file', '--out', join(dir, 'out-file'), ...state('f')]); } },
  { code: 73, what: '--out where nothing can be created (no mkdir loop)', line: /the path cannot be created/, run: () => cli(['export', '--db', db, ...ADHOC, '--dest', 'file', '--out', '/proc/bifrost-logs-x', ...state('proc')]) },
  // The kernel answers a read of this process's own unmapped address 0 with EIO: a real I/O error, no fault injected.
  { code: 74, what: 'an I/O error reading the log DB', line: /disk I\/O error/, run: () => cli(['query', '--db', '/proc/self/mem']) },
  { code: 75, what: 'SQLite busy (a writer holds an exclusive lock past the busy timeout)', line: /busy/, run: async () => {
    const rb = join(dir, 'rollback.db');
    copyFileSync(db, rb);
    const c = new Database(rb);
    c.pragma('journal_mode = DELETE');
    c.close();
    const holder = await holdExclusive(rb);
    try {
      return await cli(['query', '--db', rb, '--limit', '1']);
    } finally {
      holder.kill('SIGKILL');
    }
  } },
  { code: 75, what: 'locked: another run holds the export', line: /already running \(pid \d+/, run: async () => {
    const cfg = runConfig('locked', [{ name: 'daily', out: join(dir, 'locked-out') }]);
    const st = join(dir, 'st-locked');
    const script = `import { acquireExportLock } from ${JSON.stringify(new URL('../../dist/run/lock.js', import.meta.url).href)};
      await acquireExportLock(${JSON.stringify(st)}, 'daily', 3600000, { warn() {}, info() {}, verbose() {} });
      process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => child.stdout!.once('data', r));
    try {
      return await cli(['run', '--config', cfg, '--state-dir', st, '--now', '2026-10-02T01:00:00Z']);
    } finally {
      child.kill('SIGKILL');
    }
  } },
  { code: 77, what: '--out this user may not write', line: /permission denied/, run: () => {
    const ro = join(dir, 'read-only');
    mkdirSync(ro, { recursive: true });
    chmodSync(ro, 0o555);
    return cliAsUser(['export', '--db', db, ...ADHOC, '--dest', 'file', '--out', join(ro, 'x'), '--state-dir', join(dir, 'nobody-home', 'st')]);
  } },
  { code: 77, what: 'a WAL DB whose -shm this user may not create', line: /WAL mode and logs\.db-shm does not exist; SQLite must create it in .*, which this user may not write/, run: () => {
    for (const f of ['-shm', '-wal']) if (existsSync(db + f)) rmSync(db + f);
    // As root every directory is writable: the DB's directory is made read-only for the unprivileged user.
    chmodSync(dir, 0o555);
    return cliAsUser(['query', '--db', db, '--limit', '1']).finally(() => chmodSync(dir, 0o755));
  } },
  { code: 78, what: 'invalid config', line: /could not load the config/, run: () => { writeFileSync(join(dir, 'bad.json'), '{ "log_exports": '); return cli(['run', '--config', join(dir, 'bad.json'), ...state('cfg')]); } },
];

describe('exit codes as the README table says', () => {
  it.each(rows.map((r) => [r.code, r.what, r] as const))('%i: %s', async (code, _what, row) => {
    const r = await row.run();
    expect(r.code, r.stderr).toBe(code);
    if (code !== 0) {
      expect(r.stderr).toMatch(/^bifrost-logs: /m);
      expect(r.stderr).toMatch(row.line);
      expect(r.stderr).not.toMatch(/internal error|this is a bug|\n\s+at /);
    }
  }, 60_000);
});
