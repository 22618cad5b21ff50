import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
// @ts-expect-error plain JS module
import { generateRows, writeSqlite } from '../../fixtures/generator.mjs';
import { cli, ndjson } from '../support/cli.js';
import { isCompleted, type TruthRow } from '../support/truth.js';
import { validateConfig } from '../../src/config/load.js';
import { buildJob } from '../../src/run/job.js';
import { fingerprintColumns } from '../../src/run/plan.js';
import { windowFilter } from '../../src/run/export-window.js';
import { SqliteSource } from '../../src/source/sqlite/sqlite-source.js';
import type { SourcePosition } from '../../src/source/types.js';
import { FINGERPRINT_VERSION } from '../../src/source/fingerprint.js';

/**
 * A ledger written by older releases: fingerprints with no version (version
 * 1, every exported column hashed) and version 2 (every column Bifrost changes
 * after insert). The upgrade neither restates every window nor hides a change
 * made before it, and every window then carries the current version.
 */
const OPTS = { rows: 1400, seed: 47, schema: 'newer', start: '2026-10-01T00:00:00Z', days: 7 };
const DAY = 86_400_000;
const T0 = Date.parse('2026-10-01T00:00:00Z');
let dir: string;

beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'bl-restate-up-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fingerprints stored by an older release', () => {
  it('are compared in their own version, re-baselined without re-delivery, and a change made before the upgrade is restated', async () => {
    const db = join(dir, 'logs.db');
    writeSqlite(db, OPTS);
    const truth = [...generateRows(OPTS)] as TruthRow[];
    const cfg = join(dir, 'cfg.json');
    const state = join(dir, 'state');
    writeFileSync(cfg, JSON.stringify({ source: { path: db }, log_exports: { exports: [{
      name: 'daily', schedule: { frequency: 'daily', time: '00:00', timezone: 'UTC' }, backfill_from: '2026-10-01',
      destination: { type: 'file', config: { path: join(dir, 'out') } }, data: { format: 'jsonl', compression: 'none' },
    }] } }));
    const run = (now: string) => cli(['run', '--config', cfg, '--state-dir', state, '--now', now, '--json']);
    const verify = () => cli(['verify', '--config', cfg, '--state-dir', state]);
    const first = await run('2026-10-08T00:30:00Z');
    expect(first.code, first.stderr).toBe(0);
    expect(ndjson(first.stdout).filter((e) => e.event === 'finished')).toHaveLength(7);

    // The ledger as older releases left it: the windows' fingerprints in version 1 (no "v") and version 2, alternately.
    const parsed = validateConfig(JSON.parse(readFileSync(cfg, 'utf8')), cfg);
    const job = buildJob(parsed.log_exports!.exports[0]!, parsed.log_exports, 'log_exports.exports[0]');
    const base = { ...windowFilter(job, { start: 0, end: 0 }, Date.now()), start: undefined, end: undefined };
    const src = SqliteSource.open(db);
    const led = new Database(join(state, 'ledger.db'));
    const runs = led.prepare(`SELECT id, window_start, window_end, position_kind, position_value FROM runs WHERE status = 'success'`).all() as Array<{ id: number; window_start: number; window_end: number; position_kind: string; position_value: number }>;
    for (const r of runs) {
      const version = (r.window_start - T0) / DAY % 2 === 0 ? 1 : 2;
      const [fp] = await src.fingerprints(base, [{ start: r.window_start, end: r.window_end, upTo: { kind: r.position_kind as SourcePosition['kind'], value: r.position_value } }], fingerprintColumns(job), undefined, version);
      expect(fp!.v).toBe(version === 1 ? undefined : 2);
      led.prepare('UPDATE runs SET fingerprint = ? WHERE id = ?').run(JSON.stringify(fp), r.id);
    }
    led.close();
    await src.close();
    expect((await verify()).code).toBe(0);

    // Before the upgraded release runs, the gateway reprices one row of the second day (version 2) and of the third (version 1).
    const w = new Database(db);
    for (const d of [1, 2]) {
      const row = truth.find((t) => isCompleted(t) && t.cost !== null && t.__ts_ms >= T0 + d * DAY && t.__ts_ms < T0 + (d + 1) * DAY)!;
      w.prepare('UPDATE logs SET cost = cost * 3 + 0.5 WHERE id = ?').run(row.id);
    }
    w.close();
    const drift = await verify();
    expect(drift.code, drift.stderr).toBe(65);
    expect(drift.stderr).toMatch(/2026-10-02.*rows changed since revision 1 was delivered: cost/);
    expect(drift.stderr).toMatch(/2026-10-03.*rows changed since revision 1 was delivered: cost/);

    const second = await run('2026-10-08T00:40:00Z');
    expect(second.code, second.stderr).toBe(0);
    const fin = ndjson(second.stdout).filter((e) => e.event === 'finished');
    expect(fin.map((e) => [e.kind, e.window_start])).toEqual([1, 2].map((d) => ['restate', new Date(T0 + d * DAY).toISOString()]));
    const after = new Database(join(state, 'ledger.db'), { readonly: true });
    // Each window's current revision (the superseded one keeps what it was delivered with).
    const fps = (after.prepare(`SELECT fingerprint FROM runs r WHERE status = 'success' AND id = (SELECT max(id) FROM runs s WHERE s.window_start = r.window_start AND s.status = 'success')`).pluck().all() as string[]).map((x) => JSON.parse(x));
    after.close();
    expect(fps).toHaveLength(7);
    expect(fps.map((f) => f.v ?? 1), JSON.stringify(fps)).toEqual(fps.map(() => FINGERPRINT_VERSION));
    expect((await verify()).code).toBe(0);
    const third = await run('2026-10-08T00:50:00Z');
    expect(third.code, third.stderr).toBe(0);
    expect(ndjson(third.stdout).filter((e) => e.event === 'finished')).toEqual([]);
  });
});
