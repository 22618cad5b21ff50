import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { spawn, execFileSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
// @ts-expect-error plain JS module
import { generateRows, writeSqlite } from '../../fixtures/generator.mjs';
import { BIN, cli, ndjson } from '../support/cli.js';
import { isCompleted, type TruthRow } from '../support/truth.js';

const OPTS = { rows: 6000, seed: 5, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 5 };
let dir: string;
let db: string;
let truth: TruthRow[];
let n = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-run-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, OPTS);
  truth = [...generateRows(OPTS)] as TruthRow[];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Setup { cfg: string; out: string; state: string }
function setup(exp: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Setup {
  const id = ++n;
  const out = join(dir, `out${id}`);
  const state = join(dir, `state${id}`);
  const cfg = join(dir, `cfg${id}.json`);
  writeFileSync(cfg, JSON.stringify({
    source: { path: db },
    log_exports: {
      enabled: true,
      ...extra,
      exports: [{
        name: 'daily', enabled: true,
        schedule: { frequency: 'daily', time: '02:00', timezone: 'UTC' },
        backfill_from: '2026-10-01',
        destination: { type: 'file', config: { path: out, prefix: '{year}/{month}/{day}/' } },
        data: { format: 'jsonl', compression: 'gzip' },
        ...exp,
      }],
    },
  }));
  return { cfg, out, state };
}
const run = (s: Setup, now: string, more: string[] = [], env: Record<string, string> = {}) => cli(['run', '--config', s.cfg, '--state-dir', s.state, '--now', now, ...more], { env });
const allFiles = (d: string) => (existsSync(d) ? readdirSync(d, { recursive: true }).map(String).sort() : []);

/** Every record delivered (all parts, late ones too), by request id. */
function delivered(out: string): string[] {
  const ids: string[] = [];
  for (const f of allFiles(out).filter((x) => x.endsWith('.jsonl.gz'))) {
    for (const r of ndjson(gunzipSync(readFileSync(join(out, f))).toString())) ids.push(r.request_id);
  }
  return ids.sort();
}
const expectedIds = (start: string, end: string) => truth.filter((t) => isCompleted(t) && t.__ts_ms >= Date.parse(start) && t.__ts_ms < Date.parse(end)).map((t) => t.id).sort();

describe('run', () => {
  it('catches up every missed daily window, oldest first, then has nothing to do', async () => {
    const s = setup();
    const r = await run(s, '2026-10-05T03:00:00Z', ['--json']);
    expect(r.code, r.stderr).toBe(0);
    const finished = ndjson(r.stdout).filter((e) => e.event === 'finished');
    expect(finished.map((e) => e.window_start)).toEqual([
      '2026-10-01T00:00:00.000Z', '2026-10-01T02:00:00.000Z', '2026-10-02T02:00:00.000Z', '2026-10-03T02:00:00.000Z', '2026-10-04T02:00:00.000Z',
    ]);
    expect(delivered(s.out)).toEqual(expectedIds('2026-10-01T00:00:00Z', '2026-10-05T02:00:00Z'));
    for (const e of finished) expect(e.rows).toBe(expectedIds(e.window_start, e.window_end).length);
    const before = allFiles(s.out).map((f) => `${f}:${statSync(join(s.out, f)).mtimeMs}`);
    const again = await run(s, '2026-10-05T03:30:00Z', ['--json']);
    expect(again.code).toBe(0);
    expect(ndjson(again.stdout).filter((e) => e.event === 'finished')).toEqual([]);
    expect(allFiles(s.out).map((f) => `${f}:${statSync(join(s.out, f)).mtimeMs}`)).toEqual(before);
    const v = await cli(['verify', '--config', s.cfg, '--state-dir', s.state]);
    expect(v.code, v.stderr).toBe(0);
    const jobs = ndjson((await cli(['jobs', 'list', '--json', '--state-dir', s.state, '--config', s.cfg])).stdout);
    expect(jobs).toHaveLength(5);
    expect(Object.keys(jobs[0])).toEqual(expect.arrayContaining(['run_id', 'export', 'window_start', 'window_end', 'status', 'rows', 'bytes', 'files']));
  });

  it('waits for the settle lag after a slot', async () => {
    const s = setup({ backfill_from: undefined });
    const early = await run(s, '2026-10-04T02:05:00Z', ['--json']);
    expect(early.code).toBe(0);
    // Without backfill the first window is the one ending at the latest *due* slot: 10-03 02:00.
    expect(ndjson(early.stdout).filter((e) => e.event === 'finished').map((e) => e.window_end)).toEqual(['2026-10-03T02:00:00.000Z']);
    const later = await run(s, '2026-10-04T02:11:00Z', ['--json']);
    expect(ndjson(later.stdout).filter((e) => e.event === 'finished').map((e) => e.window_end)).toEqual(['2026-10-04T02:00:00.000Z']);
  });

  it('delivers late rows as a late part of their own window, exactly once', async () => {
    const copy = join(dir, 'late.db');
    writeSqlite(copy, OPTS);
    const s = setup({ backfill_from: '2026-10-02' });
    const cfg = JSON.parse(readFileSync(s.cfg, 'utf8'));
    cfg.source.path = copy;
    writeFileSync(s.cfg, JSON.stringify(cfg));
    expect((await run(s, '2026-10-04T03:00:00Z')).code).toBe(0);
    const w = new Database(copy);
    const cols = (w.prepare('PRAGMA table_info(logs)').all() as Array<{ name: string }>).map((c) => c.name);
    const base = w.prepare('SELECT * FROM logs WHERE status = ? LIMIT 1').get('success') as Record<string, unknown>;
    const ins = w.prepare(`INSERT INTO logs (${cols.map((c) => `"${c}"`).join(',')}) VALUES (${cols.map(() => '?').join(',')})`);
    const lateIds = ['late-a', 'late-b', 'late-c'];
    ins.run(...cols.map((c) => (c === 'id' ? 'late-a' : c === 'timestamp' || c === 'created_at' ? '2026-10-02 10:00:00.25+00:00' : base[c])));
    ins.run(...cols.map((c) => (c === 'id' ? 'late-b' : c === 'timestamp' || c === 'created_at' ? '2026-10-03T01:59:59.5Z' : base[c])));
    ins.run(...cols.map((c) => (c === 'id' ? 'late-c' : c === 'timestamp' || c === 'created_at' ? '2026-10-03 07:30:00+05:30' : base[c])));
    w.close();
    const r = await run(s, '2026-10-04T03:10:00Z', ['--json']);
    expect(r.code, r.stderr).toBe(0);
    const ev = ndjson(r.stdout).filter((e) => e.event === 'finished');
    // late-b is 01:59:59.005 (the unpadded .5Z form) and late-c is exactly 02:00Z: two windows get late parts.
    expect(ev.map((e) => [e.kind, e.window_start, e.rows])).toEqual([['late', '2026-10-02T02:00:00.000Z', 2], ['late', '2026-10-03T02:00:00.000Z', 1]]);
    expect(allFiles(s.out).some((f) => /_late-0001\.jsonl\.gz$/.test(f))).toBe(true);
    const want = [...expectedIds('2026-10-02T00:00:00Z', '2026-10-04T02:00:00Z'), ...lateIds].sort();
    expect(delivered(s.out)).toEqual(want);
    expect(ndjson((await run(s, '2026-10-04T03:20:00Z', ['--json'])).stdout).filter((e) => e.event === 'finished')).toEqual([]);
    expect(delivered(s.out)).toEqual(want);
    const v = await cli(['verify', '--config', s.cfg, '--state-dir', s.state]);
    expect(v.code, v.stderr).toBe(0);
  });

  it('delivers a late row of any age to its own window; a late processing row once it finishes; reports rows before the first window', async () => {
    const copy = join(dir, 'old-late.db');
    writeSqlite(copy, OPTS);
    const s = setup({ backfill_from: '2026-10-02' });
    const cfg = JSON.parse(readFileSync(s.cfg, 'utf8'));
    cfg.source.path = copy;
    cfg.log_exports.late_horizon_secs = 3600; // an old config key: accepted, never drops a row
    writeFileSync(s.cfg, JSON.stringify(cfg));
    expect((await run(s, '2026-10-05T03:00:00Z')).code).toBe(0);
    const w = new Database(copy);
    const cols = (w.prepare('PRAGMA table_info(logs)').all() as Array<{ name: string }>).map((c) => c.name);
    const base = w.prepare('SELECT * FROM logs WHERE status = ? LIMIT 1').get('success') as Record<string, unknown>;
    const ins = w.prepare(`INSERT INTO logs (${cols.map((c) => `"${c}"`).join(',')}) VALUES (${cols.map(() => '?').join(',')})`);
    const row = (id: string, ts: string, status = 'success') => ins.run(...cols.map((c) => (c === 'id' ? id : c === 'timestamp' || c === 'created_at' ? ts : c === 'status' ? status : base[c])));
    // Stamped five and four days before the run: far older than any horizon.
    row('old-a', '2026-10-02T05:00:00Z');
    row('old-b', '2026-10-03T05:00:00Z');
    row('old-proc', '2026-10-02T06:00:00Z', 'processing');
    // Before the export's first window (backfill_from 2026-10-02T00:00Z).
    row('before-a', '2026-10-01T12:00:00Z');
    row('before-b', '2026-10-01T13:00:00Z');
    w.close();
    const now1 = '2026-10-07T03:00:00Z';
    const r = await run(s, now1, ['--json']);
    expect(r.code, r.stderr).toBe(0);
    const ev = ndjson(r.stdout);
    expect(ev.filter((e) => e.event === 'finished').map((e) => [e.kind, e.window_start, e.rows])).toEqual([
      ['window', '2026-10-05T02:00:00.000Z', expectedIds('2026-10-05T02:00:00Z', '2026-10-06T02:00:00Z').length],
      ['window', '2026-10-06T02:00:00.000Z', expectedIds('2026-10-06T02:00:00Z', '2026-10-07T02:00:00Z').length],
      ['late', '2026-10-02T02:00:00.000Z', 1], ['late', '2026-10-03T02:00:00.000Z', 1],
    ]);
    const un = ev.filter((e) => e.event === 'unplaced_rows');
    expect(un.map((e) => [e.rows, e.window_start, e.window_end])).toEqual([[2, '2026-10-01T12:00:00.000Z', '2026-10-01T13:00:00.000Z']]);
    expect(r.stderr).toContain('2 row(s) inserted since the last run are stamped 2026-10-01T12:00:00.000Z → 2026-10-01T13:00:00.000Z');
    const shown = JSON.parse((await cli(['jobs', 'show', String(un[0].run_id), '--json', '--state-dir', s.state, '--config', s.cfg])).stdout);
    expect([shown.kind, shown.rows, shown.window_start]).toEqual(['unplaced', 2, '2026-10-01T12:00:00.000Z']);
    const want = [...expectedIds('2026-10-02T00:00:00Z', '2026-10-07T02:00:00Z'), 'old-a', 'old-b'].sort();
    expect(delivered(s.out)).toEqual(want);
    // Reported once; nothing else due.
    const again = await run(s, '2026-10-07T03:10:00Z', ['--json']);
    expect(ndjson(again.stdout).filter((e) => e.event === 'finished' || e.event === 'unplaced_rows')).toEqual([]);
    // The late processing row finishes: its window (inside the restatement lookback) is delivered again as
    // revision 2, holding it once.
    const w2 = new Database(copy);
    w2.prepare('UPDATE logs SET status = ? WHERE id = ?').run('success', 'old-proc');
    w2.close();
    const fin = await run(s, '2026-10-07T03:20:00Z', ['--json']);
    expect(ndjson(fin.stdout).filter((e) => e.event === 'finished').map((e) => [e.kind, e.window_start, e.rows, e.revision])).toEqual([
      ['restate', '2026-10-02T02:00:00.000Z', expectedIds('2026-10-02T02:00:00Z', '2026-10-03T02:00:00Z').length + 2, 2],
    ]);
    expect(delivered(s.out)).toEqual([...want, 'old-proc'].sort());
    expect(ndjson((await run(s, '2026-10-07T03:30:00Z', ['--json'])).stdout).filter((e) => e.event === 'finished')).toEqual([]);
    const v = await cli(['verify', '--config', s.cfg, '--state-dir', s.state]);
    expect(v.code, v.stderr).toBe(0);
  });

  it('verify catches a damaged file (65)', async () => {
    const s = setup();
    await run(s, '2026-10-03T03:00:00Z');
    const part = allFiles(s.out).find((f) => f.endsWith('.jsonl.gz'))!;
    const p = join(s.out, part);
    const b = readFileSync(p);
    b[b.length - 5] ^= 0xff;
    writeFileSync(p, b);
    const v = await cli(['verify', '--config', s.cfg, '--state-dir', s.state]);
    expect(v.code).toBe(65);
    expect(v.stderr).toContain(part);
    expect(v.stderr).toMatch(/sha256 differs/);
    rmSync(p);
    const v2 = await cli(['verify', '--config', s.cfg, '--state-dir', s.state]);
    expect(v2.code).toBe(65);
    expect(v2.stderr).toMatch(/is missing/);
  });

  it('a failed window is recorded, blocks later windows, and is retried', async () => {
    const s = setup();
    writeFileSync(s.out, 'a file where the output directory should be');
    const r = await run(s, '2026-10-03T03:00:00Z');
    // An output directory that is a file cannot be created: 73 (69, "unreachable", was wrong).
    expect(r.code).toBe(73);
    expect(r.stderr).toMatch(/^bifrost-logs: daily: could not write/m);
    const failed = ndjson((await cli(['jobs', 'list', '--json', '--status', 'failed', '--state-dir', s.state, '--config', s.cfg])).stdout);
    expect(failed).toHaveLength(1);
    expect(failed[0].window_start).toBe('2026-10-01T00:00:00.000Z');
    rmSync(s.out);
    const retry = await cli(['jobs', 'retry', failed[0].run_id, '--state-dir', s.state, '--config', s.cfg]);
    expect(retry.code, retry.stderr).toBe(0);
    const show = JSON.parse((await cli(['jobs', 'show', failed[0].run_id, '--json', '--state-dir', s.state, '--config', s.cfg])).stdout);
    expect(show.status).toBe('failed');
    const rest = await run(s, '2026-10-03T03:00:00Z', ['--json']);
    expect(ndjson(rest.stdout).filter((e) => e.event === 'finished').map((e) => e.window_start)).toEqual(['2026-10-01T02:00:00.000Z', '2026-10-02T02:00:00.000Z']);
    expect(delivered(s.out)).toEqual(expectedIds('2026-10-01T00:00:00Z', '2026-10-03T02:00:00Z'));
  });
});

describe('run --now earlier than the last run', () => {
  it('delivers nothing twice; the later run then delivers only what is still due', async () => {
    const s = setup();
    const late = await run(s, '2026-10-04T03:00:00Z', ['--json']);
    expect(late.code, late.stderr).toBe(0);
    const before = delivered(s.out);
    expect(before).toEqual(expectedIds('2026-10-01T00:00:00Z', '2026-10-04T02:00:00Z'));
    const earlier = await run(s, '2026-10-02T03:00:00Z', ['--json']);
    expect(earlier.code, earlier.stderr).toBe(0);
    expect(ndjson(earlier.stdout).filter((e) => e.event === 'finished')).toEqual([]);
    expect(delivered(s.out)).toEqual(before);
    const next = await run(s, '2026-10-05T03:00:00Z', ['--json']);
    expect(next.code, next.stderr).toBe(0);
    expect(delivered(s.out)).toEqual(expectedIds('2026-10-01T00:00:00Z', '2026-10-05T02:00:00Z'));
    const v = await cli(['verify', '--config', s.cfg, '--state-dir', s.state]);
    expect(v.code, v.stderr).toBe(0);
  });
});

describe('lock', () => {
  function holdLock(s: Setup): Promise<import('node:child_process').ChildProcess> {
    const script = `import { acquireExportLock } from ${JSON.stringify(new URL('../../dist/run/lock.js', import.meta.url).href)};
      const l = await acquireExportLock(${JSON.stringify(s.state)}, 'daily', 3600000, { warn() {}, info() {}, verbose() {} });
      process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    return new Promise((resolve) => child.stdout!.once('data', () => resolve(child)));
  }

  it('a concurrent run exits 75 naming the holder; a stopped holder keeps it; a dead one is taken over', async () => {
    const s = setup();
    const holder = await holdLock(s);
    try {
      const r = await run(s, '2026-10-03T03:00:00Z');
      expect(r.code).toBe(75);
      expect(r.stderr).toMatch(new RegExp(`already running \\(pid ${holder.pid} since \\d{4}-`));
      expect(allFiles(s.out)).toEqual([]);
      process.kill(holder.pid!, 'SIGSTOP');
      expect((await run(s, '2026-10-03T03:00:00Z')).code).toBe(75);
      process.kill(holder.pid!, 'SIGCONT');
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    const after = await run(s, '2026-10-03T03:00:00Z');
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).toMatch(/taking over the lock of pid \d+/);
    expect(new Database(join(s.state, 'locks', 'locks.db'), { readonly: true }).prepare('SELECT count(*) AS n FROM holders').get()).toEqual({ n: 0 });
  });
  it('8 runs started at once after a kill -9 of the holder: exactly one takes over and delivers, every row once', async () => {
    const s = setup();
    const holder = await holdLock(s);
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    const runs = await Promise.all(Array.from({ length: 8 }, () => run(s, '2026-10-03T03:00:00Z', ['--json'])));
    for (const r of runs) expect([0, 75], r.stderr).toContain(r.code);
    const takers = runs.filter((r) => /taking over the lock of pid/.test(r.stderr));
    expect(takers.length).toBe(1);
    const delivering = runs.filter((r) => ndjson(r.stdout).some((e) => e.event === 'finished'));
    expect(delivering.length).toBe(1);
    expect(delivering[0]!.code).toBe(0);
    // The others were refused (75) or, started after the winner finished, found nothing due.
    for (const r of runs.filter((x) => x !== delivering[0])) {
      if (r.code === 75) expect(r.stderr).toMatch(/already running \(pid \d+ since \d{4}-/);
    }
    expect(delivered(s.out)).toEqual(expectedIds('2026-10-01T00:00:00Z', '2026-10-03T02:00:00Z'));
  });
});

describe('crash safety', () => {
  it('kill -9 at random points (10 seeds): each next run delivers exactly the SQL row set, no orphans', async () => {
    const big = join(dir, 'big.db');
    const BIG = { rows: 60_000, seed: 9, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 4 };
    writeSqlite(big, BIG);
    const rows = [...generateRows(BIG)] as TruthRow[];
    const want = rows.filter((t) => isCompleted(t) && t.__ts_ms >= Date.parse('2026-10-01T00:00:00Z') && t.__ts_ms < Date.parse('2026-10-05T02:00:00Z')).map((t) => t.id).sort();
    let x = 12345;
    const rand = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let seed = 1; seed <= 10; seed++) {
      const s = setup({ data: { format: 'jsonl', compression: 'gzip', max_rows_per_file: 3000 } });
      const cfg = JSON.parse(readFileSync(s.cfg, 'utf8'));
      cfg.source.path = big;
      writeFileSync(s.cfg, JSON.stringify(cfg));
      const delayMs = 150 + Math.floor(rand() * 1500);
      const child = spawn(process.execPath, [BIN, 'run', '--config', s.cfg, '--state-dir', s.state, '--now', '2026-10-05T03:00:00Z', '--quiet'], { stdio: 'ignore' });
      // Listen before the kill: a fast machine may finish the run first, and 'exit' fires only once.
      const exited = new Promise((r) => child.once('exit', r));
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      await exited;
      // A killed process may leave a hidden temp file, never a final name; the next run clears it.
      expect(allFiles(s.out).filter((f) => !f.includes('.tmp-') && !/\.(manifest\.json|jsonl\.gz)$/.test(f.split('/').pop()!) && !/^\d{4}(\/\d{2}){0,2}$/.test(f)), `seed ${seed}`).toEqual([]);
      const r = await run(s, '2026-10-05T03:00:00Z');
      expect(allFiles(s.out).filter((f) => f.includes('.tmp-')), `seed ${seed}`).toEqual([]);
      expect(r.code, `seed ${seed} (killed after ${delayMs} ms): ${r.stderr}`).toBe(0);
      expect(delivered(s.out), `seed ${seed}`).toEqual(want);
      // Every data file belongs to a manifest: no orphans.
      const listed = allFiles(s.out).filter((f) => f.endsWith('.manifest.json')).flatMap((f) => JSON.parse(readFileSync(join(s.out, f), 'utf8')).files.map((y: { key: string }) => y.key));
      expect(allFiles(s.out).filter((f) => f.endsWith('.gz')).sort(), `seed ${seed}`).toEqual([...listed].sort());
    }
  }, 240_000); // ten kills and ten full runs; slow when the suite shares the cores
});

describe('config errors exit 78 with every problem at once', () => {
  const write = (name: string, text: string) => { const p = join(dir, name); writeFileSync(p, text); return p; };
  it.each([
    ['bad.json', '{ "log_exports": { "exports": [ }', /bad\.json/],
    ['bad.yaml', 'log_exports:\n  exports:\n    - name: x\n   bad: [', /bad\.yaml/],
  ])('syntax error in %s', async (name, text, re) => {
    const r = await cli(['run', '--config', write(name, text), '--state-dir', join(dir, 'st-cfg')]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(re);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
  it('reports each problem with its JSON path and did-you-mean', async () => {
    const p = write('many.json', JSON.stringify({ log_exports: { exports: [
      { name: 'a', schedule: { frequency: 'daily', time: '25:00', timezone: 'Mars/Olympus' }, destination: { type: 'file', config: { path: '/tmp/x' } }, data: { format: 'xml', filters: { min_latncy_ms: 5 } } },
      { name: 'b', schedule: { frequency: 'monthly', day: 32 }, destination: { type: 's4', config: {} } },
    ] } }));
    const r = await cli(['check', '--config', p]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('log_exports.exports[0].schedule.time: expected HH:MM, got "25:00"');
    expect(r.stderr).toContain('log_exports.exports[0].schedule.timezone: unknown timezone "Mars/Olympus"');
    expect(r.stderr).toMatch(/log_exports\.exports\[0\]\.data\.format: expected one of .*got "xml"/);
    expect(r.stderr).toContain('log_exports.exports[0].data.filters.min_latncy_ms: unknown key (did you mean "min_latency_ms"?)');
    expect(r.stderr).toMatch(/log_exports\.exports\[1\]\.schedule\.day: .*31/);
    expect(r.stderr).toMatch(/log_exports\.exports\[1\]\.destination.*unknown destination type "s4"/);
  });
  it('a missing secret variable names the key and the variable', async () => {
    const s = setup({ data: { format: 'jsonl', transformations: [{ type: 'anonymize', fields: ['customer_id'], method: 'hash', key: 'env.NOPE_KEY' }] } });
    const r = await run(s, '2026-10-03T03:00:00Z');
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('log_exports.exports[0].data.transformations[0].key: environment variable NOPE_KEY is not set');
  });
  it('accepts the documented example as it is', async () => {
    const p = write('doc.json', JSON.stringify({ log_exports: { enabled: true, exports: [{
      name: 'daily_s3_export', enabled: true,
      schedule: { frequency: 'daily', time: '02:00', timezone: 'UTC' },
      destination: { type: 's3', config: { bucket: 'b', region: 'us-west-2', prefix: 'daily-exports/{year}/{month}/{day}/',
        credentials: { access_key_id: 'env.AWS_ACCESS_KEY_ID', secret_access_key: '${AWS_SECRET_ACCESS_KEY}' } } },
      data: { format: 'parquet', compression: 'gzip', include: ['request_logs', 'response_logs', 'error_logs'],
        filters: { date_range: 'last_24_hours', status_codes: [200, 400, 500] },
        transformations: [{ type: 'anonymize', fields: ['customer_id'], method: 'hash' }] } }] } }));
    const r = await cli(['config', 'schema']);
    expect(JSON.parse(r.stdout).title).toBe('bifrost-logs configuration');
    const plan = await cli(['run', '--config', p, '--db', db, '--plan', '--state-dir', join(dir, 'st-doc'), '--now', '2026-10-03T03:00:00Z'], { env: { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'sekrit-value' } });
    // Valid as written; the hash key comes from BIFROST_LOGS_HASH_KEY when the example names none.
    expect(plan.code).toBe(78);
    expect(plan.stderr).toMatch(/transformations\[0\]: method "hash" needs a key/);
    const ok = await cli(['run', '--config', p, '--db', db, '--plan', '--json', '--state-dir', join(dir, 'st-doc'), '--now', '2026-10-03T03:00:00Z'], { env: { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'sekrit-value', BIFROST_LOGS_HASH_KEY: 'hk' } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ndjson(ok.stdout)[0]).toMatchObject({ export: 'daily_s3_export', kind: 'window', window_start: '2026-10-02T02:00:00.000Z' });
    expect(ok.stdout + ok.stderr).not.toContain('sekrit-value');
  });
});

describe('cron', () => {
  it('prints a crontab line whose command works as printed', async () => {
    const s = setup();
    const r = await cli(['cron', '--every', '15m', '--config', s.cfg, '--state-dir', s.state]);
    expect(r.code).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith('*/15 * * * * '))!;
    expect(line).toContain(' run --quiet');
    const command = line.slice('*/15 * * * * '.length);
    execFileSync('/bin/sh', ['-c', command.replace(' run --quiet', ' run --now 2026-10-03T03:00:00Z --quiet')], { env: { PATH: '/usr/bin:/bin' } });
    expect(delivered(s.out)).toEqual(expectedIds('2026-10-01T00:00:00Z', '2026-10-03T02:00:00Z'));
  });
});
