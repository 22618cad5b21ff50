import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { createFakeServiceAccount } from '../fakes/gcs-server.js';
import { cli, ndjson } from '../support/cli.js';

/**
 * Every network call has a deadline: each destination, and the Postgres
 * source, pointed at a server that accepts the connection and never answers,
 * fails (69, or 75 where retrying may help) with nothing delivered, instead of
 * hanging. No wall-clock limit is asserted: the run simply has to end.
 */
let dir: string;
let db: string;
let server: Server;
let port: number;
const sockets: Socket[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-timeouts-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, { rows: 200, seed: 8, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 2 });
  server = createServer((s) => { sockets.push(s); s.on('error', () => {}); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const T = 2; // request_timeout_secs
const silent = () => `http://127.0.0.1:${port}`;
const key = () => JSON.stringify(createFakeServiceAccount('silent-project', `${silent()}/token`).key);

const DESTINATIONS: Array<[string, () => Record<string, unknown>]> = [
  ['s3', () => ({ type: 's3', config: { bucket: 'b', region: 'us-east-1', endpoint: silent(), force_path_style: true, request_timeout_secs: T, credentials: { access_key_id: 'id', secret_access_key: 'secret' } } })],
  ['gcs', () => ({ type: 'gcs', config: { bucket: 'b', project_id: 'silent-project', api_endpoint: silent(), request_timeout_secs: T, credentials: { service_account_key: key() } } })],
  ['azure_blob', () => ({ type: 'azure_blob', config: { container: 'c', account_name: 'devstoreaccount1', account_key: Buffer.from('k'.repeat(32)).toString('base64'), endpoint: `${silent()}/devstoreaccount1`, request_timeout_secs: T } })],
  ['bigquery', () => ({ type: 'bigquery', config: { project_id: 'silent-project', dataset: 'logs', table: 't', api_endpoint: silent(), request_timeout_secs: T, credentials: { service_account_key: key() } } })],
  ['snowflake', () => ({ type: 'snowflake', config: { account: 'silent', access_url: silent(), database: 'DB', schema: 'S', table: 'T', request_timeout_secs: T, credentials: { username: 'u', password: 'p' } } })],
  ['redshift', () => ({ type: 'redshift', config: { host: '127.0.0.1', port, database: 'd', table: 't', ssl: false, request_timeout_secs: T, credentials: { username: 'u', password: 'p' } } })],
  ['postgres', () => ({ type: 'postgres', config: { url: `postgres://u:p@127.0.0.1:${port}/d`, table: 't', request_timeout_secs: T } })],
];

const env = { METADATA_SERVER_DETECTION: 'none', GOOGLE_APPLICATION_CREDENTIALS: undefined, AWS_EC2_METADATA_DISABLED: 'true' };

describe('a server that accepts and never answers', () => {
  it.each(DESTINATIONS)('%s: the run fails (69/75) and delivers nothing', async (name, dest) => {
    const cfg = join(dir, `${name}.json`);
    const state = join(dir, `st-${name}`);
    writeFileSync(cfg, JSON.stringify({ source: { path: db }, log_exports: { exports: [{
      name, schedule: { frequency: 'daily', time: '00:00', timezone: 'UTC' }, backfill_from: '2026-10-01',
      destination: dest(), data: { format: 'jsonl' },
    }] } }));
    const r = await cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-10-02T01:00:00Z', '--json'], { env, timeoutMs: 300_000 });
    expect(r.signal, r.stderr).toBeNull();
    expect([69, 75], r.stderr).toContain(r.code);
    expect(ndjson(r.stdout).filter((e) => e.event === 'finished')).toEqual([]);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  }, 320_000);

  it('the Postgres source: the command fails (69/75) instead of hanging', async () => {
    const cfg = join(dir, 'source.json');
    writeFileSync(cfg, JSON.stringify({ source: { url: `postgres://u:p@127.0.0.1:${port}/d`, request_timeout_secs: T } }));
    const out = join(dir, 'src-out');
    const r = await cli(['export', '--config', cfg, '--since', '2026-10-01', '--until', '2026-10-02', '--dest', 'file', '--out', out, '--format', 'jsonl', '--state-dir', join(dir, 'st-src')], { env, timeoutMs: 300_000 });
    expect(r.signal, r.stderr).toBeNull();
    expect([69, 75], r.stderr).toContain(r.code);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  }, 320_000);
});
