import { pgDeadlines } from '../../util/pg-timeouts.js';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { CliError, ExitCode, configError } from '../../errors.js';
import {
  checkTableAccess, countWindowSql, deleteWindowSql, ensureTable, existingColumns, qualified, quoteIdent, quoteLiteral,
  redshiftDialect, sqlError, tableLayout, windowValues,
  type Query, type SqlDialect, type SqlStatement, type TableColumn, type TableLayout, type TableRef,
} from '../sql-table.js';
import type { CommitInfo, Destination, DestinationEnv, DestinationFactory, PartInfo, PartUpload } from '../types.js';
import { openSpool } from '../spool.js';
import { streamUpload, type ObjectStore } from '../object-store.js';
import type { RedshiftConfig } from './schema.js';

const APP = 'bifrost-logs';
const CONNECT_TIMEOUT_MS = 15_000;
/** statement_timeout in ms (a plain integer: both Redshift and PostgreSQL take it). */
const LOAD_TIMEOUT_MS = 30 * 60_000;
const SHORT_TIMEOUT_MS = 60_000;
const DEFAULT_PORT = 5439;
const DEFAULT_BATCH_ROWS = 500;
/** Bind parameters per statement stay below Redshift's 32767. */
const MAX_PARAMS = 32_766;
/** And a batch's values stay well below Redshift's 16 MB statement limit. */
const MAX_BATCH_BYTES = 8 << 20;
const LATE_STAGE = 'bifrost_logs_late';
const S3_STAGE = 'bifrost_logs_stage';
const STAGING_DIR = '_bifrost_logs_staging';

/**
 * The endpoint: `host` when given; else `cluster` + `region` →
 * `<cluster>.<region>.redshift.amazonaws.com`, where `cluster` is the
 * endpoint's first two labels as the console shows them (`name.abc123xyz789`:
 * the cluster name and the account's unique id). A bare cluster name cannot
 * be resolved without AWS API calls, so it is refused with a hint.
 */
export function redshiftHost(c: Pick<RedshiftConfig, 'host' | 'cluster' | 'region'>): string {
  if (c.host) return c.host;
  if (!c.cluster) throw configError('set up redshift', 'either host or cluster (with region) is required', 'host: examplecluster.abc123xyz789.us-east-1.redshift.amazonaws.com');
  if (/\.amazonaws\.com$/i.test(c.cluster)) return c.cluster;
  if (!c.region) throw configError('set up redshift', `cluster "${c.cluster}" needs a region`, 'region: us-east-1');
  if (!c.cluster.includes('.')) {
    throw configError('set up redshift', `cluster "${c.cluster}" lacks the endpoint's unique id`, `use cluster: "${c.cluster}.<id>" as in the console's endpoint (${c.cluster}.<id>.${c.region}.redshift.amazonaws.com), or host:`);
  }
  return `${c.cluster}.${c.region}.redshift.amazonaws.com`;
}

export function redshiftClientConfig(c: RedshiftConfig): pg.ClientConfig {
  const ssl = c.ssl ?? true;
  return {
    host: redshiftHost(c),
    port: c.port ?? DEFAULT_PORT,
    database: c.database,
    user: c.credentials?.username,
    password: c.credentials?.password,
    ssl: ssl ? { rejectUnauthorized: true } : false,
    application_name: APP,
    ...pgDeadlines(c.request_timeout_secs ?? CONNECT_TIMEOUT_MS / 1000, LOAD_TIMEOUT_MS),
  };
}

function describe(c: RedshiftConfig, ref: TableRef): string {
  let host: string;
  try { host = redshiftHost(c); } catch { host = c.host ?? c.cluster ?? '?'; }
  return `redshift://${c.credentials?.username ? `${c.credentials.username}@` : ''}${host}:${c.port ?? DEFAULT_PORT}/${c.database} ${ref.schema}.${ref.table}`;
}

/** Text cannot hold U+0000 (PostgreSQL refuses it): it becomes U+FFFD. JSON text keeps its `\u0000` escape. */
const noNul = (v: string) => (v.includes('\0') ? v.replace(/\0/g, '\uFFFD') : v);

/** Redshift's VARCHAR(65535) counts bytes. */
export const VARCHAR_MAX_BYTES = 65535;
export const TRUNCATION_MARKER = '…[truncated]';
const MARKER_BYTES = Buffer.byteLength(TRUNCATION_MARKER);

