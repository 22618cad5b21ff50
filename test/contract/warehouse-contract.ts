// The fakes first: they switch the SDKs' cloud-metadata probes off before the SDKs load.
import '../fakes/snowflake-server.js';
import '../fakes/bigquery-server.js';
import type { FakeSnowflake } from '../fakes/snowflake-server.js';
import type { FakeBigQuery } from '../fakes/bigquery-server.js';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CliError } from '../../src/errors.js';
import type { RecordSchema } from '../../src/record/fields.js';
import type { Destination } from '../../src/destination/types.js';
import { createSnowflakeDestination } from '../../src/destination/snowflake/index.js';
import { createBigQueryDestination, normalizeBqType } from '../../src/destination/bigquery/index.js';
import { createFakeServiceAccount } from '../fakes/gcs-server.js';
import type { SnowflakeConfig } from '../../src/destination/snowflake/schema.js';
import type { BigQueryConfig } from '../../src/destination/bigquery/schema.js';


/**
 * One contract body over every warehouse, each driven through its real
 * driver: `postgres` (embedded PostgreSQL), `redshift` (its PostgreSQL-wire
 * INSERT path, against the same embedded PostgreSQL: its SQL must be what
 * both servers accept), `bigquery` (@google-cloud/bigquery against
 * test/fakes/bigquery-server) and `snowflake` (snowflake-sdk against
 * test/fakes/snowflake-server). With WAREHOUSE_LIVE=1 and an account's
 * variables set (see test/live) the same body also runs against the real
 * cloud services. Cases that need more than rows and types (a server to
 * lock and kill sessions on, recorded statements, injected failures) run
 * where the harness offers it.
 */

export * from './warehouse-data.js';
import { AGG_SCHEMA, aggRows, encode, SCHEMA, W1, W2, W3, records as baseRecords, decodePart, deliver, silentLog, type Rec } from './warehouse-data.js';

/** A row as the contract compares them: lower-case names, timestamps as ISO text, JSON parsed. */
export type Row = Record<string, unknown>;

/** What the body needs from a warehouse (a fake, a local server, or a live account). */
export interface Harness {
  readonly name: 'bigquery' | 'snowflake' | 'redshift' | 'postgres';
  /** The table's column types, lower-case name → the warehouse's type name. */
  readonly expectedTypes: Record<string, string>;
  /** Types the aggregated table's columns must have, where the harness knows them. */
  readonly aggTypes?: Record<string, string>;
  /** The records carry NUL characters (in text and inside JSON), which PostgreSQL-wire tables cannot hold. */
  readonly nul?: boolean;
  /** A record as the table stores it (U+0000 replaced, where it is). */
  stored?(r: Rec): Rec;
  make(table: string, over?: Record<string, unknown>): Promise<Destination>;
  /** Rows of a table, normalised, ordered by request_id (or as stored). */
  rows(table: string): Promise<Row[]>;
  /** Column types (lower-case name → type), empty when the table does not exist. */
  types(table: string): Promise<Record<string, string>>;
  /** Tables the check/loads may have left behind (besides the targets). */
  leftovers(): Promise<string[]>;
  /** A record with a value the warehouse refuses (the part still encodes), where one exists. */
  spoil?(r: Rec): Rec;
  readonly fake?: FakeHooks;
  /** A PostgreSQL-wire server the body can query, lock and kill sessions on. */
  readonly sql?: SqlHooks;
  cleanup?(tables: string[]): Promise<void>;
}

/** What only a fake can do: show what it received, fail on demand. */
export interface FakeHooks {
  /** Fails the next statement / job whose SQL (or load) matches. */
  failNext(what: 'load' | RegExp): void;
  /** The SQL text received so far (statements or query jobs), in order. */
  sql(): string[];
  /** The rows the warehouse received since the last call (uploaded files or bound rows), decoded here. */
  loaded(): Promise<Rec[]>;
  /** Wrong-credential config overrides, and the secret that must not show. */
  badCredentials(): { over: Record<string, unknown>; secret: string };
  /** An endpoint that refuses connections. */
  unreachable(): Record<string, unknown>;
}

