import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
// The fake first: it switches google-auth-library's metadata-server probe off.
import { startFakeBigQuery, type FakeBigQuery } from './bigquery-server.js';
import { FAKE_UNIVERSE } from './gcs-server.js';
import { BigQuery, type Job, type TableField } from '@google-cloud/bigquery';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The real @google-cloud/bigquery against the fake, over HTTP. */

let fake: FakeBigQuery;
let bq: BigQuery;
let tmp: string;

/** How the product must construct the client for a custom endpoint with a service-account key. */
function client(f: FakeBigQuery, key: { client_email: string; private_key: string } = f.credentials, extra: Record<string, unknown> = {}): BigQuery {
  // The key's universe (not googleapis.com) makes the SDK send its self-signed JWT, as in any other universe.
  return new BigQuery({ projectId: f.projectId, apiEndpoint: f.apiEndpoint, credentials: { client_email: key.client_email, private_key: key.private_key, universe_domain: FAKE_UNIVERSE }, ...extra });
}

const TARGET_FIELDS: TableField[] = [
  { name: 'timestamp', type: 'TIMESTAMP', mode: 'NULLABLE' },
  { name: 'request_id', type: 'STRING', mode: 'NULLABLE' },
  { name: 'provider', type: 'STRING', mode: 'NULLABLE' },
  { name: 'input_tokens', type: 'INT64', mode: 'NULLABLE' },
  { name: 'cost_usd', type: 'FLOAT64', mode: 'NULLABLE' },
  { name: 'stream', type: 'BOOL', mode: 'NULLABLE' },
  { name: 'params', type: 'JSON', mode: 'NULLABLE' },
];
/** The Parquet stage: JSON travels as text. */
const STAGE_FIELDS: TableField[] = TARGET_FIELDS.map((f) => (f.type === 'JSON' ? { ...f, type: 'STRING' } : f));

const H = 3_600_000;
const T0 = Date.UTC(2026, 9, 1, 0);
const rec = (tag: string, i: number, hour = 0) => ({
  timestamp: new Date(T0 + hour * H + (i + 1) * 60_000 + i).toISOString(),
  request_id: `${tag}-${i}`,
  provider: i % 2 ? 'openai' : 'anthropic',
  input_tokens: 100 + i,
  cost_usd: i % 3 === 0 ? null : 0.25 * i,
  stream: i % 2 === 0,
  params: i % 4 === 0 ? null : { temperature: 0.5, i, s: 'a "quoted" \\ value\nline' },
});