/** Text over 65535 UTF-8 bytes, cut on a character boundary and marked, so that it fits VARCHAR(65535). */
export function fitVarchar(v: string, onCut?: () => void): string {
  if (v.length * 3 <= VARCHAR_MAX_BYTES || Buffer.byteLength(v) <= VARCHAR_MAX_BYTES) return v;
  onCut?.();
  const b = Buffer.from(v, 'utf8');
  let end = VARCHAR_MAX_BYTES - MARKER_BYTES;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--; // back to the start of a character
  return b.subarray(0, end).toString('utf8') + TRUNCATION_MARKER;
}

/** Counts of values changed so that they fit their column (U+0000 replaced, text truncated). */
export interface FitCounts { nul: number; truncated: number }

/** How one record value is bound: JSON as its text (parsed back by JSON_PARSE into SUPER columns). */
function encoder(col: TableColumn, superCol: boolean, counts: FitCounts): (v: unknown) => unknown {
  const cut = () => { counts.truncated++; };
  const nul = (v: string) => { if (v.includes('\0')) { counts.nul++; return noNul(v); } return v; };
  switch (col.type) {
    case 'json': return (v) => (v === null || v === undefined ? null : superCol ? JSON.stringify(v) : fitVarchar(JSON.stringify(v), cut));
    case 'string': return (v) => (v === null || v === undefined ? null : fitVarchar(typeof v === 'string' ? nul(v) : typeof v === 'object' ? JSON.stringify(v) : String(v), cut));
    case 'bool': return (v) => (v === null || v === undefined ? null : v === true || v === 'true' || v === 1 ? true : v === false || v === 'false' || v === 0 ? false : v);
    default: return (v) => (v === undefined ? null : v === null || typeof v !== 'object' ? v : JSON.stringify(v));
  }
}

/** Rows per INSERT: the configured batch, capped so the parameters stay under the limit. */
export function rowsPerInsert(batchRows: number, recordColumns: number): number {
  return Math.max(1, Math.min(batchRows, Math.floor((MAX_PARAMS - 2) / Math.max(1, recordColumns))));
}

/**
 * A multi-row parameterised INSERT. Aggregated rows share the window as $1
 * and $2; record values follow, row after row. `superColumns` (existing SUPER
 * columns) take their JSON text through JSON_PARSE.
 */
export function insertValuesSql(target: string, layout: TableLayout, rows: number, superColumns: ReadonlySet<string> = new Set()): string {
  const tagged = layout.columns.some((c) => c.window);
  let n = tagged ? 2 : 0;
  const tuples: string[] = [];
  for (let i = 0; i < rows; i++) {
    const vals = layout.columns.map((c) => {
      if (c.window) return c.window === 'start' ? '$1::timestamptz' : '$2::timestamptz';
      n++;
      return superColumns.has(c.name.toLowerCase()) ? `JSON_PARSE($${n})` : `$${n}`;
    });
    tuples.push(`(${vals.join(', ')})`);
  }
  return `INSERT INTO ${target} (${layout.columns.map((c) => quoteIdent(c.name)).join(', ')}) VALUES ${tuples.join(', ')}`;
}

/**
 * Moves a session stage into the table. `windowParams`: the window columns
 * come from $1/$2 (the stage was loaded by COPY with record columns only);
 * `skipKnownIds`: late rows whose request_id is already in the table are left out.
 */
export function insertFromStageSql(t: TableRef, layout: TableLayout, stage: string, o: { windowParams: boolean; skipKnownIds: boolean }): string {
  const cols = layout.columns.map((c) => quoteIdent(c.name)).join(', ');
  const select = layout.columns.map((c) => (c.window && o.windowParams ? (c.window === 'start' ? '$1::timestamptz' : '$2::timestamptz') : `s.${quoteIdent(c.name)}`));
  const rid = quoteIdent('request_id');
  const where = o.skipKnownIds ? ` WHERE NOT EXISTS (SELECT 1 FROM ${qualified(t)} x WHERE x.${rid} = s.${rid})` : '';
  return `INSERT INTO ${qualified(t)} (${cols}) SELECT ${select.join(', ')} FROM ${quoteIdent(stage)} s${where}`;
}

export interface StagedObject { readonly bucket: string; readonly key: string }
export interface StagedCopyOptions { readonly iamRole: string; readonly region?: string }