/** A PostgreSQL-wire warehouse on a local server. */
export interface SqlHooks {
  readonly kind: 'postgres' | 'redshift';
  /** The database's URL (the destination's own credentials). */
  url(): string;
  /** A second session on the same database. */
  admin(): pg.Client;
  /** Every column of the table is nullable. */
  allNullable(table: string): Promise<boolean>;
  /** Every table in the target schema. */
  tables(): Promise<string[]>;
  /** Config overrides for a closed port. */
  closedPort(): Promise<Record<string, unknown>>;
}

export const isoOf = (v: unknown): unknown => (v instanceof Date ? v.toISOString() : v);
export const parseMaybe = (v: unknown): unknown => {
  if (typeof v !== 'string') return v;
  try { return JSON.parse(v); } catch { return v; }
};

export function contract(h: Harness): void {
  const TABLE = `bl_contract_${h.name}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const AGG = `${TABLE}_hourly`;
  let dest: Destination;
  const records = (tag: string, n: number, w: { start: number; end: number }) => baseRecords(tag, n, w, { nul: h.nul });
  const stored = (r: Rec) => (h.stored ? h.stored(r) : r);
  const r1 = records('w1', 40, W1);
  const r2 = records('w2', 15, W2);

  const inWindow = (rows: Row[], w: { start: number; end: number }) => rows.filter((r) => { const t = Date.parse(String(r.timestamp)); return t >= w.start && t < w.end; });
  const ids = (rows: Row[]) => rows.map((r) => String(r.request_id)).sort();
  const snapshot = async () => (await h.rows(TABLE)).map((r) => ({ request_id: r.request_id, timestamp: r.timestamp, cost_usd: r.cost_usd, input_tokens: r.input_tokens, content_summary: r.content_summary }))
    .sort((a, b) => String(a.request_id).localeCompare(String(b.request_id)));

  /** check() of a destination that cannot reach its server: CliError, exit 69. */
  const checkUnavailable = async (over: Record<string, unknown>) => {
    const d = await h.make(TABLE, over);
    try {
      const err = await d.check().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(69);
    } finally {
      await d.close();
    }
  };

  beforeAll(async () => {
    dest = await h.make(TABLE);
  });
  afterAll(async () => {
    await dest?.close();
    await h.cleanup?.([TABLE, AGG]);
  });

  it('check() passes and leaves nothing behind', async () => {
    await dest.check();
    expect(await h.types(TABLE)).toEqual({});
    expect(await h.leftovers()).toEqual([]);
    if (h.sql) expect(await h.sql.tables()).toEqual([]);
  });

  it('creates a typed table from the schema and loads a window', async () => {
    await deliver(dest, { window: W1, parts: [r1.slice(0, 25), r1.slice(25)] });
    expect(await h.types(TABLE)).toEqual(h.expectedTypes);
    if (h.sql) expect(await h.sql.allNullable(TABLE)).toBe(true);
    const rows = await h.rows(TABLE);
    expect(ids(rows)).toEqual(ids(r1));
    const by = new Map(rows.map((r) => [r.request_id, r]));
    // Values survive untouched: quotes, backslashes, control characters, nested JSON, nulls, timestamps to the ms.
    for (const want of r1.map(stored)) {
      const got = by.get(want.request_id)!;
      expect(got.timestamp, String(want.request_id)).toBe(want.timestamp);
      expect(got.content_summary).toBe(want.content_summary);
      expect(parseMaybe(got.params)).toEqual(want.params);
      expect(got.status_code === null ? null : Number(got.status_code)).toBe(want.status_code);
      expect(Number(got.input_tokens)).toBe(want.input_tokens);
      expect(String(got.bytes_total)).toBe(String(want.bytes_total));
      expect(got.cost_usd === null ? null : Number(got.cost_usd)).toBe(want.cost_usd);
      expect(got.stream).toBe(want.stream);
    }
    const sum = (f: (r: Row) => number) => rows.reduce((a, r) => a + f(r), 0);
    expect(sum((r) => Number(r.cost_usd ?? 0))).toBeCloseTo(r1.reduce((a, r) => a + ((r.cost_usd as number | null) ?? 0), 0), 9);
    expect(sum((r) => Number(r.input_tokens))).toBe(r1.reduce((a, r) => a + (r.input_tokens as number), 0));
    expect(String(rows.reduce((a, r) => a + BigInt(String(r.bytes_total)), 0n))).toBe(String(r1.reduce((a, r) => a + BigInt(r.bytes_total as number), 0n)));
    expect(rows.filter((r) => r.stream === true)).toHaveLength(r1.filter((r) => r.stream === true).length);
    if (h.nul) {
      // U+0000, which PostgreSQL text and jsonb refuse, arrives as U+FFFD instead of failing the window.
      expect(by.get('w1-0002')!.content_summary).toBe('nul\uFFFDhere');
      expect(String((parseMaybe(by.get('w1-0002')!.params) as { nested: { z: string } }).nested.z).replace('\0', '\uFFFD')).toBe('x\uFFFDy');
    }
    expect(await dest.countWindow!(W1)).toBe(40);
    expect(await dest.countWindow!(W2)).toBe(0);
    expect(await h.leftovers()).toEqual([]);
  });

  it('re-loading a window leaves exactly its rows; other windows untouched', async () => {
    await deliver(dest, { window: W2, parts: [r2] });
    await deliver(dest, { window: W1, parts: [r1.slice(0, 25), r1.slice(25)] });
    let rows = await h.rows(TABLE);
    expect(ids(inWindow(rows, W1))).toEqual(ids(r1));
    expect(ids(inWindow(rows, W2))).toEqual(ids(r2));
    expect(rows).toHaveLength(55);
    // The window now has fewer rows (deleted upstream): the table follows.
    await deliver(dest, { window: W1, parts: [r1.slice(0, 30)] });
    expect(inWindow(await h.rows(TABLE), W1)).toHaveLength(30);
    await deliver(dest, { window: W1, parts: [r1.slice(0, 25), r1.slice(25)] });
    expect(inWindow(await h.rows(TABLE), W1)).toHaveLength(40);
    expect(await h.rows(TABLE)).toHaveLength(55);
    // An empty window still clears what was there.
    await deliver(dest, { window: W2, parts: [] });
    rows = await h.rows(TABLE);
    expect(inWindow(rows, W2)).toHaveLength(0);
    expect(ids(rows)).toEqual(ids(r1));
    await deliver(dest, { window: W2, parts: [r2] });
    expect(inWindow(await h.rows(TABLE), W2)).toHaveLength(15);
    expect(await dest.countWindow!(W2)).toBe(15);
  });

  it('a late part adds only request_ids not yet present', async () => {
    const before = await snapshot();
    const known = r1.slice(0, 3).map((r) => ({ ...r, cost_usd: 99 }));
    const fresh = records('w1late', 4, W1);
    // The PostgreSQL-wire warehouses also meet a request_id twice within the late load.
    const again = h.sql ? [fresh[0]!] : [];
    await deliver(dest, { window: W1, late: true, parts: [[...known, fresh[0]!, fresh[1]!], [fresh[2]!, fresh[3]!, ...again]] });
    const after = await snapshot();
    expect(after).toHaveLength(before.length + 4);
    expect(await dest.countWindow!(W1)).toBe(44);
    // Rows already delivered are left as they were.
    for (const b of before) expect(after.find((a) => a.request_id === b.request_id)).toEqual(b);
    expect(after.filter((a) => String(a.request_id).startsWith('w1late-'))).toHaveLength(4);
    // A late run with nothing is a no-op.
    await deliver(dest, { window: W1, late: true, parts: [] });
    expect(await dest.countWindow!(W1)).toBe(44);
    // The next full delivery of the window restores exactly the window's rows.
    await deliver(dest, { window: W1, parts: [r1] });
    expect(await dest.countWindow!(W1)).toBe(40);
  });

  it('a request_id already in another window: the table holds it once, the newest load wins', async () => {
    const before = await snapshot();
    const id = r1[5]!.request_id;
    const moved = { ...r1[5]!, timestamp: new Date(W2.start + 1234).toISOString(), cost_usd: 42 };
    await deliver(dest, { window: W2, parts: [[...r2.slice(0, 8), moved], r2.slice(8)] });
    let rows = (await h.rows(TABLE)).filter((r) => r.request_id === id);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.timestamp).toBe(moved.timestamp);
    expect(Number(rows[0]!.cost_usd)).toBe(42);
    expect(await dest.countWindow!(W1)).toBe(39);
    expect(await dest.countWindow!(W2)).toBe(16);
    // Delivering the first window again takes the request_id back.
    await deliver(dest, { window: W1, parts: [r1] });
    rows = (await h.rows(TABLE)).filter((r) => r.request_id === id);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.timestamp).toBe(r1[5]!.timestamp);
    expect(await dest.countWindow!(W1)).toBe(40);
    expect(await dest.countWindow!(W2)).toBe(15);
    expect(await snapshot()).toEqual(before);
  });

  it('JSON that is not JSON (a malformed cell, exported as its text) is kept as text; the window loads', async () => {
    const odd = records('w1', 40, W1).map((r, i) => (i === 7 ? { ...r, params: '{"truncated": [1, 2' } : i === 8 ? { ...r, params: 'plain text' } : r));
    await deliver(dest, { window: W1, parts: [odd] });
    const rows = await h.rows(TABLE);
    expect(rows.find((r) => r.request_id === odd[7]!.request_id)!.params).toBe('{"truncated": [1, 2');
    expect(parseMaybe(rows.find((r) => r.request_id === odd[8]!.request_id)!.params)).toBe('plain text');
    expect(parseMaybe(rows.find((r) => r.request_id === odd[9]!.request_id)!.params)).toEqual(odd[9]!.params);
    await deliver(dest, { window: W1, parts: [r1] });
  });

  it('poison values (a malformed JSON cell, a 200 KB multi-byte message with a NUL) never fail a window, full or late', async () => {
    // 'é' is 2 bytes and '𝄞' 4 in UTF-8: 200 KB of them is far over Redshift's 65535-byte VARCHAR.
    const huge = `start ${'é𝄞'.repeat(34_000)}\u0000 end`;
    const poison = (tag: string) => records(tag, 6, W1).map((r, i) => (i === 3 ? { ...r, params: '{"cut off": [1, 2', content_summary: huge } : r));
    const full = poison('pz');
    const late = poison('pzlate');
    const changed = [await deliver(dest, { window: W1, parts: [full] }), await deliver(dest, { window: W1, late: true, parts: [late] })];
    if (h.sql) {
      // What a load had to change is counted for the manifest's warnings: every NUL character replaced (on Redshift
      // only text columns hold them as characters; its JSON text keeps the escape), and on Redshift the value cut to fit.
      const nuls = (v: unknown): number => (typeof v === 'string' ? v.split('\0').length - 1 : v && typeof v === 'object' ? Object.values(v).reduce((a: number, x) => a + nuls(x), 0) : 0);
      const want = (rs: Rec[]) => rs.reduce((a, r) => a + (h.sql!.kind === 'redshift' ? nuls(r.content_summary) : nuls(r)), 0);
      expect(changed[0]?.warnings).toEqual({ nul_replaced: want(full), ...(h.sql.kind === 'redshift' ? { text_truncated: 1 } : {}) });
      expect(changed[1]?.warnings).toEqual({ nul_replaced: want(late), ...(h.sql.kind === 'redshift' ? { text_truncated: 1 } : {}) });
    }
    const rows = await h.rows(TABLE);
    for (const id of ['pz-0003', 'pzlate-0003']) {
      const row = rows.find((r) => r.request_id === id)!;
      expect(row, id).toBeDefined();
      expect(parseMaybe(row.params) === '{"cut off": [1, 2' || row.params === '{"cut off": [1, 2').toBe(true);
      const text = String(row.content_summary);
      expect(text.startsWith('start é𝄞é𝄞')).toBe(true);
      if (h.sql) {
        // jsonb arrives parsed (a JSON string); Redshift's VARCHAR holds the JSON text (parsed by the harness).
        expect(row.params).toBe('{"cut off": [1, 2');
        expect(text).not.toContain('\0');
      }
      if (h.sql?.kind === 'redshift') {
        // Cut on a character boundary to fit 65535 bytes, and marked.
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(65535);
        expect(text.endsWith('…[truncated]')).toBe(true);
        expect(text).not.toContain('\uFFFD');
      } else {
        expect(text.endsWith(' end')).toBe(true);
        if (h.sql) expect(text).toBe(huge.replace('\u0000', '\uFFFD'));
      }
    }
    expect(inWindow(rows, W1)).toHaveLength(12);
    await deliver(dest, { window: W1, parts: [r1] });
    expect(await dest.countWindow!(W1)).toBe(40);
  });

  const spoil = h.spoil?.bind(h);
  if (spoil) it('a value that does not fit its column fails the load and changes nothing', async () => {
    const before = await snapshot();
    const bad = records('w1', 40, W1).map((r, i) => (i === 35 ? spoil(r) : r));
    const err = await deliver(dest, { window: W1, parts: [bad.slice(0, 20), bad.slice(20)] }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(65);
    expect((err as CliError).message.split('\n')).toHaveLength(1);
    expect(await snapshot()).toEqual(before);
    expect(await h.leftovers()).toEqual([]);
    // The destination is still usable afterwards.
    await deliver(dest, { window: W1, parts: [r1] });
    expect(await snapshot()).toEqual(before);
  });

  const sql = h.sql;
  if (sql) {
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
      const admin = sql.admin();
      // Hold a row of the window so the load's DELETE waits on it, mid-transaction.
      const locker = new pg.Client({ connectionString: sql.url() });
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
  }

  it('a new field becomes a new nullable column; nothing is dropped', async () => {
    const schema: RecordSchema = [...SCHEMA.filter((f) => f.name !== 'provider'), { name: 'team_id', type: 'string', nullable: true }];
    const r3 = records('w3', 5, W3).map((r) => { const { provider: _p, ...rest } = r; return { ...rest, team_id: 'team-a' }; });
    await deliver(dest, { window: W3, parts: [r3], schema });
    const types = await h.types(TABLE);
    expect(Object.keys(types).sort()).toEqual([...Object.keys(h.expectedTypes), 'team_id'].sort());
    const rows = await h.rows(TABLE);
    expect(rows.filter((r) => r.team_id === null || r.team_id === undefined)).toHaveLength(55);
    expect(rows.filter((r) => r.team_id === 'team-a' && (r.provider === null || r.provider === undefined))).toHaveLength(5);
    expect(await dest.countWindow!(W1)).toBe(40);
  });

  it('aggregated windows are tagged with window_start/window_end and replaced whole', async () => {
    const schema = AGG_SCHEMA;
    const agg = aggRows;
    const ag = await h.make(AGG);
    try {
      await deliver(ag, { window: W1, parts: [agg(1)], schema, aggregated: true });
      await deliver(ag, { window: W2, parts: [agg(2)], schema, aggregated: true });
      await deliver(ag, { window: W1, parts: [agg(3)], schema, aggregated: true });
      const rows = (await h.rows(AGG)).map((r) => [r.provider, Number(r.total_requests), r.total_cost === null ? null : Number(r.total_cost), r.window_start, r.window_end]);
      rows.sort((a, b) => `${a[3]}${a[0]}`.localeCompare(`${b[3]}${b[0]}`));
      const iso = (ms: number) => new Date(ms).toISOString();
      expect(rows).toEqual([
        ['anthropic', 9, null, iso(W1.start), iso(W1.end)],
        ['openai', 30, 4.5, iso(W1.start), iso(W1.end)],
        ['anthropic', 6, null, iso(W2.start), iso(W2.end)],
        ['openai', 20, 3, iso(W2.start), iso(W2.end)],
      ]);
      const types = await h.types(AGG);
      expect(Object.keys(types).sort()).toEqual(['provider', 'total_cost', 'total_requests', 'window_end', 'window_start']);
      if (h.aggTypes) expect(types).toMatchObject(h.aggTypes);
      expect(await ag.countWindow!({ start: W1.start, end: W2.end })).toBe(4);
    } finally {
      await ag.close();
    }
  });

  if (sql) {
    it('check() against a closed port: CliError, exit 69', async () => checkUnavailable(await sql.closedPort()));

    it('a wrong password: one line, exit 78, the password never shown', async () => {
      const secret = 'Sup3r-Secret-Pw!';
      const admin = sql.admin();
      await admin.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bl_user') THEN CREATE ROLE bl_user LOGIN PASSWORD 'right-one'; END IF; END $$`);
      const u = new URL(sql.url());
      u.username = 'bl_user';
      u.password = secret;
      const d = await h.make(TABLE, { url: u.toString(), user: 'bl_user', password: secret });
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
  }

  const f = h.fake;
  if (!f) return;

  it('a failure mid-load (a load or the transaction) leaves the table exactly as it was', async () => {
    const before = await snapshot();
    const changed = records('w1', 40, W1).map((r) => ({ ...r, cost_usd: 7 }));
    f.failNext('load');
    let err = await deliver(dest, { window: W1, parts: [changed.slice(0, 20), changed.slice(20)] }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(65);
    expect(await snapshot()).toEqual(before);
    f.failNext(/^\s*INSERT INTO .* SELECT/is);
    err = await deliver(dest, { window: W1, parts: [changed.slice(0, 20), changed.slice(20)] }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect(await snapshot()).toEqual(before);
    expect(await h.leftovers()).toEqual([]);
    // And the next delivery goes through.
    await deliver(dest, { window: W1, parts: [changed] });
    expect((await snapshot()).filter((r) => r.cost_usd === 7)).toHaveLength(40);
    await deliver(dest, { window: W1, parts: [r1] });
    expect(await snapshot()).toEqual(before);
  });

  it('the loads carry exactly the parts\' rows', async () => {
    await f.loaded();
    await deliver(dest, { window: W2, parts: [r2.slice(0, 6), r2.slice(6)] });
    const rows = await f.loaded();
    expect(rows.map((r) => r.request_id).sort()).toEqual(r2.map((r) => r.request_id).sort());
    const one = rows.find((r) => r.request_id === r2[1]!.request_id)!;
    expect(parseMaybe(one.params)).toEqual(r2[1]!.params);
  });

  it('a wrong credential: one line, exit 78, the secret never shown', async () => {
    const { over, secret } = f.badCredentials();
    const d = await h.make(TABLE, over);
    try {
      const err = await d.check().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(CliError);
      const e = err as CliError;
      expect(e.exitCode).toBe(78);
      expect(e.message.split('\n')).toHaveLength(1);
      expect(e.message).not.toContain(secret);
    } finally {
      await d.close();
    }
  });

  it('an unreachable endpoint: CliError, exit 69', () => checkUnavailable(f.unreachable()), 120_000);
}

// ---------------------------------------------------------------------------------------------------
// Snowflake

export const SF_PASSWORD = 'Sf-Secret-Pw-3141!';
export const SF_DB = 'BL_TEST';
export const SF_SCHEMA = 'PUBLIC';

export const SF_TYPES = {
  timestamp: 'TIMESTAMP_TZ', request_id: 'TEXT', provider: 'TEXT', status_code: 'NUMBER', input_tokens: 'NUMBER',
  bytes_total: 'NUMBER', cost_usd: 'FLOAT', stream: 'BOOLEAN', params: 'VARIANT', content_summary: 'TEXT',
};

export function snowflakeRowsOf(rows: Record<string, unknown>[]): Row[] {
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k.toLowerCase(), isoOf(v)])))
    .sort((a, b) => String(a.request_id ?? '').localeCompare(String(b.request_id ?? '')));
}

