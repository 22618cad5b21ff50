import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createHmac, createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
// @ts-expect-error plain JS module
import { generateRows, writeSqlite } from '../../fixtures/generator.mjs';
import { cli, ndjson } from '../support/cli.js';
import { derivedStatusCode, isCompleted, percentileCont, type TruthRow } from '../support/truth.js';

const OPTS = { rows: 4000, seed: 21, schema: 'newer', start: '2026-10-01T00:00:00Z', days: 3 };
const SINCE = '2026-10-01T06:00:00Z';
const UNTIL = '2026-10-02T18:00:00Z';
let dir: string;
let db: string;
let truth: TruthRow[];
let inWindow: TruthRow[];
let n = 0;
const outDir = () => join(dir, `out${++n}`);
const files = (d: string) => readdirSync(d, { recursive: true }).map(String).filter((f) => !f.startsWith('.')).sort();
const win = ['--since', SINCE, '--until', UNTIL];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-exp-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, OPTS);
  truth = [...generateRows(OPTS)] as TruthRow[];
  inWindow = truth.filter((t) => t.__ts_ms >= Date.parse(SINCE) && t.__ts_ms < Date.parse(UNTIL) && isCompleted(t));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function exportTo(args: string[], env: Record<string, string> = {}) {
  const out = outDir();
  const r = await cli(['export', '--db', db, '--dest', 'file', '--out', out, '--state-dir', join(dir, 'state'), ...args], { env });
  return { r, out };
}
const manifestOf = (out: string) => JSON.parse(readFileSync(join(out, files(out).find((f) => f.endsWith('.manifest.json'))!), 'utf8'));
const sum = (rows: Array<Record<string, unknown>>, k: string) => rows.reduce((a, r) => a + Number(r[k] ?? 0), 0);

