import type { SourceSpec } from './locate.js';
import type { LogTableName } from './log-table.js';
import type { LogSource } from './types.js';

/** Opens the located source on one of its log tables (default `logs`); each reader is loaded only when used. */
export async function openSource(spec: SourceSpec, table: LogTableName = 'logs'): Promise<LogSource> {
  if (spec.kind === 'sqlite') {
    const { SqliteSource } = await import('./sqlite/sqlite-source.js');
    return SqliteSource.open(spec.path, table);
  }
  if (spec.kind === 'clickhouse') {
    const { ClickHouseSource } = await import('./clickhouse/clickhouse-source.js');
    return ClickHouseSource.open(spec.conn, table);
  }
  const { PostgresSource } = await import('./postgres/postgres-source.js');
  return PostgresSource.open(spec.conn, spec.requestTimeoutSecs, table);
}