export function fakeSnowflakeHarness(get: () => FakeSnowflake, tmp: () => string): Harness {
  let seenStatements = 0;
  const table = (name: string) => get().tables.get(`${SF_DB}.${SF_SCHEMA}.${name.toUpperCase()}`);
  const config = (t: string, over: Record<string, unknown> = {}): SnowflakeConfig => ({
    account: get().connectionOptions.account, access_url: get().connectionOptions.accessUrl,
    database: SF_DB, schema: SF_SCHEMA, table: t, warehouse: 'BL_WH', role: 'BL_ROLE',
    credentials: { username: 'loader', password: SF_PASSWORD }, insert_max_rows: 30,
    ...over,
  } as SnowflakeConfig);
  return {
    name: 'snowflake',
    expectedTypes: SF_TYPES,
    make: (t, over) => createSnowflakeDestination(config(t, over), { log: silentLog, tmpDir: tmp() }),
    rows: async (t) => snowflakeRowsOf(table(t)?.rows ?? []),
    types: async (t) => Object.fromEntries((table(t)?.columns ?? []).map((c) => [c.name.toLowerCase(), c.type.replace(/\(.*$/, '').replace(/^(VARCHAR|STRING)$/, 'TEXT').replace(/^INTEGER$/, 'NUMBER')])),
    leftovers: async () => [
      ...[...get().tables.keys()].filter((k) => /__(STAGE|CHECK)_/i.test(k)),
      ...[...get().stagedFiles.keys()],
    ],
    fake: {
      failNext(what) {
        if (what === 'load') get().failWhen(/^\s*(INSERT INTO \S+__STAGE_\S+ .*VALUES|COPY INTO)/is, { code: '100038', sqlState: '22018', message: 'Numeric value \'x\' is not recognized' }, 1);
        else get().failWhen(what, { code: '000630', sqlState: '57014', message: 'Statement reached its statement or warehouse timeout of 1 second(s) and was canceled.' }, 1);
      },
      sql() {
        return get().statements.map((s) => s.sql);
      },
      async loaded() {
        // Rows bound to array INSERTs into the stage (the PUT path has its own test, which decodes the files).
        const st = get().statements.slice(seenStatements).filter((x) => !x.error);
        seenStatements = get().statements.length;
        const out: Rec[] = [];
        for (const x of st) {
          const m = /^INSERT INTO \S+__STAGE_\w+ \((.*)\) VALUES/s.exec(x.sql);
          if (!m) continue;
          const cols = m[1]!.split(',').map((c) => c.trim().replace(/^"|"$/g, '').toLowerCase());
          const rows = (Array.isArray(x.binds?.[0]) ? x.binds : [x.binds]) as unknown[][];
          for (const b of rows) out.push(Object.fromEntries(cols.map((c, i) => [c, b[i]])));
        }
        return out;
      },
      badCredentials: () => ({ over: { credentials: { username: 'loader', password: 'Wrong-Pw-2718!' } }, secret: 'Wrong-Pw-2718!' }),
      unreachable: () => ({ access_url: 'http://127.0.0.1:9' }),
    },
  };
}


// ---------------------------------------------------------------------------------------------------
// BigQuery

export const BQ_DATASET = 'bl_test';
export const BQ_TYPES = {
  timestamp: 'TIMESTAMP', request_id: 'STRING', provider: 'STRING', status_code: 'INT64', input_tokens: 'INT64',
  bytes_total: 'INT64', cost_usd: 'FLOAT64', stream: 'BOOL', params: 'JSON', content_summary: 'STRING',
};
export const TS_COLUMNS = new Set(['timestamp', 'window_start', 'window_end']);

export function bigqueryRowsOf(rows: Record<string, unknown>[]): Row[] {
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, TS_COLUMNS.has(k) && typeof v === 'string' ? new Date(v).toISOString() : v])))
    .sort((a, b) => String(a.request_id ?? '').localeCompare(String(b.request_id ?? '')));
}

