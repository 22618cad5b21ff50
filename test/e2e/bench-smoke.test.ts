import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../support/cli.js';

describe('the benchmark', () => {
  it('runs end to end on 10,000 rows (a smoke test, not a timing)', () => {
    const cache = mkdtempSync(join(tmpdir(), 'bl-bench-smoke-'));
    try {
      const r = spawnSync(process.execPath, [join(ROOT, 'bench', 'run.mjs')], {
        env: { ...process.env, BENCH_ROWS: '10000', BENCH_SMOKE: '1', BENCH_CACHE: cache }, encoding: 'utf8', timeout: 240_000,
      });
      expect(r.status, r.stderr).toBe(0);
      for (const op of ['export JSONL', 'export CSV', 'export Parquet', 'stats --group-by provider,model', 'stats --bucket day --tz Europe/Berlin', 'query (newest 100 rows)', 'query --all --table', 'gateway writer', 'export CSV from Postgres', 'stats --group-by provider,model on Postgres', 'restatement check of a 7-day lookback', 'export CSV from ClickHouse', 'targets met']) {
        expect(r.stdout).toContain(op);
      }
      expect(r.stdout).not.toContain('failed:');
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
