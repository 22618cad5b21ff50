import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
// @ts-expect-error plain JS module
import { generateRows, writeSqlite } from '../../fixtures/generator.mjs';
import { BIN, cli, ndjson } from '../support/cli.js';
import { isCompleted, type TruthRow } from '../support/truth.js';
import { startPostgres, startS3, type PostgresService, type S3Service } from '../support/services.js';

/**
 * Crash safety under a soak: 20 kill -9 points, drawn from a printed seed,
 * across the file, S3 and Postgres warehouse destinations, each followed by
 * one more run; at the end every row is delivered exactly once and verify
 * passes. The phase each kill hit (by the last event the run printed) is printed.
 */
const SEED = Number(process.env.BL_SOAK_SEED ?? 20261202);
const OPTS = { rows: 40_000, seed: 21, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 10 };
const BUCKET = 'soak';
let dir: string;
let db: string;
let truth: TruthRow[];
let s3: S3Service;
let pgs: PostgresService;
let pgUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-soak-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, OPTS);
  truth = [...generateRows(OPTS)] as TruthRow[];
  s3 = await startS3({ buckets: [BUCKET] });
  pgs = await startPostgres();
  pgUrl = await pgs.createDatabase('soak');
}, 240_000);
afterAll(async () => {
  await s3?.destroy();
  await pgs?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

type Target = 'file' | 's3' | 'postgres';
const TARGETS: Target[] = ['file', 's3', 'postgres'];
const env = () => ({ S3_ID: s3.accessKeyId, S3_SECRET: s3.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' });

function configFor(t: Target): { cfg: string; state: string } {
  const cfg = join(dir, `${t}.json`);
  const destination = t === 'file' ? { type: 'file', config: { path: join(dir, 'out-file'), prefix: '{date}/' } }
    : t === 's3' ? { type: 's3', config: { bucket: BUCKET, region: 'us-east-1', endpoint: s3.endpoint, force_path_style: true, prefix: 'x/{date}/', part_size_bytes: 5 * 1024 * 1024, credentials: { access_key_id: 'env.S3_ID', secret_access_key: 'env.S3_SECRET' } } }
      : { type: 'postgres', config: { url: pgUrl, schema: 'public', table: 'soak' } };
  writeFileSync(cfg, JSON.stringify({ source: { path: db }, log_exports: { exports: [{
    name: `soak_${t}`, schedule: { frequency: 'daily', time: '00:00', timezone: 'UTC' }, backfill_from: '2026-10-01',
    destination, data: { format: 'jsonl', compression: t === 'postgres' ? 'none' : 'gzip', max_rows_per_file: 700 },
  }] } }));
  return { cfg, state: join(dir, `state-${t}`) };
}

async function deliveredIds(t: Target): Promise<string[]> {
  const ids: string[] = [];
  if (t === 'file') {
    const out = join(dir, 'out-file');
    for (const f of readdirSync(out, { recursive: true }).map(String).filter((x) => x.endsWith('.jsonl.gz'))) {
      for (const r of ndjson(gunzipSync(readFileSync(join(out, f))).toString())) ids.push(r.request_id);
    }
  } else if (t === 's3') {
    const c = new S3Client(s3.clientConfig);
    let token: string | undefined;
    do {
      const page = await c.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        if (!o.Key!.endsWith('.jsonl.gz')) continue;
        const body = Buffer.from(await (await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: o.Key! }))).Body!.transformToByteArray());
        for (const r of ndjson(gunzipSync(body).toString())) ids.push(r.request_id);
      }
      token = page.NextContinuationToken;
    } while (token);
    c.destroy();
  } else {
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    try { ids.push(...(await c.query('SELECT request_id FROM public.soak')).rows.map((r) => r.request_id as string)); } finally { await c.end(); }
  }
  return ids.sort();
}

describe('soak: 20 kill -9 points across file, S3 and the Postgres warehouse', () => {
  it('after each kill one more run completes; at the end every row is delivered exactly once and verify passes', async () => {
    let x = SEED;
    const rand = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
    const day = 86_400_000;
    const base = Date.parse('2026-10-01T01:00:00Z');
    const step: Record<Target, number> = { file: 0, s3: 0, postgres: 0 };
    const phases: Record<string, number> = {};
    console.log(`soak seed ${SEED}`);
    for (let k = 0; k < 20; k++) {
      const t = TARGETS[Math.floor(rand() * 3)]!;
      const { cfg, state } = configFor(t);
      step[t] = Math.min(step[t] + 1, 10);
      const now = new Date(base + step[t] * day).toISOString();
      // The kill point: the n-th part written (then a few ms more: the next part's upload, the
      // manifest write or the warehouse commit), or right after the run started.
      const nth = Math.floor(rand() * 5); // 0: after "started"
      const delayMs = Math.floor(rand() * 40);
      const child = spawn(process.execPath, [BIN, 'run', '--config', cfg, '--state-dir', state, '--now', now, '--json'], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      const exited = new Promise((r) => child.once('exit', r));
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (d) => {
          out += d;
          const parts = (out.match(/"part_written"/g) ?? []).length;
          if ((nth === 0 && out.includes('"started"')) || (nth > 0 && parts >= nth)) resolve();
        });
        void exited.then(() => resolve());
      });
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      await exited;
      const events = out.split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l).event as string; } catch { return 'partial line'; } });
      const phase = `${t}: ${events.length ? `after ${events[events.length - 1]}` : 'before any event'}`;
      phases[phase] = (phases[phase] ?? 0) + 1;
      console.log(`kill ${k + 1}: ${t} at ${now}, ${nth ? `part ${nth}` : 'start'} + ${delayMs} ms (${phase})`);
      const r = await cli(['run', '--config', cfg, '--state-dir', state, '--now', now], { env: env() });
      expect(r.code, `kill ${k + 1} (${t}, seed ${SEED}): ${r.stderr}`).toBe(0);
    }
    console.log(`soak phases: ${JSON.stringify(phases)}`);
    const end = '2026-10-11T01:00:00Z';
    const want = truth.filter((t) => isCompleted(t) && t.__ts_ms >= Date.parse('2026-10-01T00:00:00Z') && t.__ts_ms < Date.parse('2026-10-11T00:00:00Z')).map((t) => t.id).sort();
    for (const t of TARGETS) {
      const { cfg, state } = configFor(t);
      const r = await cli(['run', '--config', cfg, '--state-dir', state, '--now', end], { env: env() });
      expect(r.code, `${t}: ${r.stderr}`).toBe(0);
      expect(await deliveredIds(t), `${t} (seed ${SEED})`).toEqual(want);
      const v = await cli(['verify', '--config', cfg, '--state-dir', state], { env: env() });
      expect(v.code, `${t}: ${v.stderr}`).toBe(0);
    }
    if (existsSync(join(dir, 'out-file'))) expect(readdirSync(join(dir, 'out-file'), { recursive: true }).map(String).filter((f) => f.includes('.tmp-'))).toEqual([]);
  }, 900_000);
});
