/**
 * The same generated rows in a SQLite file, an embedded Postgres and the
 * ClickHouse engine, each opened as a LogSource on one log table: the setup
 * of a source contract suite.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JS module
import { writeSqlite, loadPostgres } from '../../fixtures/generator.mjs';
// @ts-expect-error plain JS module
import { loadClickHouse } from '../../fixtures/clickhouse.mjs';
import { startPostgres } from './services.js';
import { startClickHouse, type ClickHouseServer } from './clickhouse-server.js';
import { openSource } from '../../src/source/open.js';
import { specFromDbArg } from '../../src/source/locate.js';
import type { LogTableName } from '../../src/source/log-table.js';
import type { Filter } from '../../src/source/filter.js';
import type { LogSource } from '../../src/source/types.js';

export interface ThreeStores {
  dir: string;
  sqlitePath: string;
  ch: ClickHouseServer;
  sources: Record<'sqlite' | 'postgres' | 'clickhouse', LogSource>;
  close(): Promise<void>;
}

export async function openThreeStores(opts: Record<string, unknown>, table: LogTableName, prefix = 'bl-3s-'): Promise<ThreeStores> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const sqlitePath = join(dir, 'logs.db');
  writeSqlite(sqlitePath, opts);
  const pg = await startPostgres();
  const pgUrl = await pg.createDatabase('bifrost');
  await loadPostgres(pgUrl, opts);
  const ch = await startClickHouse();
  await loadClickHouse((sql: string) => ch.exec(sql), opts);
  const u = new URL(ch.url);
  const sources = {
    sqlite: await openSource(specFromDbArg(sqlitePath, '--db'), table),
    postgres: await openSource(specFromDbArg(pgUrl, '--db'), table),
    clickhouse: await openSource(specFromDbArg(`clickhouse://${ch.user}:${ch.password}@${u.host}/${ch.database}`, '--db'), table),
  };
  return {
    dir, sqlitePath, ch, sources,
    async close() {
      for (const s of Object.values(sources)) await s.close();
      await ch.stop();
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The most frequent non-empty value of a column. */
export function mostCommon(rows: ReadonlyArray<Record<string, unknown>>, key: string): string {
  const c = new Map<unknown, number>();
  for (const r of rows) if (r[key] !== null && r[key] !== '' && r[key] !== undefined) c.set(r[key], (c.get(r[key]) ?? 0) + 1);
  return [...c.entries()].sort((a, b) => b[1] - a[1])[0]![0] as string;
}

/** The ids a read returns, in its order. */
export async function readIds(s: LogSource, filter: Filter, pageSize = 77): Promise<string[]> {
  const ids: string[] = [];
  for await (const p of s.read({ filter, columns: ['id', 'status'], pageSize })) {
    const i = p.columns.indexOf('id');
    for (const r of p.rows) ids.push(r[i] as string);
  }
  return ids;
}
