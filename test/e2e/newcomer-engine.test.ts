import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { cli, cliUnprivileged, ndjson } from '../support/cli.js';

/** What a newcomer meets around the engine: verify without a config, an idle run, help, the state dir. */
let dir: string;
let db: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-newe-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, { rows: 400, seed: 23, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 3 });
  // Readable by the unprivileged user of the state-dir cases.
  for (const [path, mode] of [[dir, 0o755], [db, 0o644]] as const) chmodSync(path, mode);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DAY = ['--since', '2026-10-01', '--until', '2026-10-02', '--format', 'jsonl'];

describe('verify with only --state-dir', () => {
  it('checks the ad-hoc exports the ledger recorded, and finds a missing file', async () => {
    const state = join(dir, 'st-adhoc');
    const out = join(dir, 'out-adhoc');
    const e = await cli(['export', '--db', db, ...DAY, '--dest', 'file', '--out', out, '--state-dir', state]);
    expect(e.code, e.stderr).toBe(0);
    const v = await cli(['verify', '--state-dir', state, '--json']);
    expect(v.code, v.stderr).toBe(0);
    const lines = ndjson(v.stdout);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ export: 'logs', window_start: '2026-10-01T00:00:00.000Z', window_end: '2026-10-02T00:00:00.000Z', ok: true, differences: [] });
    expect(lines[0].rows).toBeGreaterThan(0);
    const plain = await cli(['verify', '--state-dir', state]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).toMatch(/^ok {2}logs \(run [0-9a-f]{8}\) 2026-10-01T00:00:00\.000Z → 2026-10-02T00:00:00\.000Z: [\d,]+ rows, 1 file$/m);
    // A delivered file removed: a difference, exit 65.
    const part = readdirSync(out, { recursive: true }).map(String).find((f) => f.endsWith('.jsonl'))!;
    rmSync(join(out, part));
    const bad = await cli(['verify', '--state-dir', state]);
    expect(bad.code).toBe(65);
    expect(bad.stderr).toMatch(/^bifrost-logs: could not verify the delivered exports: 1 difference found$/m);
    expect(bad.stderr).toMatch(/^DIFF logs \(run [0-9a-f]{8}\) .*is missing$/m);
  });

  it('never keeps a secret of the export in the ledger', async () => {
    const state = join(dir, 'st-secret');
    const e = await cli(['export', '--db', db, ...DAY, '--dest', 's3', '--bucket', 'b', '--endpoint', 'http://u:hunter2pw@127.0.0.1:1', '--state-dir', state], { env: { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example-secret', AWS_EC2_METADATA_DISABLED: 'true' } });
    expect(e.code).not.toBe(0);
    const ok = await cli(['export', '--db', db, ...DAY, '--dest', 'file', '--out', join(dir, 'out-secret'), '--anonymize', 'customer_id', '--hash-key-env', 'HK', '--state-dir', state], { env: { HK: 'k3y-v4lue-secret' } });
    expect(ok.code, ok.stderr).toBe(0);
    const Database = (await import('better-sqlite3')).default;
    const ledger = new Database(join(state, 'ledger.db'), { readonly: true });
    const text = JSON.stringify(ledger.prepare('SELECT * FROM runs').all());
    ledger.close();
    expect(text).not.toContain('hunter2pw');
    expect(text).not.toContain('k3y-v4lue-secret');
    const v = await cli(['verify', '--state-dir', state], { env: { HK: 'k3y-v4lue-secret' } });
    expect(v.code, v.stderr).toBe(0);
  });

  it('without a config and without a ledger it still says no config file was found (78)', async () => {
    const v = await cli(['verify', '--state-dir', join(dir, 'st-none')]);
    expect(v.code).toBe(78);
    expect(v.stderr).toMatch(/could not find the config: no config file found/);
    expect(existsSync(join(dir, 'st-none'))).toBe(false);
  });
});

describe('run with nothing due', () => {
  it('says so at info level, naming the next export due and when; --quiet silences it', async () => {
    const cfg = join(dir, 'idle.json');
    writeFileSync(cfg, JSON.stringify({ source: { path: db }, log_exports: { exports: [
      { name: 'nightly', schedule: { frequency: 'daily', time: '02:00', timezone: 'UTC' }, backfill_from: '2026-10-01', destination: { type: 'file', config: { path: join(dir, 'out-idle') } }, data: { format: 'jsonl' } },
      { name: 'weekly', schedule: { frequency: 'weekly', time: '03:00', timezone: 'UTC', day: 'monday' }, backfill_from: '2026-09-28T03:00:00Z', destination: { type: 'file', config: { path: join(dir, 'out-idle-w') } }, data: { format: 'jsonl' } },
    ] } }));
    const state = join(dir, 'st-idle');
    const first = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-03T03:00:00Z']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).not.toMatch(/nothing due/);
    const again = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-03T04:00:00Z']);
    expect(again.code, again.stderr).toBe(0);
    // nightly's next window ends 2026-10-04T02:00Z and is due after the default settle lag (600 s).
    expect(again.stderr).toBe('nothing due; next: nightly at 2026-10-04T02:10:00.000Z\n');
    const quiet = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-03T04:00:00Z', '--quiet']);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
  });
});

describe('every command has --help with examples', () => {
  it.each(['jobs', 'jobs list', 'jobs show', 'jobs retry', 'verify', 'check', 'init', 'cron', 'config', 'config schema'])('%s --help', async (cmd) => {
    const r = await cli([...cmd.split(' '), '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain(`bifrost-logs ${cmd}`);
  });
});

describe('an unwritable default state dir', () => {
  const asUser = cliUnprivileged;
  let home: string;
  beforeAll(() => {
    home = join(dir, 'ro-home');
    mkdirSync(home);
    chmodSync(home, 0o555);
    mkdirSync(join(dir, 'rw'), { mode: 0o777 });
    chmodSync(join(dir, 'rw'), 0o777);
  });

  it('export: one line naming the directory, a hint about --state-dir, exit 77, nothing written', async () => {
    const out = join(dir, 'rw', 'out');
    const r = await asUser(['export', '--db', db, ...DAY, '--dest', 'file', '--out', out], { HOME: home });
    expect(r.code, r.stderr).toBe(77);
    expect(r.stderr).toBe(`bifrost-logs: could not create the state directory: ${home}/.local/state/bifrost-logs/tmp: permission denied (${home}/.local)\nhint: pass --state-dir DIR (a directory this user can write), or set XDG_STATE_HOME\n`);
    expect(existsSync(out)).toBe(false);
  });

  it('jobs list: the same line for the ledger', async () => {
    const r = await asUser(['jobs', 'list'], { HOME: home });
    expect(r.code).toBe(77);
    expect(r.stderr).not.toMatch(/EACCES/);
    expect(r.stderr).toMatch(/^bifrost-logs: could not create the state directory: .*\/\.local\/state\/bifrost-logs: permission denied/m);
    expect(r.stderr).toMatch(/^hint: pass --state-dir DIR/m);
  });

  it('a file in the way of XDG_STATE_HOME: 73', async () => {
    writeFileSync(join(dir, 'rw', 'a-file'), '');
    chmodSync(join(dir, 'rw', 'a-file'), 0o666);
    const r = await asUser(['jobs', 'list'], { HOME: home, XDG_STATE_HOME: join(dir, 'rw', 'a-file', 'state') });
    expect(r.code).toBe(73);
    expect(r.stderr).toMatch(/^bifrost-logs: could not create the state directory: .*a part of the path is not a directory/m);
    expect(r.stderr).toMatch(/^hint: pass --state-dir DIR/m);
  });
});
