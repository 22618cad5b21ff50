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
      for (const op of ['export JSONL', 'export CSV', 'export Parquet', 'stats --group-by provider,model', 'gateway writer', 'export CSV from Postgres', 'restatement check, 7-day lookback']) {
        expect(r.stdout).toContain(op);
      }
      expect(r.stdout).not.toContain('failed:');
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
