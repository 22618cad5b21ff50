import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
// @ts-expect-error plain JS module
import { generateRows, writeSqlite } from '../../fixtures/generator.mjs';
import { BIN, cli, ndjson } from '../support/cli.js';
import { startS3, type S3Service } from '../support/services.js';
import { isCompleted, type TruthRow } from '../support/truth.js';

const OPTS = { rows: 80_000, seed: 23, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 3 };
const BUCKET = 'bl-faults';
let dir: string;
let db: string;
let s3: S3Service;
let truth: TruthRow[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-fault-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, OPTS);
  truth = [...generateRows(OPTS)] as TruthRow[];
  s3 = await startS3({ buckets: [BUCKET] });
}, 180_000);
afterAll(async () => {
  await s3?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('the destination dies mid-upload', () => {
  it('the run fails in one line, the ledger says failed, no manifest; the next run delivers exactly', async () => {
    const cfg = join(dir, 'cfg.json');
    const state = join(dir, 'state');
    writeFileSync(cfg, JSON.stringify({ source: { path: db }, log_exports: { exports: [{
      name: 's3daily', schedule: { frequency: 'daily', time: '00:00', timezone: 'UTC' }, backfill_from: '2026-10-01',
      destination: { type: 's3', config: { bucket: BUCKET, region: 'us-east-1', endpoint: s3.endpoint, force_path_style: true, prefix: 'x/{date}/',
        credentials: { access_key_id: 'env.S3_ID', secret_access_key: 'env.S3_SECRET' } } },
      data: { format: 'jsonl', compression: 'gzip', max_rows_per_file: 2000 },
    }] } }));
    const env = { S3_ID: s3.accessKeyId, S3_SECRET: s3.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' };
    const args = ['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-04T01:00:00Z', '--json'];
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    await new Promise<void>((resolve) => { const t = setInterval(() => { if (out.includes('"part_written"')) { clearInterval(t); resolve(); } }, 10); });
    await s3.stop();
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).not.toBe(0);
    expect([69, 75]).toContain(code);
    const failedLine = err.split('\n').find((l) => l.startsWith('bifrost-logs: s3daily: could not'));
    expect(failedLine, err).toBeTruthy();
    expect(err).not.toMatch(/\n\s+at /);
    expect(err + out).not.toContain(s3.secretAccessKey === 'S3RVER' ? 'S3RVER-not-a-real-secret' : s3.secretAccessKey);
    const events = ndjson(out);
    expect(events.some((e) => e.event === 'failed')).toBe(true);
    const failedWindow = events.find((e) => e.event === 'failed');
    const jobs = ndjson((await cli(['jobs', 'list', '--json', '--status', 'failed', '--config', cfg, '--state-dir', state])).stdout);
    expect(jobs).toHaveLength(1);
    await s3.restart();
    const client = new S3Client({ ...s3.clientConfig });
    const keys = async () => ((await client.send(new ListObjectsV2Command({ Bucket: BUCKET }))).Contents ?? []).map((o) => o.Key!);
    // The failed window has no manifest.
    const started = events.filter((e) => e.event === 'started').map((e) => e.run_id);
    const failedStart = events.find((e) => e.event === 'started' && e.run_id === failedWindow.run_id)?.window_start as string;
    expect(started.length).toBeGreaterThan(0);
    expect((await keys()).filter((k) => k.endsWith('.manifest.json') && k.includes(failedStart.slice(0, 10).replace(/-/g, '')))).toEqual([]);
    const next = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-04T01:00:00Z'], { env });
    expect(next.code, next.stderr).toBe(0);
    const ids: string[] = [];
    for (const k of (await keys()).filter((x) => x.endsWith('.jsonl.gz'))) {
      const body = await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: k }))).Body!.transformToByteArray();
      for (const r of ndjson(gunzipSync(Buffer.from(body)).toString())) ids.push(r.request_id);
    }
    const want = truth.filter((t) => isCompleted(t) && t.__ts_ms >= Date.parse('2026-10-01T00:00:00Z') && t.__ts_ms < Date.parse('2026-10-04T00:00:00Z')).map((t) => t.id).sort();
    expect(ids.sort()).toEqual(want);
    expect((await cli(['verify', '--config', cfg, '--state-dir', state], { env })).code).toBe(0);
    void Database;
  });
});
