import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { BIN, cli, ndjson } from '../support/cli.js';

let dir: string;
let db: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-chart-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, { rows: 1500, seed: 3, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 7 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('stats --chart', () => {
  it('on a terminal: the table, then a chart of each bucketed series', async () => {
    // `script` gives the command a pseudo-terminal, as a person's shell would.
    const cmd = [process.execPath, BIN, 'stats', '--db', db, '--since', '2026-10-01T00:00:00Z', '--until', '2026-10-08T00:00:00Z', '--chart', '--metrics', 'total_requests,total_cost']
      .map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, BIFROST_LOGS_DB: undefined, TERM: 'xterm', COLUMNS: '100' } });
    expect(r.status).toBe(0);
    const out = r.stdout;
    expect(out).toContain('total_requests per date (2026-10-01 … 2026-10-07)');
    expect(out).toContain('total_cost per date');
    expect(out).toMatch(/[┼┤][─╮╯╭╰]/);
    const json = ndjson((await cli(['stats', '--db', db, '--since', '2026-10-01T00:00:00Z', '--until', '2026-10-08T00:00:00Z', '--bucket', 'day', '--metrics', 'total_requests', '--json'])).stdout);
    expect(json).toHaveLength(7);
    for (const row of json) expect(out).toContain(String(row.date));
  });
  it('in a pipe the output is the same JSON as without --chart', async () => {
    const a = await cli(['stats', '--db', db, '--since', '2026-10-01T00:00:00Z', '--until', '2026-10-08T00:00:00Z', '--bucket', 'day', '--chart']);
    const b = await cli(['stats', '--db', db, '--since', '2026-10-01T00:00:00Z', '--until', '2026-10-08T00:00:00Z', '--bucket', 'day']);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
  });
});
