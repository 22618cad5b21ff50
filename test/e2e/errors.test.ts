import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { startPostgres } from '../support/services.js';
import { cli } from '../support/cli.js';
import { freePort } from '../support/services.js';

let dir: string;
let db: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-err-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, { rows: 200, seed: 3, schema: 'v1.5' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One clear line (plus an optional hint), no stack trace. */
function expectOneLine(stderr: string, re: RegExp) {
  const lines = stderr.trim().split('\n');
  expect(lines[0]).toMatch(/^bifrost-logs: could not /);
  expect(lines[0]).toMatch(re);
  expect(lines.length).toBeLessThanOrEqual(2);
  if (lines[1]) expect(lines[1]).toMatch(/^hint: /);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('bad command lines exit 64', () => {
  it.each([
    [['frobnicate'], /unknown command/],
    [['query', '--db', 'x.db', '--since', 'yesterdayish'], /is not a time/],
    [['export', '--db', 'x.db', '--dest', 'file', '--out', 'o', '--format', 'xml'], /xml/],
    [['query', '--db', 'x.db', '--limit', '-5'], /-5/],
    [['export', '--db', 'x.db', '--dest', 's4'], /unknown destination "s4" \(did you mean "s3"\?\)/],
    [['query', '--db', 'x.db', '--fields', 'request_idd'], /did you mean "request_id"/],
    [['stats', '--db', 'x.db', '--group-by', 'colour'], /cannot group by "colour"/],
  ])('%j', async (args, re) => {
    const r = await cli((args as string[]).map((a) => (a === 'x.db' ? db : a)));
    expect(r.code).toBe(64);
    expectOneLine(r.stderr, re as RegExp);
    expect(r.stdout).toBe('');
  });
});

describe('bad log DBs exit 66, and are never created or modified', () => {
  it('a missing file is reported and not created', async () => {
    const p = join(dir, 'nope.db');
    const r = await cli(['query', '--db', p]);
    expect(r.code).toBe(66);
    expectOneLine(r.stderr, /does not exist/);
    expect(existsSync(p)).toBe(false);
  });
  it('random bytes', async () => {
    const p = join(dir, 'random.db');
    writeFileSync(p, randomBytes(8192));
    const r = await cli(['query', '--db', p]);
    expect(r.code).toBe(66);
    expectOneLine(r.stderr, /not a SQLite database/);
  });
  it('a SQLite file without logs', async () => {
    const p = join(dir, 'other.db');
    new Database(p).exec('CREATE TABLE t (x)').close();
    const r = await cli(['stats', '--db', p]);
    expect(r.code).toBe(66);
    expectOneLine(r.stderr, /not a Bifrost log DB \(it has no "logs" table\)/);
  });
  it('a logs table missing a core column', async () => {
    const p = join(dir, 'partial.db');
    new Database(p).exec('CREATE TABLE logs (id text, timestamp text, provider text)').close();
    const r = await cli(['query', '--db', p]);
    expect(r.code).toBe(66);
    expectOneLine(r.stderr, /lacks object_type/);
  });
  it('nothing found lists every place tried', async () => {
    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    const r = await cli(['query'], { env: { HOME: home }, cwd: home });
    expect(r.code).toBe(66);
    expect(r.stderr).toMatch(/BIFROST_LOGS_DB/);
    expect(r.stderr).toMatch(/\.config\/bifrost\/logs\.db/);
    expect(r.stderr).toMatch(/logs\.db \(not found\)/);
  });
  it('the DB file is never modified by reads', async () => {
    const before = new Database(db, { readonly: true }).prepare('PRAGMA data_version').get();
    const { mtimeMs } = await import('node:fs').then((fs) => fs.statSync(db));
    await cli(['query', '--db', db, '--all', '--json']);
    await cli(['stats', '--db', db, '--group-by', 'provider']);
    const after = await import('node:fs').then((fs) => fs.statSync(db));
    expect(after.mtimeMs).toBe(mtimeMs);
    void before;
  });
});

describe('Postgres problems', () => {
  let pg: Awaited<ReturnType<typeof startPostgres>> | undefined;
  beforeAll(async () => { pg = await startPostgres(); });
  afterAll(async () => { await pg?.stop(); });
  it('an unreachable server exits 69', async () => {
    const port = await freePort();
    const r = await cli(['query', '--db', `postgres://u:secretpw@127.0.0.1:${port}/x`]);
    expect(r.code).toBe(69);
    expectOneLine(r.stderr, /could not connect to the log DB/);
    expect(r.stderr).not.toContain('secretpw');
  });
  it('a login failure is a config problem (78), reported without the password', async () => {
    const url = new URL(pg!.url);
    url.password = 'wrong-password-xyz';
    const r = await cli(['query', '--db', url.toString()]);
    expect(r.code).toBe(78);
    expectOneLine(r.stderr, /password|authentication/i);
    expect(r.stderr).not.toContain('wrong-password-xyz');
  });
  it('a database without logs exits 66', async () => {
    const r = await cli(['query', '--db', pg!.url]);
    expect(r.code).toBe(66);
    expectOneLine(r.stderr, /no "logs" table/);
  });
});

describe('output problems', () => {
  it('an unwritable output directory', async () => {
    // A directory below a regular file cannot be created, even by root.
    const blocker = join(dir, 'blocker');
    writeFileSync(blocker, '');
    const target = join(blocker, 'out');
    const r = await cli(['export', '--db', db, '--dest', 'file', '--out', target, '--format', 'jsonl', '--state-dir', join(dir, 'st')]);
    // A path that cannot be created is 73 (69 means unreachable, which this is not).
    expect(r.code).toBe(73);
    expectOneLine(r.stderr, /could not write .*: a part of the path is not a directory/);
  });
  it('a bad BIFROST_LOGS_THREADS is a config error (78) and nothing is written', async () => {
    const out = join(dir, 'thr-out');
    const r = await cli(['export', '--db', db, '--dest', 'file', '--out', out, '--format', 'jsonl', '--state-dir', join(dir, 'st')], { env: { BIFROST_LOGS_THREADS: 'lots' } });
    expect(r.code).toBe(78);
    expectOneLine(r.stderr, /BIFROST_LOGS_THREADS: expected a whole number from 1 to 64, got "lots"/);
    expect(existsSync(out) ? readdirSync(out).filter((f) => !f.startsWith('.')) : []).toEqual([]);
  });
});
