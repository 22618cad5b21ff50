import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { cli, ndjson } from '../support/cli.js';

const OPTS = { rows: 3000, seed: 21, schema: 'v1.5', start: '2026-10-01T00:00:00Z', days: 10 };
const WIN = ['--since', '2026-10-03T00:00:00Z', '--until', '2026-10-08T00:00:00Z'];
const PREV = ['--since', '2026-09-28T00:00:00Z', '--until', '2026-10-03T00:00:00Z'];
const CHROMIUM = '/usr/bin/chromium';

let dir: string;
let db: string;
let html: string;
let data: any;
let metrics: string;

function embedded(page: string): any {
  const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(page);
  expect(m).not.toBeNull();
  return JSON.parse(m![1]!);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bl-report-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, OPTS);
  const out = join(dir, 'report.html');
  const r = await cli(['report', '--db', db, ...WIN, '--group-by', 'team', '--out', out, '--state-dir', join(dir, 'state')]);
  expect(r.stderr).toContain('wrote');
  expect(r.code).toBe(0);
  html = readFileSync(out, 'utf8');
  data = embedded(html);
  metrics = (data.metrics as string[]).join(',');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const stats = async (args: string[]) => {
  const r = await cli(['stats', '--db', db, '--json', '--metrics', metrics, ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return ndjson(r.stdout);
};
const byKey = (rows: any[], k: string) => [...rows].sort((a, b) => String(a[k]).localeCompare(String(b[k])));

describe('report numbers equal stats --json', () => {
  it('headline totals and the previous period', async () => {
    expect(data.metrics).toEqual(expect.arrayContaining(['total_requests', 'total_cost', 'total_tokens', 'p50_latency', 'p95_latency', 'error_rate']));
    expect(data.totals).toEqual((await stats(WIN))[0]);
    expect(data.previous_totals).toEqual((await stats(PREV))[0]);
    expect(data.totals.total_requests).toBeGreaterThan(0);
  });
  it('the table per group (sorted by cost) and the daily series', async () => {
    const groups = await stats([...WIN, '--group-by', 'team_name']);
    expect(byKey(data.groups, 'team_name')).toEqual(byKey(groups, 'team_name'));
    const costs = data.groups.map((g: any) => Number(g.total_cost ?? 0));
    expect(costs).toEqual([...costs].sort((a, b) => b - a));
    expect(data.bucket).toBe('date');
    expect(data.series).toEqual(byKey(await stats([...WIN, '--bucket', 'day']), 'date'));
  });
  it('cancelled requests appear once stats has them', () => {
    if (data.metrics.includes('cancelled_count')) expect(html).toContain('data-metric="cancelled_count"');
    else expect(html).not.toContain('Cancelled');
  });
  it('the footer names source, zone, version and filters; user values are escaped', async () => {
    expect(html).toContain('Time zone: UTC');
    expect(html).toMatch(/bifrost-logs \d+\.\d+\.\d+/);
    expect(html).toContain('since=2026-10-03T00:00:00Z');
    const evil = '<img src=x onerror=alert(1)>';
    const out = join(dir, 'evil.html');
    const r = await cli(['report', '--db', db, ...WIN, '--models', evil, '--out', out]);
    expect(r.code).toBe(0);
    const page = readFileSync(out, 'utf8');
    expect(page).not.toContain(evil);
    expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(embedded(page).filters.models).toEqual([evil]);
  });
  it('an hourly series under three days', async () => {
    const r = await cli(['report', '--db', db, '--since', '2026-10-03T00:00:00Z', '--until', '2026-10-04T00:00:00Z', '--json']);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.bucket).toBe('hour');
    expect(d.series.length).toBe(24);
  });
});

describe('the report in a headless browser', () => {
  it('opens from disk with no console error and no network request; charts, totals and screenshots', async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)`).toBe(true);
    const file = join(dir, 'report.html');
    for (const width of [1280, 390]) {
      const context = await chromium.launchPersistentContext(join(dir, `chromium-profile-${width}`), {
        executablePath: CHROMIUM, viewport: { width, height: 900 },
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      const page = await context.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('request', (r) => { if (r.url() !== `file://${file}`) requests.push(r.url()); });
      await page.route('**/*', (route) => (route.request().url() === `file://${file}` ? route.continue() : route.abort()));
      await page.goto(`file://${file}`);
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      const charts = await page.$$eval('figure.chart', (fs) => fs.map((f) => ({ id: f.id, paths: f.querySelectorAll('svg path, svg rect').length, svg: !!f.querySelector('svg') })));
      expect(charts.map((c) => c.id)).toEqual(['chart-requests', 'chart-cost', 'chart-tokens', 'chart-latency', 'chart-errors', 'chart-groups']);
      for (const c of charts) { expect(c.svg).toBe(true); expect(c.paths).toBeGreaterThan(0); }
      const json = JSON.parse(await page.$eval('#report-data', (s) => s.textContent ?? ''));
      const shown = await page.$$eval('#totals [data-value]', (vs) => vs.map((v) => [v.parentElement!.getAttribute('data-metric'), v.getAttribute('data-value')]));
      expect(shown.length).toBeGreaterThanOrEqual(7);
      for (const [m, v] of shown) expect(v).toBe(String(json.totals[m!] ?? ''));
      expect(await page.$$eval('#groups tbody tr', (r) => r.length)).toBe(json.groups.length);
      const png = await page.screenshot({ fullPage: true });
      writeFileSync(join(dir, `report-${width}.png`), png);
      // Not blank: the pixel variance of the screenshot, measured in a blank page's canvas.
      const blank = await context.newPage();
      const variance = await blank.evaluate(async (b64) => {
        const img = new Image();
        img.src = `data:image/png;base64,${b64}`;
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.width; c.height = img.height;
        const g = c.getContext('2d')!;
        g.drawImage(img, 0, 0);
        const px = g.getImageData(0, 0, c.width, c.height).data;
        let s = 0, s2 = 0, n = 0;
        for (let i = 0; i < px.length; i += 4) { const l = (px[i]! + px[i + 1]! + px[i + 2]!) / 3; s += l; s2 += l * l; n++; }
        return s2 / n - (s / n) ** 2;
      }, png.toString('base64'));
      expect(variance).toBeGreaterThan(100);
      await context.close();
    }
  });
});

