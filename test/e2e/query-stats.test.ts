import { describe, expect, it } from 'vitest';
import { cli, ndjson } from '../support/cli.js';
import { useTwoStores } from '../support/source-db.js';
import { bifrostStats, derivedStatusCode, metadataOf, type TruthRow } from '../support/truth.js';

const OPTS = { rows: 3000, seed: 11, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 4 };
const START = Date.parse('2026-10-02T00:00:00Z');
const END = Date.parse('2026-10-03T00:00:00Z');

const S = useTwoStores('bl-qs-', OPTS);

const mode = (r: TruthRow) => r;
void mode;
const most = (values: unknown[]) => {
  const c = new Map<unknown, number>();
  for (const v of values) if (v !== null && v !== '' && v !== undefined) c.set(v, (c.get(v) ?? 0) + 1);
  return [...c.entries()].sort((a, b) => b[1] - a[1])[0]![0] as string;
};

/** `sqliteOnly`: Postgres' search is Bifrost's full-text match, tested against Postgres itself in bifrost-fidelity.test.ts. */
interface Case { name: string; args: () => string[]; keep: (r: TruthRow) => boolean; sqliteOnly?: boolean }
const cases: Case[] = [
  { name: 'window [since, until)', args: () => ['--since', new Date(START).toISOString(), '--until', new Date(END).toISOString()], keep: (r) => r.__ts_ms >= START && r.__ts_ms < END },
  { name: 'providers', args: () => ['--providers', most(S.truth.map((r) => r.provider))], keep: (r) => r.provider === most(S.truth.map((x) => x.provider)) },
  { name: 'models', args: () => ['--models', most(S.truth.map((r) => r.model))], keep: (r) => r.model === most(S.truth.map((x) => x.model)) },
  { name: 'customers', args: () => ['--customers', most(S.truth.map((r) => r.customer_id))], keep: (r) => r.customer_id === most(S.truth.map((x) => x.customer_id)) },
  { name: 'status codes', args: () => ['--status-codes', '429,500'], keep: (r) => [429, 500].includes(derivedStatusCode(r) as number) },
  { name: 'latency range', args: () => ['--min-latency-ms', '200', '--max-latency-ms', '900'], keep: (r) => Number(r.latency) >= 200 && Number(r.latency) <= 900 },
  { name: 'has errors', args: () => ['--has-errors'], keep: (r) => r.status === 'error' },
  { name: 'no errors', args: () => ['--has-errors', 'false'], keep: (r) => r.status === 'success' },
  { name: 'status', args: () => ['--status', 'processing'], keep: (r) => r.status === 'processing' },
  { name: 'objects (legacy spellings too)', args: () => ['--objects', 'chat_completion,embedding'], keep: (r) => ['chat_completion', 'chat.completion', 'embedding', 'list'].includes(r.object_type) },
  { name: 'virtual keys', args: () => ['--virtual-keys', most(S.truth.map((r) => r.virtual_key_id))], keep: (r) => r.virtual_key_id === most(S.truth.map((x) => x.virtual_key_id)) },
  { name: 'teams', args: () => ['--teams', most(S.truth.map((r) => r.team_id))], keep: (r) => r.team_id === most(S.truth.map((x) => x.team_id)) },
  { name: 'users', args: () => ['--users', most(S.truth.map((r) => r.user_id))], keep: (r) => r.user_id === most(S.truth.map((x) => x.user_id)) },
  { name: 'tokens', args: () => ['--min-tokens', '100', '--max-tokens', '2000'], keep: (r) => Number(r.total_tokens) >= 100 && Number(r.total_tokens) <= 2000 },
  { name: 'cost (a NULL cost never matches, as in Bifrost)', args: () => ['--min-cost', '0', '--max-cost', '0.001'], keep: (r) => r.cost !== null && r.cost !== undefined && Number(r.cost) >= 0 && Number(r.cost) <= 0.001 },
  { name: 'search with LIKE metacharacters', args: () => ['--search', '%'], keep: (r) => String(r.content_summary ?? '').includes('%'), sqliteOnly: true },
  { name: 'search underscore', args: () => ['--search', '_'], keep: (r) => String(r.content_summary ?? '').includes('_'), sqliteOnly: true },
  { name: 'metadata', args: () => ['--metadata', 'env=prod'], keep: (r) => metadataOf(r)?.env === 'prod' },
];

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`query on ${dialect}`, () => {
    const db = () => (dialect === 'sqlite' ? S.sqlitePath : S.pgUrl);
    it.each(cases.filter((c) => dialect === 'sqlite' || !c.sqliteOnly).map((c) => [c.name, c] as const))('filter: %s', async (_n, c) => {
      const r = await cli(['query', '--db', db(), '--all', '--json', '--fields', 'request_id', ...c.args()]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const got = ndjson(r.stdout).map((x) => x.request_id).sort();
      const want = S.truth.filter(c.keep).map((x) => x.id).sort();
      expect(want.length).toBeGreaterThan(0);
      expect(got).toEqual(want);
    });

    it('prints the 12-field record with exact timestamps', async () => {
      const r = await cli(['query', '--db', db(), '--all', '--json', '--sort', 'timestamp', '--order', 'asc']);
      expect(r.code).toBe(0);
      const recs = ndjson(r.stdout);
      expect(recs).toHaveLength(S.truth.length);
      expect(Object.keys(recs[0])).toEqual(['timestamp', 'request_id', 'customer_id', 'provider', 'model', 'endpoint', 'method', 'status_code', 'latency_ms', 'input_tokens', 'output_tokens', 'cost_usd']);
      const byId = new Map(S.truth.map((t) => [t.id, t]));
      for (const rec of recs) {
        const t = byId.get(rec.request_id)!;
        expect(rec.timestamp).toBe(new Date(t.__ts_ms).toISOString());
        expect(rec.status_code).toBe(derivedStatusCode(t));
        expect(rec.latency_ms).toBe(t.latency === null || t.latency === undefined ? null : Math.round(Number(t.latency)));
        expect(rec.cost_usd).toBe(t.cost === null || t.cost === undefined ? null : Number(t.cost));
      }
      const ts = recs.map((x) => Date.parse(x.timestamp));
      expect([...ts].sort((a, b) => a - b)).toEqual(ts);
    });

    it('limits, offsets and sorts', async () => {
      const r = await cli(['query', '--db', db(), '--json', '--sort', 'latency', '--order', 'desc', '--limit', '5', '--offset', '2', '--fields', 'request_id,latency_ms']);
      const got = ndjson(r.stdout).map((x) => x.request_id);
      const want = [...S.truth].sort((a, b) => Number(b.latency) - Number(a.latency)).slice(2, 7).map((x) => x.id);
      expect(got).toEqual(want);
      const d = await cli(['query', '--db', db(), '--json']);
      expect(ndjson(d.stdout)).toHaveLength(100);
    });

    it('a v1.5 DB: the fields of later columns are null, cost_breakdown is token_usage.cost as stored', async () => {
      const later = ['input_cost_usd', 'output_cost_usd', 'additional_cost_usd', 'upstream_latency_ms', 'overhead_latency_ms', 'session_id',
        'project_id', 'project_name', 'user_agent', 'app', 'service_tier', 'tool_call_names', 'team_ids', 'customer_ids', 'canonical_model_name', 'served_model'];
      const r = await cli(['query', '--db', db(), '--all', '--json', '--fields', ['request_id', 'cost_breakdown', 'cached_read_tokens', ...later].join(',')]);
      expect(r.code, r.stderr).toBe(0);
      const byId = new Map(S.truth.map((t) => [t.id, t]));
      for (const rec of ndjson(r.stdout)) {
        const t = byId.get(rec.request_id)!;
        for (const f of later) expect(rec[f], f).toBeNull();
        let usage: any = null;
        try { usage = JSON.parse(t.token_usage); } catch { /* malformed: no breakdown */ }
        expect(rec.cost_breakdown).toEqual(usage && typeof usage === 'object' ? usage.cost ?? null : null);
        expect(rec.cached_read_tokens).toBe(t.cached_read_tokens);
      }
    });

    it("stats match Bifrost's definitions computed independently", async () => {
      const r = await cli(['stats', '--db', db(), '--json', '--since', new Date(START).toISOString(), '--until', new Date(END).toISOString()]);
      expect(r.code).toBe(0);
      const got = JSON.parse(r.stdout);
      const want = bifrostStats(S.truth.filter((t) => t.__ts_ms >= START && t.__ts_ms < END));
      for (const [k, v] of Object.entries(want)) expect(got[k]).toBeCloseTo(v as number, 6);
    });

    it('stats group by provider and day', async () => {
      const r = await cli(['stats', '--db', db(), '--json', '--group-by', 'provider', '--bucket', 'day']);
      expect(r.code).toBe(0);
      const rows = ndjson(r.stdout);
      const groups = new Map<string, TruthRow[]>();
      for (const t of S.truth) {
        const k = `${new Date(t.__ts_ms).toISOString().slice(0, 10)}|${t.provider}`;
        groups.set(k, [...(groups.get(k) ?? []), t]);
      }
      expect(rows).toHaveLength(groups.size);
      for (const row of rows) {
        const want = bifrostStats(groups.get(`${row.date}|${row.provider}`)!);
        for (const [k, v] of Object.entries(want)) {
          if (v === null) expect(row[k]).toBeNull();
          else expect(row[k]).toBeCloseTo(v, 6);
        }
      }
    });

    it('stats buckets by day in a timezone', async () => {
      const r = await cli(['stats', '--db', db(), '--json', '--bucket', 'day', '--tz', 'Asia/Kolkata', '--metrics', 'total_requests']);
      const rows = ndjson(r.stdout);
      const counts = new Map<string, number>();
      for (const t of S.truth) {
        const day = new Date(t.__ts_ms + 5.5 * 3_600_000).toISOString().slice(0, 10);
        counts.set(day, (counts.get(day) ?? 0) + 1);
      }
      expect(Object.fromEntries(rows.map((x) => [x.date, x.total_requests]))).toEqual(Object.fromEntries(counts));
    });
  });
}