export function fakeBigQueryHarness(get: () => FakeBigQuery, tmp: () => string, format: 'jsonl' | 'parquet'): Harness {
  let seenUploads = 0;
  const table = (name: string) => get().tables.get(`${BQ_DATASET}.${name}`);
  const config = (t: string, over: Record<string, unknown> = {}): BigQueryConfig => ({
    project_id: get().projectId, dataset: BQ_DATASET, table: t, api_endpoint: get().apiEndpoint, load_format: format,
    credentials: { service_account_key: JSON.stringify(get().credentials) },
    ...over,
  } as BigQueryConfig);
  return {
    name: 'bigquery',
    expectedTypes: format === 'parquet' ? { ...BQ_TYPES, params: 'STRING' } : BQ_TYPES,
    make: (t, over) => createBigQueryDestination(config(t, over), { log: silentLog, tmpDir: tmp() }),
    rows: async (t) => bigqueryRowsOf(table(t)?.rows ?? []),
    types: async (t) => Object.fromEntries((table(t)?.schema.fields ?? []).map((f) => [f.name, normalizeBqType(f.type)])),
    leftovers: async () => [...get().tables.keys()].filter((k) => k.includes('__stage_')),
    // NDJSON: a number that is not one fails the load job (typed Parquet cannot carry one).
    ...(format === 'jsonl' ? { spoil: (r: Rec) => ({ ...r, input_tokens: 'not a number' }) } : {}),
    fake: {
      failNext(what) {
        if (what === 'load') get().failNext('load', { reason: 'invalid', message: 'Error while reading data, error message: injected' });
        else get().failNext(what, { reason: 'invalidQuery', message: 'Query error: injected failure at [3:1]' });
      },
      sql: () => get().queries,
      async loaded() {
        const ups = get().uploads.slice(seenUploads);
        seenUploads = get().uploads.length;
        return (await Promise.all(ups.map(decodePart))).flat();
      },
      badCredentials() {
        const other = createFakeServiceAccount(get().projectId, 'https://oauth2.googleapis.com/token').key;
        return { over: { credentials: { service_account_key: JSON.stringify(other) } }, secret: other.private_key.split('\n')[1]! };
      },
      unreachable: () => ({ api_endpoint: 'http://127.0.0.1:9' }),
    },
  };
}
