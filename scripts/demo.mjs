#!/usr/bin/env node
// The quick-start demo: generate a sample Bifrost logs.db, then run the main
// job on it: exports to local Parquet and JSONL, and a stats table.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSqlite } from '../fixtures/generator.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'demo');
const db = join(dir, 'logs.db');
const out = join(dir, 'out');
const bin = join(root, 'bin', 'bifrost-logs.js');

mkdirSync(dir, { recursive: true });
if (!existsSync(db)) {
  process.stderr.write(`generating a sample Bifrost log DB at ${db} …\n`);
  const s = writeSqlite(db, { rows: 50_000, seed: 42, schema: 'newer', start: '2026-10-01T00:00:00Z', days: 7 });
  process.stderr.write(`  ${s.rows} rows\n`);
}
rmSync(out, { recursive: true, force: true });

function step(title, args) {
  process.stderr.write(`\n$ bifrost-logs ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [bin, ...args], { stdio: 'inherit', env: { ...process.env, BIFROST_LOGS_DB: db } });
  if (r.status !== 0) {
    process.stderr.write(`demo: "${title}" failed with exit code ${r.status}\n`);
    process.exit(r.status ?? 1);
  }
}

const window = ['--since', '2026-10-01T00:00:00Z', '--until', '2026-10-08T00:00:00Z'];
const state = ['--state-dir', join(dir, 'state')];
step('latest requests', ['query', '--limit', '5', '--table']);
step('export to Parquet', ['export', ...window, '--dest', 'file', '--out', out, '--format', 'parquet', '--prefix', 'parquet/', ...state]);
step('export to JSONL (gzip)', ['export', ...window, '--dest', 'file', '--out', out, '--format', 'jsonl', '--gzip', '--prefix', 'jsonl/', '--include', 'error_logs,metrics', ...state]);
step('usage by provider', ['stats', ...window, '--group-by', 'provider', ...(process.stdout.isTTY ? [] : ['--csv'])]);
step('daily totals', ['stats', ...window, '--bucket', 'day', '--metrics', 'total_requests,success_rate,total_tokens,total_cost', ...(process.stdout.isTTY ? [] : ['--csv'])]);
step('usage and cost report', ['report', ...window, '--group-by', 'team', '--out', join(dir, 'report.html')]);
process.stderr.write(`\nDone. The exports and their manifests are in ${out}; the report is ${join(dir, 'report.html')}\n`);