/** `COPY … FROM 's3://…' IAM_ROLE … FORMAT AS JSON 'auto ignorecase'`: keys matched to columns by name. */
export function redshiftCopySql(target: string, columns: readonly TableColumn[], obj: StagedObject, o: StagedCopyOptions): string {
  return [
    `COPY ${target} (${columns.map((c) => quoteIdent(c.name)).join(', ')})`,
    `FROM ${quoteLiteral(`s3://${obj.bucket}/${obj.key}`)}`,
    `IAM_ROLE ${quoteLiteral(o.iamRole)}`,
    // Text over a VARCHAR's bytes is cut to fit rather than failing the window.
    `FORMAT AS JSON 'auto ignorecase' TIMEFORMAT 'auto' TRUNCATECOLUMNS`,
    ...(o.region ? [`REGION ${quoteLiteral(o.region)}`] : []),
  ].join(' ');
}

/**
 * The statements of a staged (S3) load, after the table is ensured and the
 * window deleted: raw windows COPY straight into the table; late parts and
 * aggregated rows go through a TEMP stage (LIKE the table) so that late rows
 * skip known request_ids and aggregated rows get their window.
 */
export function stagedLoadStatements(t: TableRef, layout: TableLayout, c: { late: boolean; window: { start: number; end: number } }, objects: readonly StagedObject[], o: StagedCopyOptions): SqlStatement[] {
  if (!objects.length) return [];
  const direct = !layout.columns.some((col) => col.window) && !(c.late && layout.keyed);
  if (direct) return objects.map((obj) => ({ text: redshiftCopySql(qualified(t), layout.recordColumns, obj, o), values: [] }));
  const out: SqlStatement[] = [{ text: `CREATE TEMP TABLE ${quoteIdent(S3_STAGE)} (LIKE ${qualified(t)})`, values: [] }];
  for (const obj of objects) out.push({ text: redshiftCopySql(quoteIdent(S3_STAGE), layout.recordColumns, obj, o), values: [] });
  const tagged = layout.columns.some((col) => col.window);
  out.push({ text: insertFromStageSql(t, layout, S3_STAGE, { windowParams: tagged, skipKnownIds: c.late && layout.keyed }), values: tagged ? windowValues(c.window) : [] });
  out.push({ text: `DROP TABLE ${quoteIdent(S3_STAGE)}`, values: [] });
  return out;
}

interface StagedPart { readonly path?: string; readonly object?: StagedObject }

/**
 * Redshift over the PostgreSQL wire protocol (`pg`). Without `staging` each
 * part is spooled to a local file and `commit` replays them as batched
 * multi-row INSERTs (Redshift has no COPY FROM STDIN) inside the window's one
 * transaction; this path uses only SQL PostgreSQL also accepts. With
 * `staging` parts are uploaded to S3 and loaded by COPY … IAM_ROLE.
 */
class RedshiftDestination implements Destination {
  readonly type = 'redshift';
  readonly kind = 'table' as const;
  readonly loadFormat = 'jsonl' as const;
  private readonly ref: TableRef;
  private readonly where: string;
  private readonly dialect: SqlDialect;
  private readonly batchRows: number;
  private readonly staged = new Map<string, StagedPart>();
  private readonly session = randomBytes(6).toString('hex');
  private client: pg.Client | null = null;
  private s3: Promise<ObjectStore> | null = null;
  private partNo = 0;

  constructor(private readonly config: RedshiftConfig, private readonly env: DestinationEnv) {
    redshiftHost(config);
    this.ref = { schema: config.schema ?? 'public', table: config.table };
    this.where = describe(config, this.ref);
    this.dialect = redshiftDialect(config.staging ? 'SUPER' : 'VARCHAR(65535)');
    this.batchRows = config.insert_batch_rows ?? DEFAULT_BATCH_ROWS;
  }

  private newClient(): pg.Client {
    const c = new pg.Client(redshiftClientConfig(this.config));
    const drop = () => { if (this.client === c) { this.client = null; c.end().catch(() => {}); } };
    c.on('error', drop);
    c.on('end', drop);
    return c;
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const c = this.newClient();
    try {
      await c.connect();
    } catch (err) {
      await c.end().catch(() => {});
      throw sqlError('connect to redshift', err, this.where);
    }
    this.client = c;
    return c;
  }

