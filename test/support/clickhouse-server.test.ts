import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { startClickHouse, type ClickHouseServer } from './clickhouse-server.js';

describe('ClickHouse test endpoint (chdb behind the HTTP interface)', () => {
  let ch: ClickHouseServer;
  let client: ClickHouseClient;
  beforeAll(async () => {
    ch = await startClickHouse();
    client = createClient({ url: ch.url, username: ch.user, password: ch.password, database: ch.database });
  }, 120_000);
  afterAll(async () => { await client?.close(); await ch?.stop(); });

  it('pings, runs DDL, inserts JSONEachRow and reads the latest version with FINAL and bound parameters', async () => {
    expect((await client.ping()).success).toBe(true);
    await client.command({ query: `CREATE TABLE t (id String, ver DateTime64(9), v Nullable(Float64), ts DateTime64(3)) ENGINE = ReplacingMergeTree(ver) ORDER BY (ts, id)` });
    await client.insert({ table: 't', format: 'JSONEachRow', values: [
      { id: 'a', ver: '2026-01-01 00:00:00.000000001', v: 1, ts: '2026-01-01 00:00:00.000' },
      { id: 'b\tx\'\\', ver: '2026-01-01 00:00:00.000000001', v: null, ts: '2026-01-01 00:00:01.000' },
    ] });
    // A later version in its own insert (one insert block is deduplicated as it is written).
    await client.insert({ table: 't', format: 'JSONEachRow', values: [{ id: 'a', ver: '2026-01-01 00:00:00.000000002', v: 2, ts: '2026-01-01 00:00:00.000' }] });
    const rs = await client.query({ query: 'SELECT id, v FROM t FINAL WHERE id IN {ids:Array(String)} OR v = {v:Float64} ORDER BY ts, id', query_params: { ids: ['b\tx\'\\'], v: 2 }, format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ id: 'a', v: 2 }, { id: 'b\tx\'\\', v: null }]);
    const raw = await client.query({ query: 'SELECT count() AS n FROM t', format: 'JSONEachRow' });
    expect(await raw.json()).toEqual([{ n: '3' }]);
    const s = await client.query({ query: 'SELECT number FROM system.numbers LIMIT 200000', format: 'TabSeparated' });
    let lines = 0;
    for await (const rows of s.stream()) lines += rows.length;
    expect(lines).toBe(200000);
  }, 120_000);

  it('answers errors as ClickHouse does: code, message, status', async () => {
    await expect(client.query({ query: 'SELECT * FROM nope', format: 'JSONEachRow' })).rejects.toMatchObject({ code: '60', type: 'UNKNOWN_TABLE' });
    await expect(client.query({ query: 'SELEC 1' })).rejects.toMatchObject({ code: '62' });
    const bad = createClient({ url: ch.url, username: ch.user, password: 'wrong', database: ch.database });
    await expect(bad.query({ query: 'SELECT 1' })).rejects.toMatchObject({ code: '516' });
    await bad.close();
  });
});