describe('scheduled reports (data.format: report)', () => {
  it('a monthly schedule writes one report per month window, once; a re-run does not duplicate it', async () => {
    const big = join(dir, 'months.db');
    writeSqlite(big, { rows: 2000, seed: 5, schema: 'v1.5', start: '2026-08-01T00:00:00Z', days: 92 });
    const out = join(dir, 'monthly');
    const state = join(dir, 'monthly-state');
    const cfg = join(dir, 'monthly.json');
    writeFileSync(cfg, JSON.stringify({
      source: { path: big },
      log_exports: {
        enabled: true,
        exports: [{
          name: 'statement', enabled: true,
          schedule: { frequency: 'monthly', day: 1, time: '00:00', timezone: 'UTC' },
          backfill_from: '2026-08-01',
          destination: { type: 'file', config: { path: out, prefix: '{year}/{month}/' } },
          data: { format: 'report' },
        }],
      },
    }));
    const run = () => cli(['run', '--config', cfg, '--state-dir', state, '--now', '2026-11-02T03:00:00Z']);
    const first = await run();
    expect(first.stderr).not.toMatch(/could not/);
    expect(first.code).toBe(0);
    const { readdirSync, statSync } = await import('node:fs');
    const list = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? list(join(d, f)) : [join(d, f)]));
    const files = () => list(out).map((f) => f.slice(out.length + 1)).sort();
    const before = files();
    for (const m of ['08', '09', '10']) {
      const html = before.filter((f) => f.startsWith(`2026/${m}/`) && f.endsWith('.html'));
      expect(html).toHaveLength(1);
      const page = readFileSync(join(out, html[0]!), 'utf8');
      const d = embedded(page);
      expect(d.period.start).toBe(`2026-${m}-01T00:00:00.000Z`);
      const next = m === '08' ? '2026-09-01' : m === '09' ? '2026-10-01' : '2026-11-01';
      const s = await cli(['stats', '--db', big, '--json', '--metrics', (d.metrics as string[]).join(','), '--since', `2026-${m}-01T00:00:00Z`, '--until', `${next}T00:00:00Z`,
        // A scheduled window holds completed rows only (success, error, cancelled; processing ones wait for the next run), as every export does.
        '--status', 'success,error,cancelled']);
      expect(d.totals).toEqual(ndjson(s.stdout)[0]);
      const manifest = before.find((f) => f.startsWith(`2026/${m}/`) && f.includes('manifest'));
      expect(manifest).toBeDefined();
      const mf = JSON.parse(readFileSync(join(out, manifest!), 'utf8'));
      expect(mf.format).toBe('report');
      expect(mf.files).toHaveLength(1);
      expect(mf.rows).toBe(d.totals.total_requests);
    }
    const again = await run();
    expect(again.code).toBe(0);
    expect(files()).toEqual(before);
  });
});

describe('a report to an object store', () => {
  it('export --format report --dest s3 writes one HTML part and its manifest', async () => {
    const { startS3 } = await import('../support/services.js');
    const { S3Client, ListObjectsV2Command, GetObjectCommand } = await import('@aws-sdk/client-s3');
    const s3 = await startS3({ buckets: ['reports'] });
    try {
      const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true',
        AWS_PROFILE: undefined, AWS_CONFIG_FILE: join(dir, 'no-aws-config'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials') };
      const r = await cli(['export', '--db', db, ...WIN, '--format', 'report', '--dest', 's3', '--bucket', 'reports', '--endpoint', s3.endpoint,
        '--force-path-style', '--region', 'us-east-1', '--prefix', 'statements/', '--state-dir', join(dir, 's3-state')], { env });
      expect(r.code, r.stderr).toBe(0);
      const client = new S3Client(s3.clientConfig);
      const keys = ((await client.send(new ListObjectsV2Command({ Bucket: 'reports' }))).Contents ?? []).map((o) => o.Key!).sort();
      const html = keys.filter((k) => k.endsWith('.html'));
      expect(html).toHaveLength(1);
      expect(keys.filter((k) => k.endsWith('manifest.json'))).toHaveLength(1);
      const body = await (await client.send(new GetObjectCommand({ Bucket: 'reports', Key: html[0]! }))).Body!.transformToString();
      const d = embedded(body);
      expect(d.totals).toEqual((await stats([...WIN, '--status', 'success,error,cancelled']))[0]);
    } finally {
      await s3.destroy();
    }
  }, 120_000);
});
