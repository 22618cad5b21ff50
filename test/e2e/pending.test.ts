import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { exportSchema } from '../../src/config/schema.js';
import { DESTINATIONS } from '../../src/destination/index.js';
import { buildJob } from '../../src/run/job.js';
import { exportWindow, type WindowResult } from '../../src/run/export-window.js';
import { SqliteSource } from '../../src/source/sqlite/sqlite-source.js';
import type { LogSource, ReadQuery, RowPage } from '../../src/source/types.js';
import { ndjson } from '../support/cli.js';

// Old gateways insert a row as `processing` and update it when the request ends, possibly while an export reads.
const W = { start: Date.parse('2026-10-02T00:00:00Z'), end: Date.parse('2026-10-03T00:00:00Z') };
let dir: string;
let db: string;
let early: string; // read before it finishes
let late: string; // finishes before it is read

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-pending-'));
  db = join(dir, 'logs.db');
  writeSqlite(db, { rows: 3000, seed: 5, schema: 'newer', start: '2026-10-01T00:00:00Z', days: 3 });
  const h = new Database(db);
  const ids = h.prepare(`SELECT id FROM logs WHERE status = 'success' AND "timestamp" >= '2026-10-02 06' AND "timestamp" < '2026-10-02 18' AND "timestamp" LIKE '%+00:00' ORDER BY rowid`).pluck().all() as string[];
  early = ids[2]!;
  late = ids[ids.length - 3]!;
  h.prepare(`UPDATE logs SET status = 'processing' WHERE id IN (?, ?)`).run(early, late);
  h.close();
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The SQLite source, read in small pages; after its first page the gateway finishes `finish`. */
function racingSource(finish: string[]): LogSource {
  const inner = SqliteSource.open(db);
  let fired = false;
  return new Proxy(inner, {
    get(target, prop, recv) {
      if (prop !== 'read') return Reflect.get(target, prop, recv);
      return async function* (q: ReadQuery, signal?: AbortSignal): AsyncIterable<RowPage> {
        for await (const page of target.read({ ...q, pageSize: 50 }, signal)) {
          yield page;
          if (!fired && finish.length) {
            fired = true;
            const w = new Database(db);
            w.prepare(`UPDATE logs SET status = 'success' WHERE id IN (${finish.map(() => '?').join(',')})`).run(...finish);
            w.close();
          }
        }
      };
    },
  });
}

/** A window's pending ids, from the JSON the ledger stores. */
const idsOf = (p: { json: string | Uint8Array }) => JSON.parse(typeof p.json === 'string' ? p.json : Buffer.from(p.json).toString('utf8')) as string[];

async function exportOnce(out: string, source: LogSource, late?: { after: WindowResult['position']; pendingIds: string[]; previous: WindowResult['manifest'] }) {
  const cfg = exportSchema.parse({ name: 'p', destination: { type: 'file', config: { path: out } }, data: { format: 'jsonl' } });
  const job = buildJob(cfg, undefined, 'exports[0]');
  const dest = await (await DESTINATIONS.file!())(job.destConfig, { log: { warn() {}, info() {}, verbose() {} } as never, tmpDir: dir });
  const upTo = await source.position();
  return exportWindow({ job, source, dest, window: W, runId: late ? 'run-2' : 'run-1', upTo, late, now: W.end + 3_600_000 });
}

const delivered = (out: string, kind: 'part' | 'late' = 'part') => readdirSync(out).filter((f) => f.includes(`_${kind}-`)).sort()
  .flatMap((f) => ndjson(readFileSync(join(out, f), 'utf8')).map((r) => r.request_id as string));

describe('rows that finish while an export reads', () => {
  it('are left for the next run, which delivers each exactly once', async () => {
    const out = join(dir, 'out');
    const source = racingSource([early, late]);
    const first = await exportOnce(out, source);
    // Both were processing when the export began: neither is delivered now, both are pending.
    expect(delivered(out)).not.toContain(early);
    expect(delivered(out)).not.toContain(late);
    const firstPending = idsOf(first.pendingIds);
    expect(first.pendingIds.count).toBe(firstPending.length);
    expect(firstPending).toEqual(expect.arrayContaining([early, late]));
    const firstRows = delivered(out);
    expect(firstRows.length).toBe(first.rows);

    // A row that arrives after the snapshot, finished; an older ledger may also list it as pending.
    const h = new Database(db);
    const extra = h.prepare(`SELECT * FROM logs WHERE status = 'success' AND "timestamp" LIKE '2026-10-02%' LIMIT 1`).get() as Record<string, unknown>;
    const newId = `${String(extra.id).slice(0, -4)}beef`;
    h.prepare(`INSERT INTO logs (${Object.keys(extra).map((k) => `"${k}"`).join(', ')}) VALUES (${Object.keys(extra).map(() => '?').join(', ')})`)
      .run(...Object.values(extra).map((v, i) => (Object.keys(extra)[i] === 'id' ? newId : v)));
    h.close();

    const second = await exportOnce(out, SqliteSource.open(db), { after: first.position, pendingIds: [...firstPending, newId], previous: first.manifest });
    const lateRows = delivered(out, 'late');
    expect(lateRows.sort()).toEqual([early, late, newId].sort());
    const all = [...delivered(out), ...lateRows];
    expect(new Set(all).size).toBe(all.length);
    expect(idsOf(second.pendingIds)).not.toContain(early);
    expect(idsOf(second.pendingIds)).not.toContain(late);
  });
});