async function waitJob(job: Job): Promise<Record<string, any>> {
  for (;;) {
    const [m] = await job.getMetadata();
    if (m.status?.state === 'DONE') return m;
    await new Promise((r) => setTimeout(r, 20));
  }
}
const W = (h: number) => ({ start: new Date(T0 + h * H), end: new Date(T0 + (h + 1) * H) });
const commitSql = (p: string) => `BEGIN TRANSACTION;
DELETE FROM \`${p}.ds.events\` WHERE \`timestamp\` >= @window_start AND \`timestamp\` < @window_end;
INSERT INTO \`${p}.ds.events\` (\`timestamp\`, \`request_id\`, \`provider\`, \`input_tokens\`, \`cost_usd\`, \`stream\`, \`params\`)
  SELECT s.\`timestamp\`, s.\`request_id\`, s.\`provider\`, s.\`input_tokens\`, s.\`cost_usd\`, s.\`stream\`, PARSE_JSON(s.\`params\`) FROM \`${p}.ds.staging\` AS s;
COMMIT TRANSACTION;`;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'bl-bqfake-'));
  fake = await startFakeBigQuery();
  bq = client(fake);
});
afterAll(async () => {
  await fake?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('the fake BigQuery with the real @google-cloud/bigquery', () => {
  it('datasets and a day-partitioned table; every request carries a verified self-signed JWT', async () => {
    await bq.createDataset('ds');
    const [exists] = await bq.dataset('ds').exists();
    expect(exists).toBe(true);
    await expect(bq.dataset('nope').getMetadata()).rejects.toMatchObject({ code: 404, message: expect.stringContaining('Not found: Dataset') });
    await bq.dataset('ds').createTable('events', { schema: { fields: TARGET_FIELDS }, timePartitioning: { type: 'DAY', field: 'timestamp' }, labels: { a: 'b' } });
    const t = fake.tables.get('ds.events')!;
    expect(t.timePartitioning).toEqual({ type: 'DAY', field: 'timestamp' });
    const [meta] = await bq.dataset('ds').table('events').getMetadata();
    expect(meta.schema.fields.map((f: TableField) => f.type)).toEqual(['TIMESTAMP', 'STRING', 'STRING', 'INTEGER', 'FLOAT', 'BOOLEAN', 'JSON']);
    expect(meta.timePartitioning).toEqual({ type: 'DAY', field: 'timestamp' });
    expect(meta.labels).toEqual({ a: 'b' });
    await expect(bq.dataset('ds').createTable('events', { schema: { fields: TARGET_FIELDS } })).rejects.toMatchObject({ code: 409 });
    await expect(bq.dataset('ds').table('missing').getMetadata()).rejects.toMatchObject({ code: 404, message: expect.stringContaining('Not found: Table') });
    expect(fake.requests.every((r) => /^Bearer ey/.test(String(r.headers.authorization)))).toBe(true);
  });

  it('loads NDJSON from a stream (createWriteStream) and a Parquet file (createLoadJob)', async () => {
    const rows = Array.from({ length: 12 }, (_, i) => rec('nd', i));
    const ws = bq.dataset('ds').table('events').createWriteStream({ sourceFormat: 'NEWLINE_DELIMITED_JSON', writeDisposition: 'WRITE_APPEND', schema: { fields: TARGET_FIELDS } });
    const done = new Promise<Job>((resolve, reject) => { ws.on('complete', resolve); ws.on('error', reject); });
    Readable.from(rows.map((r) => `${JSON.stringify(r)}\n`)).pipe(ws);
    const job = await done;
    expect((job.metadata as any).statistics.load.outputRows).toBe('12');
    const stored = fake.tables.get('ds.events')!.rows;
    expect(stored).toHaveLength(12);
    expect(stored[1]).toEqual({ ...rows[1], input_tokens: 101, cost_usd: 0.25 });
    expect(fake.jobs.at(-1).configuration.load).toMatchObject({ sourceFormat: 'NEWLINE_DELIMITED_JSON', destinationTable: { datasetId: 'ds', tableId: 'events' } });
    expect(fake.uploads.at(-1)!.toString()).toBe(rows.map((r) => `${JSON.stringify(r)}\n`).join(''));

    // Parquet, written by hyparquet-writer, into a staging table the load creates.
    const p = Array.from({ length: 5 }, (_, i) => rec('pq', i, 1));
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'timestamp', data: p.map((r) => new Date(r.timestamp)), type: 'TIMESTAMP' },
        { name: 'request_id', data: p.map((r) => r.request_id), type: 'STRING' },
        { name: 'provider', data: p.map((r) => r.provider), type: 'STRING' },
        { name: 'input_tokens', data: p.map((r) => BigInt(r.input_tokens)), type: 'INT64' },
        { name: 'cost_usd', data: p.map((r) => r.cost_usd), type: 'DOUBLE' },
        { name: 'stream', data: p.map((r) => r.stream), type: 'BOOLEAN' },
        { name: 'params', data: p.map((r) => (r.params ? JSON.stringify(r.params) : null)), type: 'STRING' },
      ],
    });
    const file = join(tmp, 'part.parquet');
    writeFileSync(file, Buffer.from(buf));
    const [pjob] = await bq.dataset('ds').table('staging').createLoadJob(file, {
      jobId: 'load_pq_1', sourceFormat: 'PARQUET', writeDisposition: 'WRITE_APPEND', createDisposition: 'CREATE_IF_NEEDED', schema: { fields: STAGE_FIELDS },
    });
    const pm = await waitJob(pjob);
    expect(pm.status.errorResult).toBeUndefined();
    expect(pm.statistics.load.outputRows).toBe('5');
    const st = fake.tables.get('ds.staging')!;
    expect(st.rows.map((r) => r.request_id)).toEqual(p.map((r) => r.request_id));
    expect(st.rows[1]).toEqual({ ...p[1], input_tokens: 101, params: JSON.stringify(p[1]!.params) });
    // The same job id again: 409.
    await expect(bq.dataset('ds').table('staging').createLoadJob(file, { jobId: 'load_pq_1', sourceFormat: 'PARQUET' })).rejects.toMatchObject({ code: 409 });
  });

  it('a value that does not fit its column fails the load; nothing is loaded', async () => {
    const before = fake.tables.get('ds.events')!.rows.length;
    const lines = [rec('bad', 1), { ...rec('bad', 2), input_tokens: 'lots' }].map((r) => JSON.stringify(r)).join('\n');
    const file = join(tmp, 'bad.jsonl.gz');
    writeFileSync(file, gzipSync(lines));
    const [job] = await bq.dataset('ds').table('events').createLoadJob(file, { sourceFormat: 'NEWLINE_DELIMITED_JSON', schema: { fields: TARGET_FIELDS } });
    expect((job.metadata as any).status.state).toBe('RUNNING');
    const m = await waitJob(job);
    expect(m.status.errorResult.reason).toBe('invalid');
    expect(m.status.errors.map((e: { message: string }) => e.message).join('\n')).toMatch(/Could not convert value 'lots' to integer. Field: input_tokens/);
    expect(fake.tables.get('ds.events')!.rows).toHaveLength(before);
    // job.promise() (the SDK's own poller) rejects with the job's errors.
    await expect(job.promise()).rejects.toMatchObject({ errors: expect.arrayContaining([expect.objectContaining({ reason: 'invalid' })]) });
  });

  it('the DELETE + INSERT transaction replaces a window; COUNT and SUM check it', async () => {
    // Move the Parquet rows (hour 1) in; the NDJSON rows (hour 0) stay.
    const sql = commitSql(fake.projectId);
    const [job] = await bq.createQueryJob({ query: sql, params: { window_start: W(1).start, window_end: bq.timestamp(W(1).end) }, jobId: 'commit_1' });
    const m = await waitJob(job);
    expect(m.status.errorResult).toBeUndefined();
    expect(m.statistics.query.statementType).toBe('SCRIPT');
    const rows = fake.tables.get('ds.events')!.rows;
    expect(rows).toHaveLength(17);
    const moved = rows.find((r) => r.request_id === 'pq-1')!;
    expect(moved.params).toEqual(rec('pq', 1, 1).params);
    expect(fake.queries.at(-1)).toBe(sql);
    expect(fake.jobs.at(-1).configuration.query.queryParameters).toEqual([
      { name: 'window_start', parameterType: { type: 'TIMESTAMP' }, parameterValue: { value: W(1).start.toISOString() } },
      { name: 'window_end', parameterType: { type: 'TIMESTAMP' }, parameterValue: { value: expect.stringMatching(/^2026-10-01T02:00:00/) } },
    ]);
    // Re-running it is idempotent.
    const [again] = await bq.createQueryJob({ query: sql, params: { window_start: W(1).start, window_end: W(1).end } });
    await waitJob(again);
    expect(fake.tables.get('ds.events')!.rows).toHaveLength(17);

    // bigquery.query() (jobs.query) decodes the result rows.
    const [counts] = await bq.query({
      query: `SELECT COUNT(*) AS n, SUM(cost_usd) AS cost, MIN(\`timestamp\`) AS first FROM \`${fake.projectId}.ds.events\` WHERE \`timestamp\` >= @start AND \`timestamp\` < @end`,
      params: { start: W(1).start, end: W(1).end },
    });
    expect(counts).toHaveLength(1);
    expect(counts[0].n).toBe(5);
    expect(counts[0].cost).toBeCloseTo(0.25 * (1 + 2 + 4));
    expect(counts[0].first.value).toBe(rec('pq', 0, 1).timestamp);
    // createQueryJob + getQueryResults, grouped and ordered.
    const [gjob] = await bq.createQueryJob({ query: `SELECT provider, COUNT(*) AS n FROM \`${fake.projectId}.ds.events\` GROUP BY provider ORDER BY provider` });
    const [grouped] = await gjob.getQueryResults();
    expect(grouped).toEqual([{ provider: 'anthropic', n: 9 }, { provider: 'openai', n: 8 }]);
  });

  it('a failure inside the transaction changes nothing (injected, and a type error)', async () => {
    const snapshot = JSON.stringify(fake.tables.get('ds.events')!.rows);
    fake.failNext(/^\s*INSERT INTO .* SELECT/is);
    const [job] = await bq.createQueryJob({ query: commitSql(fake.projectId), params: { window_start: W(0).start, window_end: W(0).end } });
    expect((job.metadata as any).status.state).toBe('RUNNING');
    const m = await waitJob(job);
    expect(m.status.errorResult.reason).toBe('jobInternalError');
    expect(JSON.stringify(fake.tables.get('ds.events')!.rows)).toBe(snapshot);

    // STRING into a JSON column without PARSE_JSON.
    const wrong = commitSql(fake.projectId).replace('PARSE_JSON(s.`params`)', 's.`params`');
    const [job2] = await bq.createQueryJob({ query: wrong, params: { window_start: W(0).start, window_end: W(0).end } });
    const m2 = await waitJob(job2);
    expect(m2.status.errorResult).toMatchObject({ reason: 'invalidQuery', message: expect.stringMatching(/Query column 7 has type STRING which cannot be inserted into column params, which has type JSON/) });
    expect(JSON.stringify(fake.tables.get('ds.events')!.rows)).toBe(snapshot);
    await expect(job2.getQueryResults()).rejects.toMatchObject({ code: 400 });

    // A syntax error fails at insert (the SDK throws from createQueryJob).
    await expect(bq.createQueryJob({ query: 'SELEC 1' })).rejects.toMatchObject({ errors: [expect.objectContaining({ reason: 'invalidQuery' })] });
  });

  it('late rows: only request_ids not yet present (NOT IN and NOT EXISTS)', async () => {
    const p = fake.projectId;
    const extra = [rec('pq', 1, 1), rec('late', 1, 1), rec('late', 2, 1)].map((r) => ({ ...r, params: r.params ? JSON.stringify(r.params) : null }));
    const ws = bq.dataset('ds').table('staging').createWriteStream({ sourceFormat: 'NEWLINE_DELIMITED_JSON', writeDisposition: 'WRITE_TRUNCATE', schema: { fields: STAGE_FIELDS } });
    const done = new Promise((resolve, reject) => { ws.on('complete', resolve); ws.on('error', reject); });
    ws.end(extra.map((r) => JSON.stringify(r)).join('\n'));
    await done;
    expect(fake.tables.get('ds.staging')!.rows).toHaveLength(3);
    const cols = '`timestamp`, request_id, provider, input_tokens, cost_usd, stream';
    await bq.query(`INSERT INTO \`${p}.ds.events\` (${cols}, params) SELECT ${cols}, PARSE_JSON(params) FROM \`${p}.ds.staging\` WHERE request_id NOT IN (SELECT request_id FROM \`${p}.ds.events\` WHERE request_id IS NOT NULL)`);
    let ids = fake.tables.get('ds.events')!.rows.map((r) => r.request_id);
    expect(ids.filter((x) => x === 'pq-1')).toHaveLength(1);
    expect(ids.filter((x) => String(x).startsWith('late-'))).toHaveLength(2);
    await bq.query(`BEGIN TRANSACTION; INSERT INTO \`${p}.ds.events\` (${cols}, params) SELECT ${cols.split(', ').map((c) => `s.${c}`).join(', ')}, PARSE_JSON(s.params) FROM \`${p}.ds.staging\` AS s WHERE NOT EXISTS (SELECT 1 FROM \`${p}.ds.events\` AS t WHERE t.request_id = s.request_id); COMMIT TRANSACTION;`);
    ids = fake.tables.get('ds.events')!.rows.map((r) => r.request_id);
    expect(ids).toHaveLength(19);
  });

  it('tabledata.list decodes rows; a schema patch may only add columns; DROP TABLE IF EXISTS', async () => {
    const [rows] = await bq.dataset('ds').table('events').getRows({ maxResults: 100 });
    const one = rows.find((r) => r.request_id === 'nd-1')!;
    expect(one.timestamp.value).toBe(rec('nd', 1).timestamp);
    expect(one.input_tokens).toBe(101);
    expect(JSON.parse(one.params)).toEqual(rec('nd', 1).params);
    const t = bq.dataset('ds').table('events');
    const [meta] = await t.getMetadata();
    await t.setMetadata({ schema: { fields: [...meta.schema.fields, { name: 'team_id', type: 'STRING', mode: 'NULLABLE' }] } });
    expect(fake.tables.get('ds.events')!.schema.fields.at(-1)).toEqual({ name: 'team_id', type: 'STRING', mode: 'NULLABLE' });
    expect(fake.tables.get('ds.events')!.rows.every((r) => r.team_id === null)).toBe(true);
    await expect(t.setMetadata({ schema: { fields: meta.schema.fields.slice(1) } })).rejects.toMatchObject({ code: 400, message: expect.stringContaining('missing in new schema') });
    await bq.query(`DROP TABLE IF EXISTS \`${fake.projectId}.ds.staging\``);
    expect(fake.tables.has('ds.staging')).toBe(false);
    await bq.query(`DROP TABLE IF EXISTS \`${fake.projectId}.ds.staging\``);
    await expect(bq.query(`SELECT COUNT(*) FROM \`${fake.projectId}.ds.staging\``)).rejects.toMatchObject({ code: 404 });
    // A dry run checks without running; a missing table is an error.
    const [dry] = await bq.createQueryJob({ query: `SELECT COUNT(*) AS n FROM \`${fake.projectId}.ds.events\``, dryRun: true });
    expect((dry.metadata as any).status.state).toBe('DONE');
    await expect(bq.createQueryJob({ query: 'SELECT COUNT(*) FROM ds.nope', dryRun: true })).rejects.toMatchObject({ code: 404 });
  });

  it('parameters: types are checked; a TIMESTAMP given as a string with `types` goes out as NULL (SDK behaviour)', async () => {
    const q = `SELECT COUNT(*) AS n FROM \`${fake.projectId}.ds.events\` WHERE \`timestamp\` >= @start AND \`timestamp\` < @end`;
    const iso = { start: W(0).start.toISOString(), end: W(0).end.toISOString() };
    const [ok] = await bq.query({ query: q, params: { start: W(0).start, end: W(0).end } });
    expect(ok[0].n).toBe(12);
    // As STRING parameters: no matching signature.
    await expect(bq.query({ query: q, params: iso })).rejects.toMatchObject({ message: expect.stringMatching(/No matching signature for operator >= for argument types: TIMESTAMP, STRING/) });
    // With types: the SDK sends no value at all, i.e. NULL, and the count is 0.
    const [nulls] = await bq.query({ query: q, params: iso, types: { start: 'TIMESTAMP', end: 'TIMESTAMP' } });
    expect(nulls[0].n).toBe(0);
    expect(fake.jobs.at(-1).configuration.query.queryParameters[0]).toEqual({ name: 'start', parameterType: { type: 'TIMESTAMP' }, parameterValue: {} });
    // String literals do coerce.
    const [lit] = await bq.query(`SELECT COUNT(*) AS n FROM \`${fake.projectId}.ds.events\` WHERE \`timestamp\` >= '${iso.start}' AND \`timestamp\` < TIMESTAMP '${iso.end}'`);
    expect(lit[0].n).toBe(12);
  });

  it('retries 503s; RUNNING jobs are polled; a wrong key gets 401', async () => {
    fake.failRequests(1, 503);
    const [m] = await bq.dataset('ds').getMetadata();
    expect(m.datasetReference.datasetId).toBe('ds');

    const slow = await startFakeBigQuery({ runningPolls: 2, datasets: ['d'] });
    try {
      const c = client(slow);
      const [job] = await c.createQueryJob({ query: 'SELECT 1 AS probe' });
      expect((job.metadata as any).status.state).toBe('RUNNING');
      const [rows] = await job.getQueryResults();
      expect(rows).toEqual([{ probe: 1 }]);
      const [job2] = await c.createQueryJob({ query: 'SELECT 2 AS x' });
      await job2.promise();
      expect((await job2.getMetadata())[0].status.state).toBe('DONE');

      const other = await startFakeBigQuery();
      await other.stop();
      const wrong = client(slow, { client_email: slow.credentials.client_email, private_key: other.credentials.private_key }, { autoRetry: false });
      const err = await wrong.dataset('d').getMetadata().then(() => null, (e: unknown) => e);
      expect(err).toMatchObject({ code: 401 });
      expect(String((err as Error).message)).not.toContain('PRIVATE KEY');
    } finally {
      await slow.stop();
    }
  });

  it('without credentials: requests go out unauthenticated (accepted unless requireAuth)', async () => {
    const open = new BigQuery({ projectId: fake.projectId, apiEndpoint: fake.apiEndpoint });
    const from = fake.requests.length;
    const [m] = await open.dataset('ds').getMetadata();
    expect(m.id).toBe(`${fake.projectId}:ds`);
    expect(fake.requests[from]!.headers.authorization).toBeUndefined();
    const strict = await startFakeBigQuery({ requireAuth: true, datasets: ['d'] });
    try {
      const anon = new BigQuery({ projectId: strict.projectId, apiEndpoint: strict.apiEndpoint, autoRetry: false });
      // The SDK reports a 401 after a failed credential lookup as that lookup's error.
      await expect(anon.dataset('d').getMetadata()).rejects.toThrow(/Could not load the default credentials/);
      expect(strict.requests).toHaveLength(1);
    } finally {
      await strict.stop();
    }
  });

  it('requests and responses are checked against Google\'s discovery document: a wrong field name or type is refused (400) and recorded', async () => {
    const sch = await startFakeBigQuery({ datasets: ['d'] });
    try {
      const c = client(sch, sch.credentials, { autoRetry: false });
      // Correct requests and responses pass.
      await c.dataset('d').createTable('ok', { schema: { fields: [{ name: 'a', type: 'STRING' }] } });
      const [rows] = await c.query({ query: 'SELECT 1 AS x' });
      expect(rows).toEqual([{ x: 1 }]);
      expect(sch.violations).toEqual([]);

      // A misspelt property (BigQuery's is timePartitioning) is refused.
      const e1 = await c.dataset('d').createTable('t1', { schema: { fields: [{ name: 'a', type: 'STRING' }] }, timePartition: { type: 'DAY' } } as never).then(() => null, (e: unknown) => e);
      expect(e1).toMatchObject({ code: 400 });
      expect(String((e1 as Error).message)).toMatch(/unknown property "timePartition"/);
      // A property of the wrong type (useLegacySql is a boolean) is refused.
      const e2 = await c.createQueryJob({ query: 'SELECT 1', useLegacySql: 'no' } as never).then(() => null, (e: unknown) => e);
      expect(e2).toMatchObject({ code: 400 });
      expect(String((e2 as Error).message)).toMatch(/useLegacySql: expected a boolean/);
      expect(sch.violations).toHaveLength(2);
      expect(sch.violations[0]).toMatch(/request of bigquery\.tables\.insert: unknown property "timePartition"/);
      expect(sch.tables.has('d.t1')).toBe(false);
      // stop() fails while violations are recorded, so any suite that let one through fails.
      const left = [...sch.violations];
      await expect(sch.stop()).rejects.toThrow(/do not match the published API schema/);
      expect(left).toHaveLength(2);
    } finally {
      sch.violations.length = 0;
      await sch.stop().catch(() => undefined);
    }
  });
});
