import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startPostgres } from '../support/services.js';
import { CliError } from '../../src/errors.js';
import type { Destination, DestinationEnv } from '../../src/destination/types.js';
import type { RecordSchema } from '../../src/record/fields.js';
import { AGG_SCHEMA, aggRows, HOUR, SCHEMA, TRICKY_NUL as TRICKY, W1, W2, deliver, encode, records as baseRecords, silentLog } from './warehouse-data.js';

/** The SQL warehouses also get NULs in strings and JSON. */
const records = (tag: string, n: number, w: { start: number; end: number }) => baseRecords(tag, n, w, { nul: true });
import { createNulScrubber, createPostgresDestination, pgInsertSql } from '../../src/destination/postgres/index.js';
import {
  createRedshiftDestination, insertValuesSql, redshiftCopySql, redshiftDialect, redshiftHost, rowsPerInsert, stagedLoadStatements,
} from '../../src/destination/redshift/index.js';
import { POSTGRES_DIALECT } from '../../src/destination/postgres/dialect.js';
import { createTableSql, addColumnsSql, deleteWindowSql, insertFromStageSql } from '../../src/destination/warehouse/sql.js';
import { tableLayout } from '../../src/destination/warehouse/layout.js';

/**
 * One body over both SQL warehouses: `postgres` (COPY into a session stage)
 * and `redshift` without staging (batched INSERTs), the latter pointed at the
 * same embedded PostgreSQL: its SQL must be what both servers accept.
 */


interface Kind {
  name: 'postgres' | 'redshift';
  types: Record<string, string>;
  make(url: string, table: string, over?: { url?: string; password?: string; port?: number }): Promise<Destination>;
}

function redshiftConfigFor(url: string, table: string, over: { password?: string; port?: number } = {}) {
  const u = new URL(url);
  return {
    host: u.hostname, port: over.port ?? Number(u.port || 5432), database: decodeURIComponent(u.pathname.slice(1)),
    schema: 'public', table, ssl: false, insert_batch_rows: 7,
    credentials: { username: decodeURIComponent(u.username), password: over.password ?? decodeURIComponent(u.password) },
  };
}

let tmp: string;
const env = (): DestinationEnv => ({ log: silentLog, tmpDir: tmp });

const KINDS: Kind[] = [
  {
    name: 'postgres',
    types: { timestamp: 'timestamp with time zone', request_id: 'text', provider: 'text', status_code: 'integer', input_tokens: 'integer', bytes_total: 'bigint', cost_usd: 'double precision', stream: 'boolean', params: 'jsonb', content_summary: 'text' },
    make: (url, table, over = {}) => {
      const u = new URL(over.url ?? url);
      if (over.password !== undefined) u.password = over.password;
      if (over.port !== undefined) u.port = String(over.port);
      return createPostgresDestination({ url: u.toString(), schema: 'public', table }, env());
    },
  },
  {
    name: 'redshift',
    types: { timestamp: 'timestamp with time zone', request_id: 'character varying', provider: 'character varying', status_code: 'integer', input_tokens: 'integer', bytes_total: 'bigint', cost_usd: 'double precision', stream: 'boolean', params: 'character varying', content_summary: 'character varying' },
    make: (url, table, over = {}) => createRedshiftDestination(redshiftConfigFor(url, table, over), env()),
  },
];

let server: Awaited<ReturnType<typeof startPostgres>>;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'bl-sqlwh-'));
  server = await startPostgres();
}, 180_000);

