import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
// @ts-expect-error plain JS module
import { generateRows, writeSqlite, loadPostgres } from '../../fixtures/generator.mjs';
import { BIN, cli, ndjson } from '../support/cli.js';
import { startPostgres, startS3, type PostgresService, type S3Service } from '../support/services.js';
import { isCompleted, type TruthRow } from '../support/truth.js';

/**
 * The gateway changes delivered rows: it reprices a window, lands rows stamped
 * days back, and finishes a `processing` row. `verify` sees the drift, the
 * next run restates exactly the changed windows (and adds the late rows), and
 * what is delivered equals the DB again, row for row, with current costs.
 */
const OPTS = { rows: 1400, seed: 47, schema: 'newer', start: '2026-10-01T00:00:00Z', days: 7 };
const NOW1 = '2026-10-08T00:30:00Z';
const NOW2 = '2026-10-08T00:40:00Z';
const NOW3 = '2026-10-08T00:50:00Z';
const DAY = 86_400_000;
const T0 = Date.parse('2026-10-01T00:00:00Z');
const END = Date.parse('2026-10-08T00:00:00Z');
const BUCKET = 'restate';
let dir: string;
let truth: TruthRow[];
let pgs: PostgresService;
let s3: S3Service;
let n = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-restate-'));
  truth = [...generateRows(OPTS)] as TruthRow[];
  [pgs, s3] = await Promise.all([startPostgres(), startS3({ buckets: [BUCKET] })]);
}, 180_000);
afterAll(async () => {
  await Promise.all([pgs?.stop(), s3?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const dayOf = (ms: number) => new Date(T0 + Math.floor((ms - T0) / DAY) * DAY).toISOString();

/** The changes, and the expected cost of every completed row of [T0, END) afterwards (truth from the generator). */
function changes() {
  const completed = truth.filter((t) => isCompleted(t) && t.__ts_ms >= T0 && t.__ts_ms < END);
  const repriced = completed.filter((t) => t.cost !== null && t.__ts_ms >= T0 + DAY && t.__ts_ms < T0 + 2 * DAY).slice(0, 15).map((t) => t.id as string);
  const proc = truth.find((t) => t.status === 'processing' && t.__ts_ms >= T0 + 4 * DAY && t.__ts_ms < END)!;
  const base = completed.find((t) => t.cost !== null)!;
  const expected = new Map<string, number | null>(completed.map((t) => [t.id as string, t.cost as number | null]));
  for (const id of repriced) expected.set(id, (expected.get(id) as number) * 3 + 0.5);
  expected.set(proc.id as string, 0.25);
  // Stamped five days before the run, inserted after its window was delivered.
  const lateTs = Date.parse('2026-10-03T05:00:00Z');
  const late = ['late-5d-a', 'late-5d-b'];
  for (const id of late) expected.set(id, base.cost as number);
  return {
    repriced, proc: proc.id as string, procWindow: dayOf(proc.__ts_ms), base: base.id as string, late, lateTs, expected,
    restated: [dayOf(T0 + DAY), dayOf(proc.__ts_ms)].sort(), lateWindow: dayOf(lateTs),
  };
}

interface Src { config: Record<string, unknown>; exec(sql: string, params?: unknown[]): Promise<void>; ts(ms: number): string; ph(i: number): string; close(): Promise<void> }

async function sqliteSource(): Promise<Src> {
  const path = join(dir, `src${++n}.db`);
  writeSqlite(path, OPTS);
  return {
    config: { path },
    async exec(sql, params = []) { const d = new Database(path); try { d.prepare(sql).run(...params); } finally { d.close(); } },
    ts: (ms) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '+00:00'),
    ph: () => '?',
    async close() {},
  };
}

async function postgresSource(): Promise<Src> {
  const url = await pgs.createDatabase(`src${++n}`);
  await loadPostgres(url, OPTS);
  return {
    config: { url },
    async exec(sql, params = []) { const c = new pg.Client({ connectionString: url }); await c.connect(); try { await c.query(sql, params); } finally { await c.end(); } },
    ts: (ms) => new Date(ms).toISOString(),
    ph: (i) => `$${i}`,
    async close() {},
  };
}

async function applyChanges(src: Src, c: ReturnType<typeof changes>, cols: string[]) {
  const ids = c.repriced.map((_, i) => src.ph(i + 1)).join(', ');
  // A bulk reprice rewrites every cost column the store has.
  const parts = ['cost = cost * 3 + 0.5', ...['input_cost', 'output_cost', 'additional_cost'].filter((x) => cols.includes(x)).map((x) => `${x} = coalesce(${x}, 0) * 3`)];
  await src.exec(`UPDATE logs SET ${parts.join(', ')} WHERE id IN (${ids})`, c.repriced);
  await src.exec(`UPDATE logs SET status = 'success', cost = 0.25, latency = 1234, prompt_tokens = 10, completion_tokens = 5, total_tokens = 15 WHERE id = ${src.ph(1)}`, [c.proc]);
  const copy = cols.filter((x) => x !== 'inc_number');
  for (const id of c.late) {
    const params: unknown[] = [];
    const bind = (v: unknown) => { params.push(v); return src.ph(params.length); };
    const sel = copy.map((x) => (x === 'id' ? bind(id) : x === 'timestamp' || x === 'created_at' ? bind(src.ts(c.lateTs)) : `"${x}"`));
    await src.exec(`INSERT INTO logs (${copy.map((x) => `"${x}"`).join(', ')}) SELECT ${sel.join(', ')} FROM logs WHERE id = ${bind(c.base)}`, params);
  }
}

async function columnsOf(src: Src, dialect: 'sqlite' | 'postgres'): Promise<string[]> {
  if (dialect === 'sqlite') { const d = new Database(String(src.config.path), { readonly: true }); try { return (d.prepare('PRAGMA table_info(logs)').all() as Array<{ name: string }>).map((x) => x.name); } finally { d.close(); } }
  const c = new pg.Client({ connectionString: String(src.config.url) }); await c.connect();
  try {
    const r = await c.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'logs' AND table_schema = 'public' AND (column_default IS NULL OR column_default NOT LIKE 'nextval%') AND is_identity = 'NO'`);
    return r.rows.map((x) => x.column_name as string);
  } finally { await c.end(); }
}

type Delivered = (strict?: boolean) => Promise<Array<{ request_id: string; cost_usd: number | null }>>;

/** The records of each window's current manifest files (object stores and files). */
function fromManifests(list: () => Promise<string[]>, read: (key: string) => Promise<Buffer | null>): Delivered {
  return async (strict = true) => {
    const out: Array<{ request_id: string; cost_usd: number | null }> = [];
    const keys = await list();
    const listed = new Set<string>();
    for (const mk of keys.filter((k) => k.endsWith('.manifest.json'))) {
      const m = JSON.parse((await read(mk))!.toString());
      // A restated window's parts carry its revision in their names.
      if (m.revision > 1) for (const f of m.files) expect(f.key).toContain(`_r${String(m.revision).padStart(4, '0')}_`);
      for (const f of m.files) {
        listed.add(f.key);
        const b = await read(f.key);
        expect(b, `${f.key} of ${mk} (revision ${m.revision})`).not.toBeNull();
        for (const r of ndjson(gunzipSync(b!).toString())) out.push({ request_id: r.request_id, cost_usd: r.cost_usd });
      }
    }
    // Superseded revisions' files are gone: every data file is in a current manifest.
    if (strict) expect(keys.filter((k) => /\.jsonl\.gz$/.test(k) && !listed.has(k))).toEqual([]);
    return out;
  };
}

function fileDest(): { destination: Record<string, unknown>; delivered: Delivered; env: Record<string, string> } {
  const out = join(dir, `out${++n}`);
  const list = async () => (existsSync(out) ? readdirSync(out, { recursive: true }).map(String) : []);
  return { destination: { type: 'file', config: { path: out, prefix: '{date}/' } }, delivered: fromManifests(list, async (k) => (existsSync(join(out, k)) ? readFileSync(join(out, k)) : null)), env: {} };
}

function s3Dest(): { destination: Record<string, unknown>; delivered: Delivered; env: Record<string, string> } {
  const id = ++n;
  const prefix = `p${id}/{date}/`;
  const client = new S3Client(s3.clientConfig);
  const listDir = join(s3.directory, BUCKET);
  const list = async () => {
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
    const r = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `p${id}/` }));
    void listDir;
    return (r.Contents ?? []).map((o) => o.Key!);
  };
  const read = async (key: string) => {
    try { const r = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key })); return Buffer.from(await r.Body!.transformToByteArray()); } catch { return null; }
  };
  return {
    destination: { type: 's3', config: { bucket: BUCKET, region: 'us-east-1', endpoint: s3.endpoint, force_path_style: true, prefix, credentials: { access_key_id: 'env.S3_ID', secret_access_key: 'env.S3_SECRET' } } },
    delivered: fromManifests(list, read), env: { S3_ID: s3.accessKeyId, S3_SECRET: s3.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' },
  };
}

async function pgDest(): Promise<{ destination: Record<string, unknown>; delivered: Delivered; env: Record<string, string> }> {
  const url = await pgs.createDatabase(`wh${++n}`);
  return {
    destination: { type: 'postgres', config: { url, schema: 'public', table: 'requests' } },
    delivered: async () => {
      const c = new pg.Client({ connectionString: url }); await c.connect();
      try { return (await c.query('SELECT request_id, cost_usd FROM public.requests')).rows.map((r) => ({ request_id: r.request_id as string, cost_usd: r.cost_usd === null ? null : Number(r.cost_usd) })); } finally { await c.end(); }
    },
    env: {},
  };
}

function expectEqualsDb(rows: Array<{ request_id: string; cost_usd: number | null }>, expected: Map<string, number | null>) {
  const ids = rows.map((r) => r.request_id).sort();
  expect(ids).toEqual([...expected.keys()].sort()); // each row once
  for (const r of rows) {
    const want = expected.get(r.request_id)!;
    if (want === null) expect(r.cost_usd, r.request_id).toBeNull();
    else expect(r.cost_usd, r.request_id).toBeCloseTo(want, 9);
  }
}

async function scenario(dialect: 'sqlite' | 'postgres', dest: { destination: Record<string, unknown>; delivered: Delivered; env: Record<string, string> }) {
  const src = dialect === 'sqlite' ? await sqliteSource() : await postgresSource();
  const cols = await columnsOf(src, dialect);
  const cfg = join(dir, `cfg${++n}.json`);
  const state = join(dir, `state${n}`);
  writeFileSync(cfg, JSON.stringify({ source: src.config, log_exports: { exports: [{
    name: 'daily', schedule: { frequency: 'daily', time: '00:00', timezone: 'UTC' }, backfill_from: '2026-10-01',
    destination: dest.destination, data: { format: 'jsonl', compression: 'gzip', max_rows_per_file: 90 },
  }] } }));
  const run = (now: string) => cli(['run', '--config', cfg, '--state-dir', state, '--now', now, '--json'], { env: dest.env });
  const verify = () => cli(['verify', '--config', cfg, '--state-dir', state], { env: dest.env });
  const c = changes();
  const first = await run(NOW1);
  expect(first.code, first.stderr).toBe(0);
  expect(ndjson(first.stdout).filter((e) => e.event === 'finished')).toHaveLength(7);
  expect((await verify()).code).toBe(0);

  await applyChanges(src, c, cols);
  const drift = await verify();
  expect(drift.code, drift.stderr).toBe(65);
  expect(drift.stderr).toMatch(new RegExp(`${c.restated[0]!.slice(0, 10)}.*rows changed since revision 1 was delivered: cost`));
  expect(drift.stderr).toMatch(new RegExp(`${c.procWindow.slice(0, 10)}.*rows changed since revision 1 was delivered: rows \\d+ → \\d+`));

  const second = await run(NOW2);
  expect(second.code, second.stderr).toBe(0);
  const fin = ndjson(second.stdout).filter((e) => e.event === 'finished');
  expect(fin.filter((e) => e.kind === 'restate').map((e) => e.window_start).sort()).toEqual(c.restated);
  expect(fin.filter((e) => e.kind === 'restate').every((e) => e.revision === 2)).toBe(true);
  expect(fin.filter((e) => e.kind !== 'restate').map((e) => [e.kind, e.window_start, e.rows])).toEqual(c.restated.includes(c.lateWindow) ? [] : [['late', c.lateWindow, 2]]);
  expectEqualsDb(await dest.delivered(), c.expected);
  const ok = await verify();
  expect(ok.code, ok.stderr).toBe(0);
  const third = await run(NOW3);
  expect(third.code, third.stderr).toBe(0);
  expect(ndjson(third.stdout).filter((e) => e.event === 'finished')).toEqual([]);
  const jobs = ndjson((await cli(['jobs', 'list', '--json', '--state-dir', state, '--config', cfg])).stdout);
  const rs = jobs.filter((j) => j.kind === 'restate');
  expect(rs).toHaveLength(2);
  expect(rs.every((j) => j.revision === 2 && j.restate.old.rows !== undefined && j.restate.new.rows !== undefined)).toBe(true);
  await src.close();
}

describe('restatement of changed rows', () => {
  it('sqlite → file', async () => { await scenario('sqlite', fileDest()); });
  it('sqlite → s3', async () => { await scenario('sqlite', s3Dest()); });
  it('sqlite → postgres warehouse', async () => { await scenario('sqlite', await pgDest()); });
  it('postgres → file', async () => { await scenario('postgres', fileDest()); });
  it('postgres → s3', async () => { await scenario('postgres', s3Dest()); });
  it('postgres → postgres warehouse', async () => { await scenario('postgres', await pgDest()); });

  it('a kill -9 during a restatement leaves the previous revision intact; the next run completes the new one', async () => {
    const src = await sqliteSource();
    const cols = await columnsOf(src, 'sqlite');
    const dest = fileDest();
    const out = String((dest.destination.config as { path: string }).path);
    const cfg = join(dir, `cfg${++n}.json`);
    const state = join(dir, `state${n}`);
    writeFileSync(cfg, JSON.stringify({ source: src.config, log_exports: { exports: [{
      name: 'daily', schedule: { frequency: 'daily', time: '00:00', timezone: 'UTC' }, backfill_from: '2026-10-01',
      destination: dest.destination, data: { format: 'jsonl', compression: 'gzip', max_rows_per_file: 20 },
    }] } }));
    const args = (now: string) => ['run', '--config', cfg, '--state-dir', state, '--now', now, '--json'];
    expect((await cli(args(NOW1))).code).toBe(0);
    const c = changes();
    const manifests = () => readdirSync(out, { recursive: true }).map(String).filter((k) => k.endsWith('.manifest.json')).sort();
    const snapshot = () => manifests().map((k) => readFileSync(join(out, k), 'utf8'));
    const before = snapshot();
    const recordsBefore = await dest.delivered();
    await applyChanges(src, c, cols);
    // Killed once the restatement has written a part of its new revision.
    const child = spawn(process.execPath, [BIN, ...args(NOW2)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let killed = false;
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const ev = ndjson(buf.slice(0, buf.lastIndexOf('\n') + 1));
        const restating = ev.find((e) => e.event === 'restating');
        if (!killed && restating && ev.some((e) => e.event === 'part_written' && e.run_id === restating.run_id)) { killed = true; child.kill('SIGKILL'); }
      });
      child.on('exit', () => resolve());
    });
    expect(killed).toBe(true);
    // The previous revision is still the truth: the same manifests, every file they list intact.
    expect(snapshot()).toEqual(before);
    const v = await cli(['verify', '--config', cfg, '--state-dir', state]);
    expect(v.code).toBe(65);
    expect(v.stderr).not.toMatch(/missing|sha256 differs/);
    // (the killed run's new parts lie beside it, listed by no manifest, until the next run rewrites them)
    expect((await dest.delivered(false)).map((r) => r.request_id).sort()).toEqual(recordsBefore.map((r) => r.request_id).sort());
    const next = await cli(args(NOW2));
    expect(next.code, next.stderr).toBe(0);
    expect(ndjson(next.stdout).filter((e) => e.event === 'finished' && e.kind === 'restate').map((e) => e.window_start).sort()).toEqual(c.restated);
    expectEqualsDb(await dest.delivered(), c.expected);
    expect((await cli(['verify', '--config', cfg, '--state-dir', state])).code).toBe(0);
  });

  it('an aggregated export recomputes a restated window\'s groups', async () => {
    const src = await sqliteSource();
    const cols = await columnsOf(src, 'sqlite');
    const dest = fileDest();
    const out = String((dest.destination.config as { path: string }).path);
    const cfg = join(dir, `cfg${++n}.json`);
    const state = join(dir, `state${n}`);
    writeFileSync(cfg, JSON.stringify({ source: src.config, log_exports: { exports: [{
      name: 'daily', schedule: { frequency: 'daily', time: '00:00', timezone: 'UTC' }, backfill_from: '2026-10-01',
      destination: dest.destination, data: { format: 'jsonl', compression: 'gzip', transformations: [{ type: 'aggregate', group_by: ['provider'], metrics: ['count', 'total_cost'] }] },
    }] } }));
    const run = (now: string) => cli(['run', '--config', cfg, '--state-dir', state, '--now', now, '--json']);
    expect((await run(NOW1)).code).toBe(0);
    const c = changes();
    await applyChanges(src, c, cols);
    const r = await run(NOW2);
    expect(r.code, r.stderr).toBe(0);
    const restated = ndjson(r.stdout).filter((e) => e.event === 'finished' && e.kind === 'restate').map((e) => e.window_start).sort();
    expect(restated).toEqual(c.restated);
    // Each window's groups, from its current manifest, against the expected rows (truth + the changes).
    const byId = new Map(truth.map((t) => [t.id as string, t]));
    for (const mk of readdirSync(out, { recursive: true }).map(String).filter((k) => k.endsWith('.manifest.json'))) {
      const m = JSON.parse(readFileSync(join(out, mk), 'utf8'));
      const start = Date.parse(m.window.start);
      const end = Date.parse(m.window.end);
      const want = new Map<string, { count: number; cost: number }>();
      for (const [id, cost] of c.expected) {
        const t = byId.get(id) ?? byId.get(c.base)!;
        const ts = byId.has(id) ? t.__ts_ms : c.lateTs;
        if (ts < start || ts >= end) continue;
        // Late inserts arrive as late rows, which an aggregated window takes in by recomputing too.
        const g = want.get(t.provider as string) ?? { count: 0, cost: 0 };
        g.count++;
        g.cost += cost ?? 0;
        want.set(t.provider as string, g);
      }
      const got = new Map<string, { count: number; cost: number }>();
      for (const f of m.files) for (const row of ndjson(gunzipSync(readFileSync(join(out, f.key))).toString())) got.set(row.provider, { count: row.count, cost: row.total_cost });
      expect([...got.keys()].sort(), mk).toEqual([...want.keys()].sort());
      for (const [k, g] of want) { expect(got.get(k)!.count, `${mk} ${k}`).toBe(g.count); expect(got.get(k)!.cost, `${mk} ${k}`).toBeCloseTo(g.cost, 6); }
    }
    expect((await cli(['verify', '--config', cfg, '--state-dir', state])).code).toBe(0);
  });
});
