import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres } from '../support/services.js';
import { CliError } from '../../src/errors.js';
import type { DestinationEnv } from '../../src/destination/types.js';
import { SCHEMA, W1, deliver, encode, records as baseRecords, silentLog } from './warehouse-data.js';

/** The SQL warehouses also get NULs in strings and JSON. */
const records = (tag: string, n: number, w: { start: number; end: number }) => baseRecords(tag, n, w, { nul: true });
import { createNulScrubber, createPostgresDestination, pgInsertSql } from '../../src/destination/postgres/index.js';
import {
  insertValuesSql, redshiftCopySql, redshiftDialect, redshiftHost, rowsPerInsert, stagedLoadStatements,
} from '../../src/destination/redshift/index.js';
import { POSTGRES_DIALECT } from '../../src/destination/postgres/dialect.js';
import { createTableSql, addColumnsSql, deleteWindowSql, insertFromStageSql } from '../../src/destination/warehouse/sql.js';
import { tableLayout } from '../../src/destination/warehouse/layout.js';

/**
 * What only the PostgreSQL-wire warehouses do, and their SQL text; the
 * contract itself runs in warehouses.test.ts.
 */

let tmp: string;
const env = (): DestinationEnv => ({ log: silentLog, tmpDir: tmp });

let server: Awaited<ReturnType<typeof startPostgres>>;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'bl-sqlwh-'));
  server = await startPostgres();
}, 180_000);

afterAll(async () => {
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
}, 60_000);

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
      'INSERT INTO "analytics"."logs" ("timestamp", "request_id", "params") SELECT s."timestamp", s."request_id", s."params" FROM "bifrost_logs_late" s WHERE NOT EXISTS (SELECT 1 FROM "analytics"."logs" x WHERE x."request_id" = s."request_id" AND x."timestamp" >= $1::timestamptz AND x."timestamp" < $2::timestamptz)',
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
    expect(late[2]!.text).toContain('WHERE NOT EXISTS (SELECT 1 FROM "analytics"."logs" x WHERE x."request_id" = s."request_id" AND x."timestamp" >= $1::timestamptz AND x."timestamp" < $2::timestamptz)');
    expect(late[2]!.values).toEqual(['2026-10-01T00:00:00.000Z', '2026-10-01T01:00:00.000Z']);
    // Aggregated: through the stage, tagged with the window.
    const a = stagedLoadStatements(ref, agg, { late: false, window: W1 }, [obj], o);
    expect(a[2]).toEqual({
      text: 'INSERT INTO "analytics"."logs" ("provider", "total_cost", "window_start", "window_end") SELECT s."provider", s."total_cost", $1::timestamptz, $2::timestamptz FROM "bifrost_logs_stage" s',
      values: ['2026-10-01T00:00:00.000Z', '2026-10-01T01:00:00.000Z'],
    });
    expect(stagedLoadStatements(ref, raw, { late: false, window: W1 }, [], o)).toEqual([]);
  });
});
