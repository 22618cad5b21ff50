import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { cli, ndjson } from '../support/cli.js';
import { useTwoStores } from '../support/source-db.js';
import type { TruthRow } from '../support/truth.js';

/**
 * Bifrost's applyFilters on the newer schema: `models` matches model OR
 * canonical_model_name; teams and customers also match the JSON arrays
 * team_ids and customer_ids; min/max cost never match a NULL cost. The
 * expected rows come from those definitions over the generated rows.
 */
const OPTS = { rows: 2000, seed: 31, schema: 'newer', start: '2026-10-01T00:00:00Z', days: 2 };

const S = useTwoStores('bl-fid-', OPTS);

const arr = (text: unknown): unknown[] => {
  try {
    const v = JSON.parse(String(text));
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
};
const canonicalOnly = () => {
  const r = S.truth.find((t) => t.canonical_model_name && t.canonical_model_name !== t.model);
  return r ? String(r.canonical_model_name) : '';
};

interface Case { name: string; args: () => string[]; keep: (r: TruthRow) => boolean }
const cases: Case[] = [
  { name: 'models: model or canonical_model_name', args: () => ['--models', canonicalOnly()], keep: (r) => r.model === canonicalOnly() || r.canonical_model_name === canonicalOnly() },
  { name: 'teams: team_id or team_ids', args: () => ['--teams', 'team-data'], keep: (r) => r.team_id === 'team-data' || arr(r.team_ids).includes('team-data') },
  {
    name: 'customers: customer_id or customer_ids',
    args: () => ['--customers', String(S.truth.find((t) => t.customer_id)!.customer_id)],
    keep: (r) => { const v = S.truth.find((t) => t.customer_id)!.customer_id; return r.customer_id === v || arr(r.customer_ids).includes(v); },
  },
  { name: 'min cost excludes NULL cost', args: () => ['--min-cost', '0'], keep: (r) => r.cost !== null && r.cost !== undefined && Number(r.cost) >= 0 },
  { name: 'max cost excludes NULL cost', args: () => ['--max-cost', '0.01'], keep: (r) => r.cost !== null && r.cost !== undefined && Number(r.cost) <= 0.01 },
];

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`Bifrost's filters on ${dialect}`, () => {
    const db = () => (dialect === 'sqlite' ? S.sqlitePath : S.pgUrl);
    it.each(cases.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
      const r = await cli(['query', '--db', db(), '--all', '--json', '--fields', 'request_id', ...c.args()]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const got = ndjson(r.stdout).map((x) => x.request_id).sort();
      const want = S.truth.filter(c.keep).map((x) => x.id).sort();
      expect(want.length).toBeGreaterThan(0);
      expect(got).toEqual(want);
    });
  });

  describe(`records on ${dialect}`, () => {
    const db = () => (dialect === 'sqlite' ? S.sqlitePath : S.pgUrl);
    it("keeps Bifrost's '' model as '' and truncates timestamps to the millisecond", async () => {
      const r = await cli(['query', '--db', db(), '--all', '--json', '--fields', 'request_id,model,timestamp']);
      expect(r.code).toBe(0);
      const byId = new Map(ndjson(r.stdout).map((x) => [x.request_id, x]));
      const empty = S.truth.filter((t) => t.model === '');
      for (const t of S.truth) {
        const rec = byId.get(t.id)!;
        expect(rec.model).toBe(t.model);
        expect(rec.timestamp).toBe(new Date(t.__ts_ms).toISOString());
      }
      void empty;
    });
  });

  if (dialect === 'postgres') {
    it('exports rows whose inc_number is NULL (written before Bifrost added the column)', async () => {
      const client = new pg.Client({ connectionString: S.pgUrl });
      await client.connect();
      const probe = await client.query(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'logs' AND column_name = 'inc_number'`);
      expect(probe.rows[0].n).toBe(1);
      try {
        // As on a store whose rows predate the column: the first rows hold no inc_number.
        await client.query('ALTER TABLE logs ALTER COLUMN inc_number DROP NOT NULL');
        await client.query(`UPDATE logs SET inc_number = NULL WHERE id IN (SELECT id FROM logs ORDER BY "timestamp" LIMIT 800)`);
      } finally {
        await client.end();
      }
      const state = mkdtempSync(join(S.dir, 'state-'));
      const r = await cli(['export', '--db', S.pgUrl, '--dest', 'stdout', '--format', 'jsonl', '--fields', 'request_id',
        '--since', '2026-09-30T00:00:00Z', '--until', '2026-10-04T00:00:00Z', '--state-dir', state]);
      expect(r.code).toBe(0);
      const got = ndjson(r.stdout).map((x) => x.request_id).sort();
      expect(got).toEqual(S.truth.filter((t) => t.status !== 'processing').map((t) => t.id).sort());
    });
  }
}