afterAll(async () => {
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe.each(KINDS)('$name destination (embedded PostgreSQL)', (kind) => {
  let url: string;
  let admin: pg.Client;
  const TABLE = 'logs_export';
  let dest: Destination;

  beforeAll(async () => {
    url = await server.createDatabase(`wh_${kind.name}`);
    admin = new pg.Client({ connectionString: url });
    admin.on('error', () => {});
    await admin.connect();
    dest = await kind.make(url, TABLE);
  }, 60_000);

  afterAll(async () => {
    await dest?.close();
    await admin?.end();
  });

  const snapshot = async (table = TABLE) =>
    (await admin.query(`SELECT request_id, "timestamp", cost_usd, input_tokens, content_summary FROM public.${table} ORDER BY request_id`)).rows;
  const count = async (w?: { start: number; end: number }, table = TABLE) => {
    const r = w
      ? await admin.query(`SELECT count(*)::int AS n FROM public.${table} WHERE "timestamp" >= $1 AND "timestamp" < $2`, [new Date(w.start), new Date(w.end)])
      : await admin.query(`SELECT count(*)::int AS n FROM public.${table}`);
    return r.rows[0].n as number;
  };

  const r1 = records('w1', 40, W1);
  const r2 = records('w2', 15, W2);

  it('check() passes and leaves nothing behind', async () => {
    await dest.check();
    const t = await admin.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`);
    expect(t.rows).toEqual([]);
  });

  it('creates a typed table from the schema and loads a window', async () => {
    await deliver(dest, { window: W1, parts: [r1.slice(0, 25), r1.slice(25)] });
    const cols = await admin.query(`SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`, [TABLE]);
    const types = Object.fromEntries(cols.rows.map((c) => [c.column_name, c.data_type]));
    expect(types).toEqual(kind.types);
    expect(cols.rows.every((c) => c.is_nullable === 'YES')).toBe(true);
    expect(await count()).toBe(40);

    const sums = (await admin.query(`SELECT SUM(cost_usd) AS cost, SUM(input_tokens)::int AS tokens, SUM(bytes_total)::text AS bytes, count(*) FILTER (WHERE stream)::int AS streams FROM public.${TABLE}`)).rows[0];
    expect(sums.cost).toBeCloseTo(r1.reduce((a, r) => a + ((r.cost_usd as number | null) ?? 0), 0), 9);
    expect(sums.tokens).toBe(r1.reduce((a, r) => a + (r.input_tokens as number), 0));
    expect(sums.bytes).toBe(String(r1.reduce((a, r) => a + (r.bytes_total as number), 0)));
    expect(sums.streams).toBe(r1.filter((r) => r.stream === true).length);

    // Values survive untouched: quotes, backslashes, control characters, nested JSON, nulls, timestamps to the ms.
    const row = (await admin.query(`SELECT "timestamp", content_summary, params, status_code, cost_usd, stream FROM public.${TABLE} WHERE request_id = $1`, ['w1-0001'])).rows[0];
    expect(row.content_summary).toBe(TRICKY);
    const params = typeof row.params === 'string' ? JSON.parse(row.params) : row.params;
    expect(params).toEqual(r1[1]!.params);
    expect(row.timestamp.toISOString()).toBe(r1[1]!.timestamp);
    expect(row.status_code).toBe(r1[1]!.status_code);
    expect(row.cost_usd).toBe(r1[1]!.cost_usd);
    expect(row.stream).toBe(r1[1]!.stream);
    // U+0000, which PostgreSQL text and jsonb refuse, arrives as U+FFFD instead of failing the window.
    const nul = (await admin.query(`SELECT content_summary, params FROM public.${TABLE} WHERE request_id = 'w1-0002'`)).rows[0];
    expect(nul.content_summary).toBe('nul\uFFFDhere');
    const nulParams = typeof nul.params === 'string' ? JSON.parse(nul.params) : nul.params;
    expect(String(nulParams.nested.z).replace('\0', '\uFFFD')).toBe('x\uFFFDy');
    const nulls = (await admin.query(`SELECT params, cost_usd, stream, status_code FROM public.${TABLE} WHERE request_id = 'w1-0000'`)).rows[0];
    expect(nulls).toEqual({ params: null, cost_usd: null, stream: null, status_code: null });

    expect(await dest.countWindow!(W1)).toBe(40);
    expect(await dest.countWindow!(W2)).toBe(0);
  });

  it('re-loading a window leaves exactly the window\'s rows, other windows untouched', async () => {
    await deliver(dest, { window: W2, parts: [r2] });
    await deliver(dest, { window: W1, parts: [r1.slice(0, 25), r1.slice(25)] });
    expect(await count(W1)).toBe(40);
    expect(await count(W2)).toBe(15);
    // The window now has fewer rows (deleted upstream): the table follows.
    await deliver(dest, { window: W1, parts: [r1.slice(0, 30)] });
    expect(await count(W1)).toBe(30);
    await deliver(dest, { window: W1, parts: [r1.slice(0, 25), r1.slice(25)] });
    expect(await count(W1)).toBe(40);
    expect(await count()).toBe(55);
    // An empty window still clears what was there.
    await deliver(dest, { window: W2, parts: [] });
    expect(await count(W2)).toBe(0);
    await deliver(dest, { window: W2, parts: [r2] });
    expect(await count(W2)).toBe(15);
  });

  it('a late part adds only request_ids not yet present', async () => {
    const before = await snapshot();
    const known = r1.slice(0, 3).map((r) => ({ ...r, cost_usd: 99 }));
    const fresh = records('w1late', 4, W1);
    await deliver(dest, { window: W1, late: true, parts: [[...known, fresh[0]!, fresh[1]!], [fresh[2]!, fresh[3]!, fresh[0]!]] });
    expect(await count(W1)).toBe(44);
    const after = await snapshot();
    // Rows already delivered are left as they were.
    for (const b of before) expect(after.find((a) => a.request_id === b.request_id)).toEqual(b);
    expect(after.filter((a) => String(a.request_id).startsWith('w1late-')).length).toBe(4);
    // A late run with nothing is a no-op.
    await deliver(dest, { window: W1, late: true, parts: [] });
    expect(await count(W1)).toBe(44);
    // The next full delivery of the window restores exactly the window's rows.
    await deliver(dest, { window: W1, parts: [r1] });
    expect(await count(W1)).toBe(40);
  });

  it('a bad value mid-load rolls back: the table is exactly as it was', async () => {
    const before = await snapshot();
    const bad = records('w1', 40, W1);
    bad[35] = { ...bad[35]!, input_tokens: 'not a number' };
    await expect(deliver(dest, { window: W1, parts: [bad.slice(0, 20), bad.slice(20)] })).rejects.toMatchObject({ name: 'CliError', exitCode: 65 });
    expect(await snapshot()).toEqual(before);
    // The destination is still usable afterwards.
    await deliver(dest, { window: W1, parts: [r1] });
    expect(await snapshot()).toEqual(before);
  });

  it('poison values (a malformed JSON cell, a 200 KB multi-byte message with a NUL) never fail a window, full or late', async () => {
    // 'é' is 2 bytes and '𝄞' 4 in UTF-8: 200 KB of them is far over Redshift's 65535-byte VARCHAR.
    const huge = `start ${'é𝄞'.repeat(34_000)}\u0000 end`;
    const poison = (tag: string, w: { start: number; end: number }) => records(tag, 6, w).map((r, i) => (i === 3 ? { ...r, params: '{"cut off": [1, 2', content_summary: huge } : r));
    const full = poison('pz', W1);
    await deliver(dest, { window: W1, parts: [full] });
    const late = poison('pzlate', W1);
    await deliver(dest, { window: W1, late: true, parts: [late] });
    for (const id of ['pz-0003', 'pzlate-0003']) {
      const row = (await admin.query(`SELECT content_summary, params FROM public.${TABLE} WHERE request_id = $1`, [id])).rows[0];
      // jsonb arrives parsed (a JSON string); Redshift's VARCHAR holds the JSON text.
      const params = kind.name === 'redshift' ? JSON.parse(row.params) : row.params;
      expect(params).toBe('{"cut off": [1, 2');
      const text = row.content_summary as string;
      expect(text.startsWith('start é𝄞')).toBe(true);
      expect(text).not.toContain('\0');
      if (kind.name === 'redshift') {
        // Cut on a character boundary to fit 65535 bytes, and marked.
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(65535);
        expect(text.endsWith('…[truncated]')).toBe(true);
        expect(text).not.toContain('\uFFFD');
      } else {
        expect(text).toBe(huge.replace('\u0000', '\uFFFD'));
      }
    }
    expect(await count(W1)).toBe(12);
    await deliver(dest, { window: W1, parts: [r1] });
    expect(await count(W1)).toBe(40);
  });

  it('a malformed NDJSON line fails the load and changes nothing', async () => {
    const before = await snapshot();
    const broken = Buffer.concat([encode('jsonl', SCHEMA, r1.slice(20)), Buffer.from('{"timestamp": "2026-10-01T00:30:00.000Z", "request_id": \n')]);
    await expect(deliver(dest, { window: W1, parts: [r1.slice(0, 20), broken] })).rejects.toBeInstanceOf(CliError);
    expect(await snapshot()).toEqual(before);
    await deliver(dest, { window: W1, parts: [r1] });
    expect(await snapshot()).toEqual(before);
  });

  it('a connection killed during the commit rolls back', async () => {
    const before = await snapshot();
    // Hold a row of the window so the load's DELETE waits on it, mid-transaction.
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`SELECT 1 FROM public.${TABLE} WHERE request_id = $1 FOR UPDATE`, [r1[r1.length - 1]!.request_id]);
      const load = deliver(dest, { window: W1, parts: [records('w1', 40, W1).map((r) => ({ ...r, cost_usd: 7 }))] });
      load.catch(() => {});
      let pid: number | undefined;
      for (let i = 0; i < 200 && pid === undefined; i++) {
        const w = await admin.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`);
        pid = w.rows[0]?.pid;
        if (pid === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      expect(pid).toBeDefined();
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await expect(load).rejects.toMatchObject({ name: 'CliError', exitCode: 69 });
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      await locker.end();
    }
    expect(await snapshot()).toEqual(before);
    // A new session is opened for the next window.
    await deliver(dest, { window: W1, parts: [r1] });
    expect(await snapshot()).toEqual(before);
  });

  it('a new field becomes a new nullable column; nothing is dropped', async () => {
    const W3 = { start: W2.end, end: W2.end + HOUR };
    const schema: RecordSchema = [...SCHEMA.filter((f) => f.name !== 'provider'), { name: 'team_id', type: 'string', nullable: true }];
    const r3 = records('w3', 5, W3).map((r) => { const { provider: _p, ...rest } = r; return { ...rest, team_id: 'team-a' }; });
    await deliver(dest, { window: W3, parts: [r3], schema });
    const cols = (await admin.query(`SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`, [TABLE])).rows.map((c) => c.column_name);
    expect(cols).toEqual(expect.arrayContaining([...Object.keys(kind.types), 'team_id']));
    expect((await admin.query(`SELECT count(*)::int AS n FROM public.${TABLE} WHERE team_id IS NULL`)).rows[0].n).toBe(55);
    expect((await admin.query(`SELECT count(*)::int AS n FROM public.${TABLE} WHERE team_id = 'team-a' AND provider IS NULL`)).rows[0].n).toBe(5);
    expect(await count(W1)).toBe(40);
  });

  it('aggregated windows are tagged with window_start/window_end and replaced whole', async () => {
    const schema = AGG_SCHEMA;
    const agg = aggRows;
    const ag = await kind.make(url, 'logs_hourly');
    try {
      await deliver(ag, { window: W1, parts: [agg(1)], schema, aggregated: true });
      await deliver(ag, { window: W2, parts: [agg(2)], schema, aggregated: true });
      await deliver(ag, { window: W1, parts: [agg(3)], schema, aggregated: true });
      const rows = (await admin.query(`SELECT provider, total_requests::int AS n, total_cost, window_start, window_end FROM public.logs_hourly ORDER BY window_start, provider`)).rows;
      expect(rows.map((r) => [r.provider, r.n, r.total_cost, r.window_start.toISOString(), r.window_end.toISOString()])).toEqual([
        ['anthropic', 9, null, new Date(W1.start).toISOString(), new Date(W1.end).toISOString()],
        ['openai', 30, 4.5, new Date(W1.start).toISOString(), new Date(W1.end).toISOString()],
        ['anthropic', 6, null, new Date(W2.start).toISOString(), new Date(W2.end).toISOString()],
        ['openai', 20, 3, new Date(W2.start).toISOString(), new Date(W2.end).toISOString()],
      ]);
      const types = Object.fromEntries((await admin.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'logs_hourly'`)).rows.map((c) => [c.column_name, c.data_type]));
      expect(types).toMatchObject({ total_requests: 'bigint', total_cost: 'double precision', window_start: 'timestamp with time zone', window_end: 'timestamp with time zone' });
    } finally {
      await ag.close();
    }
  });

  it('check() against a closed port: CliError, exit 69', async () => {
    const d = await kind.make(url, TABLE, { port: await freePort() });
    try {
      const err = await d.check().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(69);
    } finally {
      await d.close();
    }
  });

  it('a wrong password: one line, exit 78, the password never shown', async () => {
    const secret = 'Sup3r-Secret-Pw!';
    await admin.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bl_user') THEN CREATE ROLE bl_user LOGIN PASSWORD 'right-one'; END IF; END $$`);
    const u = new URL(url);
    u.username = 'bl_user';
    u.password = secret;
    const d = await kind.make(u.toString(), TABLE, { password: secret });
    try {
      const err = await d.check().then(() => null, (e: unknown) => e);
      if (err === null) {
        // The server trusts local connections: no password is checked at all.
        const hba = (await admin.query(`SELECT count(*)::int AS n FROM pg_hba_file_rules WHERE auth_method = 'trust'`)).rows[0].n;
        expect(hba).toBeGreaterThan(0);
        return;
      }
      expect(err).toBeInstanceOf(CliError);
      const e = err as CliError;
      expect(e.exitCode).toBe(78);
      expect(e.message).not.toContain(secret);
      expect(e.message).not.toContain(encodeURIComponent(secret));
      expect(e.message.split('\n')).toHaveLength(1);
      expect(e.message).toMatch(/password|authentication/i);
    } finally {
      await d.close();
    }
  });
});

describe('postgres: killed session between staging and commit', () => {
  it('fails the commit and leaves the table as it was', async () => {
    const url = await server.createDatabase('wh_pg_kill');
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const dest = await createPostgresDestination({ url, schema: 'public', table: 't' }, env());
    try {
      await deliver(dest, { window: W1, parts: [records('a', 10, W1)] });
      const schema = SCHEMA;
      const up = await dest.openPart({ key: 'k1', kind: 'part', format: 'jsonl', contentType: 'application/x-ndjson', schema });
      await up.write(encode('jsonl', SCHEMA, records('b', 12, W1)));
      await up.finish();
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'bifrost-logs'`);
      await new Promise((r) => setTimeout(r, 100));
      const err = await dest.commit({ exportName: 'x', window: W1, manifestKey: 'm', manifestBytes: Buffer.alloc(0), parts: [{ key: 'k1', kind: 'part', rows: 12, bytes: 1, sha256: '' }], late: false, schema, aggregated: false }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(69);
      const ids = (await admin.query('SELECT request_id FROM public.t ORDER BY 1')).rows.map((r) => r.request_id);
      expect(ids).toEqual(records('a', 10, W1).map((r) => r.request_id));
      // The next window opens a new session.
      await deliver(dest, { window: W1, parts: [records('b', 12, W1)] });
      expect((await admin.query('SELECT count(*)::int AS n FROM public.t')).rows[0].n).toBe(12);
    } finally {
      await dest.close();
      await admin.end();
    }
  });
});

describe('warehouse SQL (no server)', () => {
  const ref = { schema: 'analytics', table: 'logs' };
  const raw = tableLayout(SCHEMA, false);
  const agg = tableLayout([{ name: 'provider', type: 'string', nullable: true }, { name: 'total_cost', type: 'double', nullable: true }], true);

  it('types per dialect', () => {
    expect(createTableSql(POSTGRES_DIALECT, ref, raw.columns)).toBe(
      'CREATE TABLE IF NOT EXISTS "analytics"."logs" ("timestamp" TIMESTAMPTZ, "request_id" TEXT, "provider" TEXT, "status_code" INTEGER, "input_tokens" INTEGER, "bytes_total" BIGINT, "cost_usd" DOUBLE PRECISION, "stream" BOOLEAN, "params" JSONB, "content_summary" TEXT)',
    );
    expect(createTableSql(redshiftDialect('SUPER'), ref, raw.columns)).toContain('"params" SUPER, "content_summary" VARCHAR(65535)');
    expect(createTableSql(redshiftDialect('VARCHAR(65535)'), ref, agg.columns)).toBe(
      'CREATE TABLE IF NOT EXISTS "analytics"."logs" ("provider" VARCHAR(65535), "total_cost" DOUBLE PRECISION, "window_start" TIMESTAMPTZ, "window_end" TIMESTAMPTZ)',
    );
    const add = [{ name: 'a', type: 'int32' as const }, { name: 'b', type: 'json' as const }];
    expect(addColumnsSql(POSTGRES_DIALECT, ref, add)).toEqual(['ALTER TABLE "analytics"."logs" ADD COLUMN IF NOT EXISTS "a" INTEGER, ADD COLUMN IF NOT EXISTS "b" JSONB']);
    expect(addColumnsSql(redshiftDialect('SUPER'), ref, add)).toEqual(['ALTER TABLE "analytics"."logs" ADD COLUMN "a" INTEGER', 'ALTER TABLE "analytics"."logs" ADD COLUMN "b" SUPER']);
    expect(() => tableLayout([{ name: 'window_start', type: 'string', nullable: true }], true)).toThrow(CliError);
    // --fields without timestamp: the window is tagged instead.
    expect(tableLayout(SCHEMA.filter((f) => f.name !== 'timestamp'), false).mode).toBe('tagged');
  });

  it('window deletes', () => {
    expect(deleteWindowSql(POSTGRES_DIALECT, ref, 'timestamp', W1)).toEqual({ text: 'DELETE FROM "analytics"."logs" WHERE "timestamp" >= $1::timestamptz AND "timestamp" < $2::timestamptz', values: ['2026-10-01T00:00:00.000Z', '2026-10-01T01:00:00.000Z'] });
    expect(deleteWindowSql(POSTGRES_DIALECT, ref, 'tagged', W1).text).toBe('DELETE FROM "analytics"."logs" WHERE "window_start" = $1::timestamptz AND "window_end" = $2::timestamptz');
  });

  it('postgres INSERT … SELECT from the stage', () => {
    const late = pgInsertSql(ref, raw, { late: true, window: W1 }, [1, 2]);
    expect(late.text).toMatch(/FROM pg_temp\.bifrost_logs_stage s CROSS JOIN LATERAL jsonb_populate_record\(NULL::"analytics"\."logs", s\.doc\) r WHERE s\.part = ANY\(\$1::integer\[\]\) ON CONFLICT \("request_id"\) DO NOTHING$/);
    expect(late.values).toEqual([[1, 2]]);
    expect(pgInsertSql(ref, raw, { late: false, window: W1 }, [3]).text).toContain('ON CONFLICT ("request_id") DO UPDATE SET "timestamp" = EXCLUDED."timestamp"');
    const a = pgInsertSql(ref, agg, { late: false, window: W1 }, [4]);
    expect(a.text).toBe('INSERT INTO "analytics"."logs" ("provider", "total_cost", "window_start", "window_end") SELECT r."provider", r."total_cost", $1::timestamptz, $2::timestamptz FROM pg_temp.bifrost_logs_stage s CROSS JOIN LATERAL jsonb_populate_record(NULL::"analytics"."logs", s.doc) r WHERE s.part = ANY($3::integer[])');
    expect(a.values).toEqual(['2026-10-01T00:00:00.000Z', '2026-10-01T01:00:00.000Z', [4]]);
  });

  it('NUL escapes become U+FFFD, whatever the chunking; escaped backslashes are left alone', () => {
    const lines = [{ a: 'x\u0000y', b: '\\u0000', c: '\\\u0000', d: ['\u0000'] }, { e: 'plain' }].map((r) => JSON.stringify(r) + '\n').join('');
    const want = lines.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd');
    expect(want).not.toBe(lines);
    expect(JSON.parse(want.split('\n')[0]!)).toEqual({ a: 'x\uFFFDy', b: '\\u0000', c: '\\\uFFFD', d: ['\uFFFD'] });
    const buf = Buffer.from(lines);
    for (let cut = 0; cut <= buf.length; cut++) {
      for (const size of [1, 3, 1000]) {
        const s = createNulScrubber();
        const out: Buffer[] = [s.push(buf.subarray(0, cut))];
        for (let i = cut; i < buf.length; i += size) out.push(s.push(buf.subarray(i, i + size)));
        out.push(s.end());
        expect(Buffer.concat(out).toString()).toBe(want);
      }
    }
  });

  it('redshift endpoint rule', () => {
    expect(redshiftHost({ host: 'h.example' })).toBe('h.example');
    expect(redshiftHost({ cluster: 'examplecluster.abc123xyz789', region: 'us-west-2' })).toBe('examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com');
    expect(redshiftHost({ cluster: 'c.x.eu-west-1.redshift.amazonaws.com' })).toBe('c.x.eu-west-1.redshift.amazonaws.com');
    expect(() => redshiftHost({ cluster: 'examplecluster', region: 'us-west-2' })).toThrow(/unique id/);
    expect(() => redshiftHost({ cluster: 'a.b' })).toThrow(/region/);
    expect(() => redshiftHost({})).toThrow(CliError);
  });

  it('redshift INSERT batches stay under the parameter limit', () => {
    expect(rowsPerInsert(500, 10)).toBe(500);
    expect(rowsPerInsert(500, 100)).toBe(327);
    expect(rowsPerInsert(500, 40_000)).toBe(1);
    expect(insertValuesSql('"s"."t"', agg, 2)).toBe('INSERT INTO "s"."t" ("provider", "total_cost", "window_start", "window_end") VALUES ($3, $4, $1::timestamptz, $2::timestamptz), ($5, $6, $1::timestamptz, $2::timestamptz)');
    const jsonLayout = tableLayout([{ name: 'timestamp', type: 'timestamp', nullable: false }, { name: 'request_id', type: 'string', nullable: true }, { name: 'params', type: 'json', nullable: true }], false);
    expect(insertValuesSql('"s"."t"', jsonLayout, 2, new Set(['params']))).toBe('INSERT INTO "s"."t" ("timestamp", "request_id", "params") VALUES ($1, $2, JSON_PARSE($3)), ($4, $5, JSON_PARSE($6))');
    expect(insertFromStageSql(redshiftDialect('SUPER'), { target: ref, stage: '"bifrost_logs_late"', layout: jsonLayout, window: W1, late: true, windowFromStage: true }).text).toBe(
      'INSERT INTO "analytics"."logs" ("timestamp", "request_id", "params") SELECT s."timestamp", s."request_id", s."params" FROM "bifrost_logs_late" s WHERE NOT EXISTS (SELECT 1 FROM "analytics"."logs" x WHERE x."request_id" = s."request_id")',
    );
  });

  it('redshift staged COPY from S3', () => {
    const obj = { bucket: 'stage-bkt', key: "pre/_bifrost_logs_staging/abc/exp/o'k.jsonl" };
    const o = { iamRole: 'arn:aws:iam::123456789012:role/RedshiftCopy', region: 'eu-west-1' };
    expect(redshiftCopySql('"analytics"."logs"', agg.recordColumns, obj, o)).toBe(
      `COPY "analytics"."logs" ("provider", "total_cost") FROM 's3://stage-bkt/pre/_bifrost_logs_staging/abc/exp/o''k.jsonl' IAM_ROLE 'arn:aws:iam::123456789012:role/RedshiftCopy' FORMAT AS JSON 'auto ignorecase' TIMEFORMAT 'auto' TRUNCATECOLUMNS REGION 'eu-west-1'`,
    );
    // Raw window: COPY straight into the table (the window was deleted before).
    const direct = stagedLoadStatements(ref, raw, { late: false, window: W1 }, [obj, { ...obj, key: 'k2' }], o);
    expect(direct).toHaveLength(2);
    expect(direct[0]!.text).toMatch(/^COPY "analytics"\."logs" \("timestamp", "request_id", .*"content_summary"\) FROM 's3:\/\/stage-bkt\//);
    expect(direct[1]!.text).toContain("FROM 's3://stage-bkt/k2'");
    // Late: through a TEMP stage, skipping known request_ids.
    const late = stagedLoadStatements(ref, raw, { late: true, window: W1 }, [obj], { iamRole: o.iamRole });
    expect(late.map((s) => s.text.split(' (')[0])).toEqual(['CREATE TEMP TABLE "bifrost_logs_stage"', 'COPY "bifrost_logs_stage"', 'INSERT INTO "analytics"."logs"', 'DROP TABLE "bifrost_logs_stage"']);
    expect(late[0]!.text).toBe('CREATE TEMP TABLE "bifrost_logs_stage" (LIKE "analytics"."logs")');
    expect(late[1]!.text).not.toContain('REGION');
    expect(late[2]!.text).toContain('WHERE NOT EXISTS (SELECT 1 FROM "analytics"."logs" x WHERE x."request_id" = s."request_id")');
    // Aggregated: through the stage, tagged with the window.
    const a = stagedLoadStatements(ref, agg, { late: false, window: W1 }, [obj], o);
    expect(a[2]).toEqual({
      text: 'INSERT INTO "analytics"."logs" ("provider", "total_cost", "window_start", "window_end") SELECT s."provider", s."total_cost", $1::timestamptz, $2::timestamptz FROM "bifrost_logs_stage" s',
      values: ['2026-10-01T00:00:00.000Z', '2026-10-01T01:00:00.000Z'],
    });
    expect(stagedLoadStatements(ref, raw, { late: false, window: W1 }, [], o)).toEqual([]);
  });
});