  /**
   * BEGIN on the session; an idle connection the server dropped meanwhile is
   * replaced once (nothing is lost: the parts are staged outside it).
   */
  private async begin(): Promise<pg.Client> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.connect();
      try {
        await client.query('BEGIN');
        return client;
      } catch (err) {
        if (this.client === client) this.client = null;
        await client.end().catch(() => {});
        if (attempt >= 2) throw sqlError('load into redshift', err, this.where);
      }
    }
  }

  private stagingStore(): Promise<ObjectStore> {
    const staging = this.config.staging!;
    // Loaded only when staging is configured: the s3 destination brings the AWS SDK.
    this.s3 ??= import('../s3/index.js').then((m) => m.createS3Store(staging.s3, this.env));
    return this.s3;
  }

  private objectKey(partKey: string): string {
    let prefix = this.config.staging?.s3.prefix ?? '';
    if (prefix && !prefix.endsWith('/')) prefix += '/';
    return `${prefix}${STAGING_DIR}/${this.session}/${partKey}`;
  }

  async check(): Promise<void> {
    const c = this.newClient();
    try {
      await c.connect();
      await c.query(`SET statement_timeout = ${SHORT_TIMEOUT_MS}`);
      await checkTableAccess(asQuery(c), this.dialect, this.ref);
    } catch (err) {
      throw sqlError('check redshift', err, this.where);
    } finally {
      await c.end().catch(() => {});
    }
    if (this.config.staging) await (await this.stagingStore()).check();
  }

  async openPart(part: PartInfo): Promise<PartUpload> {
    if (part.format !== 'jsonl' || part.contentEncoding) {
      throw new CliError('load into redshift', `parts must be uncompressed jsonl (got ${part.format}${part.contentEncoding ? `, ${part.contentEncoding}` : ''})`, { exitCode: ExitCode.software });
    }
    this.staged.delete(part.key);
    if (this.config.staging) {
      const store = await this.stagingStore();
      const key = this.objectKey(part.key);
      const up = streamUpload((body, signal) => store.put(key, body, { contentType: part.contentType }, signal));
      return {
        write: (b) => up.write(b),
        finish: async () => { await up.finish(); this.staged.set(part.key, { object: { bucket: this.config.staging!.s3.bucket, key } }); },
        abort: () => up.abort(),
      };
    }
    const spool = await openSpool(this.env.tmpDir, `redshift-${this.session}-${++this.partNo}.jsonl`, 'redshift');
    return {
      write: (chunk) => spool.write(chunk),
      finish: async () => {
        await spool.close();
        this.staged.set(part.key, { path: spool.path });
      },
      abort: () => spool.discard(),
    };
  }

  async commit(c: CommitInfo): Promise<void> {
    const layout = tableLayout(c.schema, c.aggregated);
    const parts: StagedPart[] = [];
    for (const p of c.parts) {
      const s = this.staged.get(p.key);
      if (!s) throw new CliError(`load into redshift (${this.where})`, `part ${p.key} was not staged by this run`, { exitCode: ExitCode.software });
      parts.push(s);
    }
    try {
      if (c.late && !parts.length) return;
      const client = await this.begin();
      const q = asQuery(client);
      try {
        await q(`SET LOCAL statement_timeout = ${LOAD_TIMEOUT_MS}`);
        const cols = await ensureTable(q, this.dialect, this.ref, layout);
        if (!c.late) {
          const del = deleteWindowSql(this.ref, layout.mode, c.window);
          await q(del.text, del.values);
        }
        if (this.config.staging) {
          const st = stagedLoadStatements(this.ref, layout, c, parts.map((p) => p.object!), { iamRole: this.config.staging.iam_role, region: this.config.staging.s3.region });
          for (const s of st) await q(s.text, s.values);
        } else {
          await this.insertParts(q, layout, c, parts.map((p) => p.path!), cols);
        }
        await q('COMMIT');
        this.env.log.verbose(`redshift: window ${windowValues(c.window).join(' → ')} loaded into ${this.ref.schema}.${this.ref.table}`);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw sqlError('load into redshift', err, this.where);
      }
    } finally {
      await this.unstage(c.parts.map((p) => p.key));
    }
  }

  /** Replays the spooled parts as batched INSERTs (late rows via a TEMP stage, to skip known request_ids). */
  private async insertParts(q: Query, layout: TableLayout, c: CommitInfo, paths: string[], cols: Map<string, string>): Promise<void> {
    if (!paths.length) return;
    const viaStage = c.late && layout.keyed;
    let target = qualified(this.ref);
    if (viaStage) {
      await q(`CREATE TEMP TABLE ${quoteIdent(LATE_STAGE)} (LIKE ${qualified(this.ref)})`);
      target = quoteIdent(LATE_STAGE);
    }
    const superCols = new Set(layout.recordColumns.filter((col) => col.type === 'json' && cols.get(col.name.toLowerCase()) === 'super').map((col) => col.name.toLowerCase()));
    const rec = layout.recordColumns;
    const counts: FitCounts = { nul: 0, truncated: 0 };
    const enc = rec.map((col) => encoder(col, superCols.has(col.name.toLowerCase()), counts));
    const perStmt = rowsPerInsert(this.batchRows, rec.length);
    const tagged = layout.columns.some((col) => col.window);
    const head: unknown[] = tagged ? windowValues(c.window) : [];
    let values: unknown[] = [...head];
    let rows = 0;
    let bytes = 0;
    let fullSql: string | null = null;
    const seen = viaStage ? new Set<string>() : null;
    const flush = async () => {
      if (!rows) return;
      const sql = rows === perStmt ? (fullSql ??= insertValuesSql(target, layout, rows, superCols)) : insertValuesSql(target, layout, rows, superCols);
      await q(sql, values);
      values = [...head];
      rows = 0;
      bytes = 0;
    };
    for (const path of paths) {
      const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
      let lineNo = 0;
      for await (const line of lines) {
        lineNo++;
        if (!line.trim()) continue;
        let r: Record<string, unknown>;
        try {
          r = JSON.parse(line) as Record<string, unknown>;
        } catch (err) {
          lines.close();
          throw new CliError(`load into redshift (${this.where})`, `line ${lineNo} of a staged part is not JSON (${(err as Error).message})`, { exitCode: ExitCode.dataErr, cause: err });
        }
        if (seen) {
          const id = r.request_id;
          if (typeof id === 'string') {
            if (seen.has(id)) continue;
            seen.add(id);
          }
        }
        for (let i = 0; i < rec.length; i++) values.push(enc[i]!(r[rec[i]!.name]));
        rows++;
        bytes += line.length;
        if (rows >= perStmt || bytes >= MAX_BATCH_BYTES) await flush();
      }
    }
    await flush();
    if (counts.truncated) this.env.log.warn(`redshift: ${counts.truncated} value(s) over ${VARCHAR_MAX_BYTES} bytes were cut to fit VARCHAR(${VARCHAR_MAX_BYTES}) (ending in "${TRUNCATION_MARKER}")`);
    if (counts.nul) this.env.log.warn(`redshift: ${counts.nul} value(s) held U+0000, which the table cannot hold; it was replaced by U+FFFD`);
    if (viaStage) {
      await q(insertFromStageSql(this.ref, layout, LATE_STAGE, { windowParams: false, skipKnownIds: true }));
      await q(`DROP TABLE ${quoteIdent(LATE_STAGE)}`);
    }
  }

  /** Staged files and objects live only until their commit (whatever its outcome). */
  private async unstage(keys: readonly string[]): Promise<void> {
    for (const k of keys) {
      const s = this.staged.get(k);
      this.staged.delete(k);
      if (s?.path) await rm(s.path, { force: true }).catch(() => {});
      if (s?.object) {
        const store = await this.stagingStore();
        await store.delete(s.object.key).catch((err: unknown) => this.env.log.warn(`could not remove the staged object s3://${s.object!.bucket}/${s.object!.key}: ${(err as Error).message}`));
      }
    }
  }

  async countWindow(w: { start: number; end: number }): Promise<number> {
    const client = await this.connect();
    const q = asQuery(client);
    try {
      const cols = await existingColumns(q, this.dialect, this.ref);
      if (!cols.size) return 0;
      const s = countWindowSql(this.ref, cols.has('timestamp'), w);
      const r = await q<{ n: string }>(s.text, s.values);
      return Number(r.rows[0]?.n ?? 0);
    } catch (err) {
      throw sqlError('count the window in redshift', err, this.where);
    }
  }

  async close(): Promise<void> {
    await this.unstage([...this.staged.keys()]);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
    if (this.s3) await (await this.s3.catch(() => null))?.close?.().catch(() => {});
  }
}

function asQuery(client: pg.Client): Query {
  return (async (text: string, values?: unknown[]) => client.query(text, values)) as Query;
}

export const createRedshiftDestination: DestinationFactory = async (config: RedshiftConfig, env: DestinationEnv) => new RedshiftDestination(config, env);