describe('formats read back equal the SQL row set', () => {
  const wantIds = () => inWindow.map((t) => t.id).sort();
  const wantCost = () => inWindow.reduce((a, t) => a + Number(t.cost ?? 0), 0);

  it('jsonl', async () => {
    const { r, out } = await exportTo([...win, '--format', 'jsonl']);
    expect(r.code, r.stderr).toBe(0);
    const recs = ndjson(readFileSync(join(out, files(out).find((f) => f.endsWith('.jsonl'))!), 'utf8'));
    expect(recs.map((x) => x.request_id).sort()).toEqual(wantIds());
    expect(sum(recs, 'cost_usd')).toBeCloseTo(wantCost(), 9);
    expect(manifestOf(out).rows).toBe(inWindow.length);
  });
  it('json (one array)', async () => {
    const { out } = await exportTo([...win, '--format', 'json']);
    const recs = JSON.parse(readFileSync(join(out, files(out).find((f) => f.endsWith('.json') && !f.endsWith('manifest.json'))!), 'utf8'));
    expect(recs.map((x: { request_id: string }) => x.request_id).sort()).toEqual(wantIds());
  });
  it('csv (RFC 4180, header, JSON as text)', async () => {
    const { out } = await exportTo([...win, '--format', 'csv', '--include', 'request_logs']);
    const rows = parseCsv(readFileSync(join(out, files(out).find((f) => f.endsWith('.csv'))!)), { columns: true }) as Record<string, string>[];
    expect(rows.map((x) => x.request_id).sort()).toEqual(wantIds());
    const withMeta = rows.find((x) => x.metadata && x.metadata.startsWith('{'));
    expect(() => JSON.parse(withMeta!.metadata!)).not.toThrow();
  });
  it('gzip wraps jsonl and csv', async () => {
    const { out } = await exportTo([...win, '--format', 'jsonl', '--gzip']);
    const f = files(out).find((x) => x.endsWith('.jsonl.gz'))!;
    expect(ndjson(gunzipSync(readFileSync(join(out, f))).toString())).toHaveLength(inWindow.length);
    const m = manifestOf(out);
    expect(m.files[0].sha256).toBe(createHash('sha256').update(readFileSync(join(out, f))).digest('hex'));
    expect(m.files[0].bytes).toBe(readFileSync(join(out, f)).length);
  });
  it('parquet with logical types and nullable columns (hyparquet)', async () => {
    const { r, out } = await exportTo([...win, '--format', 'parquet', '--gzip']);
    expect(r.code, r.stderr).toBe(0);
    const f = files(out).find((x) => x.endsWith('.parquet'))!;
    expect(f).not.toMatch(/\.gz$/);
    const buf = readFileSync(join(out, f));
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const meta = parquetMetadata(ab);
    const els = Object.fromEntries(meta.schema.map((e) => [e.name, e]));
    expect(els.timestamp!.type).toBe('INT64');
    expect(els.timestamp!.logical_type).toMatchObject({ type: 'TIMESTAMP', unit: 'MILLIS', isAdjustedToUTC: true });
    expect(els.request_id!.converted_type).toBe('UTF8');
    expect(els.status_code!.type).toBe('INT32');
    expect(els.cost_usd!.type).toBe('DOUBLE');
    expect(els.cost_usd!.repetition_type).toBe('OPTIONAL');
    expect(meta.row_groups[0]!.columns[0]!.meta_data!.codec).toBe('GZIP');
    void parquetSchema;
    const rows = await parquetReadObjects({ file: ab, compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gunzipSync(input)) } });
    expect(rows).toHaveLength(inWindow.length);
    const byId = new Map(inWindow.map((t) => [t.id, t]));
    for (const row of rows) {
      const t = byId.get(row.request_id as string)!;
      expect(new Date(row.timestamp as Date).getTime()).toBe(t.__ts_ms);
      expect(row.status_code).toBe(derivedStatusCode(t));
      expect(row.cost_usd ?? null).toBe(t.cost === null || t.cost === undefined ? null : Number(t.cost));
    }
  });
  it('splits files at --max-rows-per-file', async () => {
    const { out } = await exportTo([...win, '--format', 'jsonl', '--max-rows-per-file', '500']);
    const parts = files(out).filter((f) => f.endsWith('.jsonl'));
    expect(parts).toHaveLength(Math.ceil(inWindow.length / 500));
    expect(parts[0]).toMatch(/_part-0001\.jsonl$/);
    const total = parts.reduce((a, p) => a + ndjson(readFileSync(join(out, p), 'utf8')).length, 0);
    expect(total).toBe(inWindow.length);
    expect(manifestOf(out).files).toHaveLength(parts.length);
  });
});

