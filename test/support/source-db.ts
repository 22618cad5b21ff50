import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
// @ts-expect-error plain JS module
import { generateRows, loadPostgres, writeSqlite } from '../../fixtures/generator.mjs';
import { startPostgres } from './services.js';
import type { TruthRow } from './truth.js';

/** A source row as the warehouse tests count it, read back from the SQLite DB itself. */
export interface SourceRow { id: string; status: string; ms: number; cost: number | null; prompt_tokens: number | null }

/**
 * Store timestamps to epoch ms, independently of the CLI's parser (the forms
 * Bifrost writes): unpadded `…T…​.5Z` milliseconds, others rounded to the ms.
 */
export function tsMs(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
  if (!m) return NaN;
  const [, d, t, frac, zone] = m;
  let ms = 0;
  if (frac) ms = zone === 'Z' && text.charAt(10) === 'T' ? Math.min(999, Number.parseInt(frac, 10)) : Math.min(999, Math.round(Number(`0.${frac}`) * 1000));
  const z = !zone || zone === 'Z' ? 'Z' : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
  return Date.parse(`${d}T${t}${z}`) + ms;
}

/** Writes a Bifrost SQLite DB with the fixture generator and returns every row, timed independently. */
export function writeSourceDb(path: string, opts: Record<string, unknown>): SourceRow[] {
  writeSqlite(path, { seed: 42, schema: 'v1.5', ...opts });
  const src = new Database(path, { readonly: true });
  try {
    return (src.prepare('SELECT "id", "timestamp", "status", "cost", "prompt_tokens" FROM logs').all() as Array<Omit<SourceRow, 'ms'> & { timestamp: string }>)
      .map((r) => ({ id: r.id, status: r.status, cost: r.cost, prompt_tokens: r.prompt_tokens, ms: tsMs(r.timestamp) }));
  } finally {
    src.close();
  }
}

/** The same generated rows in a SQLite DB and an embedded Postgres, and the rows themselves as the truth. */
export interface TwoStores {
  dir: string;
  sqlitePath: string;
  pgUrl: string;
  truth: TruthRow[];
}

/**
 * Registers the suite's beforeAll/afterAll: generates the rows into both stores (a temp dir, a Postgres of
 * its own), then lets `prepare` change both stores and the truth alike before the tests run.
 */
export function useTwoStores(prefix: string, opts: Record<string, unknown>, prepare?: (s: TwoStores) => Promise<void>): TwoStores {
  const s = {} as TwoStores;
  let stopPg: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    s.dir = mkdtempSync(join(tmpdir(), prefix));
    s.sqlitePath = join(s.dir, 'logs.db');
    writeSqlite(s.sqlitePath, opts);
    s.truth = [...generateRows(opts)] as TruthRow[];
    const pg = await startPostgres();
    stopPg = pg.stop;
    s.pgUrl = await pg.createDatabase('bifrost');
    await loadPostgres(s.pgUrl, opts);
    await prepare?.(s);
  });
  afterAll(async () => {
    await stopPg?.();
    if (s.dir) rmSync(s.dir, { recursive: true, force: true });
  });
  return s;
}