describe('content safety', () => {
  it('never exports redaction_mapping, processing rows, or hidden content', async () => {
    const { out } = await exportTo(['--format', 'jsonl', '--include', 'request_logs,response_logs,error_logs,metrics,traces']);
    const text = readFileSync(join(out, files(out).find((f) => f.endsWith('.jsonl'))!), 'utf8');
    expect(text).not.toMatch(/redaction_mapping/);
    const mappings = truth.filter((x) => x.redaction_mapping).map((x) => String(x.redaction_mapping));
    expect(mappings.length).toBeGreaterThan(0);
    for (const m of mappings) expect(text).not.toContain(JSON.stringify(m).slice(1, -1));
    expect(text).not.toContain('4111111111111111');
    const recs = ndjson(text);
    expect(recs).toHaveLength(truth.filter(isCompleted).length);
    const hidden = new Set(truth.filter((t) => t.content_hidden === 1 || t.content_hidden === true).map((t) => t.id));
    expect(hidden.size).toBeGreaterThan(0);
    for (const rec of recs.filter((x) => hidden.has(x.request_id))) {
      expect(rec.messages).toBeNull();
      expect(rec.output).toBeNull();
      expect(rec.content_state).toBe('hidden');
    }
    const off = recs.filter((x) => x.content_state === 'offloaded');
    expect(off.length).toBeGreaterThan(0);
    for (const rec of off) expect(rec.content_object_key).toMatch(/^logs\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/.+\.json\.gz$/);
    expect(Object.keys(recs[0])).not.toContain('raw_request');
  });
  it('exports raw_request only by name, with keys and Authorization scrubbed', async () => {
    const { out } = await exportTo(['--format', 'jsonl', '--fields', 'request_id,raw_request,raw_response']);
    const text = readFileSync(join(out, files(out).find((f) => f.endsWith('.jsonl'))!), 'utf8');
    expect(text).toMatch(/raw_request/);
    expect(text).not.toMatch(/sk-[A-Za-z0-9]{6,}/);
    expect(text).not.toMatch(/Bearer (?!\[REDACTED\])/);
  });
  it('keeps malformed JSON as text and warns with a count', async () => {
    const { r, out } = await exportTo(['--format', 'jsonl', '--include', 'request_logs,response_logs,traces']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: \d+ malformed JSON cell/);
    expect(manifestOf(out).warnings.malformed_json).toBeGreaterThan(0);
  });
  it('guards CSV cells against formula injection, unless turned off', async () => {
    const on = await exportTo(['--format', 'csv', '--fields', 'request_id,content_summary']);
    const cells = (parseCsv(readFileSync(join(on.out, files(on.out).find((f) => f.endsWith('.csv'))!)), { columns: true }) as Record<string, string>[]).map((x) => x.content_summary!);
    expect(cells.some((c) => /^'[=+\-@]/.test(c))).toBe(true);
    expect(cells.some((c) => /^[=+@]/.test(c))).toBe(false);
    const off = await exportTo(['--format', 'csv', '--fields', 'request_id,content_summary', '--no-formula-guard']);
    const raw = (parseCsv(readFileSync(join(off.out, files(off.out).find((f) => f.endsWith('.csv'))!)), { columns: true }) as Record<string, string>[]).map((x) => x.content_summary!);
    expect(raw.some((c) => /^[=+@]/.test(c))).toBe(true);
  });
});

describe('transforms', () => {
  it('anonymize hash is keyed HMAC-SHA256; nulls stay null', async () => {
    const { r, out } = await exportTo([...win, '--format', 'jsonl', '--anonymize', 'customer_id', '--hash-key-env', 'HK'], { HK: 'k3y' });
    expect(r.code, r.stderr).toBe(0);
    const recs = ndjson(readFileSync(join(out, files(out).find((f) => f.endsWith('.jsonl'))!), 'utf8'));
    const byId = new Map(inWindow.map((t) => [t.id, t]));
    for (const rec of recs) {
      const c = byId.get(rec.request_id)!.customer_id;
      // An empty customer_id is absent (null), and nulls stay null.
      expect(rec.customer_id).toBe(c === null || c === undefined || c === '' ? null : createHmac('sha256', 'k3y').update(String(c)).digest('hex'));
    }
    expect(JSON.stringify(manifestOf(out))).not.toContain('k3y');
  });
  it('anonymize hash without a key is refused', async () => {
    const { r } = await exportTo([...win, '--anonymize', 'customer_id']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/needs a key/);
  });
  it('redact, drop and sha256', async () => {
    const red = await exportTo([...win, '--anonymize', 'model', '--anonymize-method', 'redact']);
    const a = ndjson(readFileSync(join(red.out, files(red.out).find((f) => f.endsWith('.jsonl'))!), 'utf8'));
    expect(new Set(a.filter((x) => x.model !== null).map((x) => x.model))).toEqual(new Set(['[REDACTED]']));
    const drop = await exportTo([...win, '--anonymize', 'model,customer_id', '--anonymize-method', 'drop']);
    const b = ndjson(readFileSync(join(drop.out, files(drop.out).find((f) => f.endsWith('.jsonl'))!), 'utf8'));
    expect(Object.keys(b[0])).not.toContain('model');
    const sha = await exportTo([...win, '--anonymize', 'provider', '--anonymize-method', 'sha256']);
    const c = ndjson(readFileSync(join(sha.out, files(sha.out).find((f) => f.endsWith('.jsonl'))!), 'utf8'));
    expect(c[0].provider).toBe(createHash('sha256').update(inWindow.find((t) => t.id === c[0].request_id)!.provider).digest('hex'));
  });
  it('enrich adds literals, env values and run variables', async () => {
    const { out } = await exportTo([...win, '--add-field', 'env=prod', '--add-field', 'region=${REGION}', '--add-field', 'run={run_id}', '--add-field', 'from={window_start}'], { REGION: 'eu-1' });
    const recs = ndjson(readFileSync(join(out, files(out).find((f) => f.endsWith('.jsonl'))!), 'utf8'));
    expect(recs[0]).toMatchObject({ env: 'prod', region: 'eu-1', from: new Date(SINCE).toISOString() });
    expect(recs[0].run).toBe(manifestOf(out).run_id);
  });
  it('aggregate equals a plain GROUP BY computed independently', async () => {
    const { r, out } = await exportTo([...win, '--aggregate-by', 'provider,date', '--metrics', 'count,error_count,error_rate,avg_latency,p50_latency,p99_latency,max_latency,input_tokens,total_cost,avg_cost']);
    expect(r.code, r.stderr).toBe(0);
    const rows = ndjson(readFileSync(join(out, files(out).find((f) => f.endsWith('.jsonl'))!), 'utf8'));
    const groups = new Map<string, TruthRow[]>();
    for (const t of inWindow) {
      const k = `${t.provider}|${new Date(t.__ts_ms).toISOString().slice(0, 10)}`;
      groups.set(k, [...(groups.get(k) ?? []), t]);
    }
    expect(rows).toHaveLength(groups.size);
    for (const row of rows) {
      const g = groups.get(`${row.provider}|${row.date}`)!;
      const lat = g.map((t) => Number(t.latency));
      const errors = g.filter((t) => t.status === 'error').length;
      expect(row.count).toBe(g.length);
      expect(row.error_count).toBe(errors);
      expect(row.error_rate).toBeCloseTo((100 * errors) / g.length, 9);
      expect(row.avg_latency).toBeCloseTo(lat.reduce((a, b) => a + b, 0) / g.length, 6);
      expect(row.p50_latency).toBeCloseTo(percentileCont(lat, 0.5)!, 6);
      expect(row.p99_latency).toBeCloseTo(percentileCont(lat, 0.99)!, 6);
      expect(row.max_latency).toBeCloseTo(Math.max(...lat), 6);
      expect(row.input_tokens).toBe(g.reduce((a, t) => a + Number(t.prompt_tokens ?? 0), 0));
      expect(row.total_cost).toBeCloseTo(g.reduce((a, t) => a + Number(t.cost ?? 0), 0), 9);
      expect(row.avg_cost).toBeCloseTo(g.reduce((a, t) => a + Number(t.cost ?? 0), 0) / g.length, 9);
    }
  });
});

describe('windows, plans and streams', () => {
  it('an empty window writes no data file, and the manifest says so', async () => {
    const { r, out } = await exportTo(['--since', '2030-01-01T00:00:00Z', '--until', '2030-01-02T00:00:00Z', '--format', 'parquet']);
    expect(r.code).toBe(0);
    expect(files(out).filter((f) => !f.endsWith('.manifest.json'))).toEqual([]);
    expect(manifestOf(out)).toMatchObject({ rows: 0, files: [] });
  });
  it('--plan counts and writes nothing', async () => {
    const { r, out } = await exportTo([...win, '--plan', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ estimated_rows: inWindow.length, estimated_files: 1 });
    expect(existsSync(out)).toBe(false);
  });
  it('--dest stdout streams data only', async () => {
    const r = await cli(['export', '--db', db, '--dest', 'stdout', '--format', 'jsonl', ...win]);
    expect(r.code).toBe(0);
    expect(ndjson(r.stdout)).toHaveLength(inWindow.length);
    const e = await cli(['export', '--db', db, '--dest', 'stdout', '--format', 'json', '--since', '2030-01-01', '--until', '2030-01-02']);
    expect(JSON.parse(e.stdout)).toEqual([]);
  });
  it('a re-run overwrites rather than duplicates', async () => {
    const out = outDir();
    const args = ['export', '--db', db, '--dest', 'file', '--out', out, '--format', 'csv', ...win, '--state-dir', join(dir, 'state')];
    await cli(args);
    const first = files(out);
    await cli(args);
    expect(files(out)).toEqual(first);
  });
});
