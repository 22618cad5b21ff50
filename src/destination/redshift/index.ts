import { randomBytes } from 'node:crypto';
import { tableLayout, windowValues, type TableLayout } from '../warehouse/layout.js';
import type { WarehouseDialect } from '../warehouse/dialect.js';
import { asQuery, checkTableAccess, countWindowIn, ensureTable, inTransaction, qualified, quoteIdent, sqlError, type Query, type TableRef } from '../warehouse/pg-wire.js';
import { deleteWindowSql, insertFromStageSql, supersedeSql } from '../warehouse/sql.js';
import { StagedParts, assertLoadFormat, removeSpooled, spoolPart } from '../warehouse/staging.js';
import type { CommitInfo, CommitResult, Destination, DestinationEnv, DestinationFactory, PartInfo, PartUpload } from '../types.js';
import { streamUpload, type ObjectStore } from '../object-store.js';
import { LOAD_TIMEOUT_MS, RedshiftSession, SHORT_TIMEOUT_MS, describe, redshiftHost } from './connection.js';
import { redshiftDialect } from './dialect.js';
import { LATE_STAGE, createStageSql, stagedLoadStatements, type StagedObject } from './staged.js';
import { TRUNCATION_MARKER, VARCHAR_MAX_BYTES, fitWarnings, replayParts, type FitCounts } from './values.js';
import type { RedshiftConfig } from './schema.js';

export { redshiftClientConfig, redshiftHost } from './connection.js';
export { redshiftDialect } from './dialect.js';
export { redshiftCopySql, stagedLoadStatements, type StagedCopyOptions, type StagedObject } from './staged.js';
export { TRUNCATION_MARKER, VARCHAR_MAX_BYTES, fitVarchar, insertValuesSql, rowsPerInsert, type FitCounts } from './values.js';

const DEFAULT_BATCH_ROWS = 500;
const STAGING_DIR = '_bifrost_logs_staging';

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
  private readonly dialect: WarehouseDialect<TableRef>;
  private readonly batchRows: number;
  private readonly staged: StagedParts<StagedPart>;
  private readonly sessionId = randomBytes(6).toString('hex');
  private readonly session: RedshiftSession;
  private s3: Promise<ObjectStore> | null = null;
  private partNo = 0;

  constructor(private readonly config: RedshiftConfig, private readonly env: DestinationEnv) {
    redshiftHost(config);
    this.ref = { schema: config.schema ?? 'public', table: config.table };
    this.where = describe(config, this.ref);
    this.dialect = redshiftDialect(config.staging ? 'SUPER' : 'VARCHAR(65535)');
    this.batchRows = config.insert_batch_rows ?? DEFAULT_BATCH_ROWS;
    this.staged = new StagedParts('redshift', () => this.where);
    this.session = new RedshiftSession(config, this.where);
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
    return `${prefix}${STAGING_DIR}/${this.sessionId}/${partKey}`;
  }

  async check(): Promise<void> {
    try {
      await checkTableAccess(this.session.newClient(), String(SHORT_TIMEOUT_MS), this.dialect, this.ref);
    } catch (err) {
      throw sqlError('check redshift', err, this.where);
    }
    if (this.config.staging) await (await this.stagingStore()).check();
  }

  async openPart(part: PartInfo): Promise<PartUpload> {
    assertLoadFormat(part, 'jsonl', 'redshift');
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
    return spoolPart(this.env, 'redshift', `redshift-${this.sessionId}-${++this.partNo}.jsonl`, {
      keep: true,
      done: async (spool) => { this.staged.set(part.key, { path: spool.path }); },
    });
  }

  async commit(c: CommitInfo): Promise<CommitResult | void> {
    const layout = tableLayout(c.schema, c.aggregated);
    const parts = this.staged.take(c.parts);
    let fit: FitCounts = { nul: 0, truncated: 0 };
    try {
      if (c.late && !parts.length) return;
      const client = await this.session.begin();
      await inTransaction(client, 'load into redshift', this.where, async (q) => {
        await q(`SET LOCAL statement_timeout = ${LOAD_TIMEOUT_MS}`);
        const cols = await ensureTable(q, this.dialect, this.ref, layout);
        if (!c.late) {
          const del = deleteWindowSql(this.dialect, this.ref, layout.mode, c.window);
          await q(del.text, del.values);
        }
        if (this.config.staging) {
          const st = stagedLoadStatements(this.ref, layout, c, parts.map((p) => p.object!), { iamRole: this.config.staging.iam_role, region: this.config.staging.s3.region });
          for (const s of st) await q(s.text, s.values);
        } else {
          fit = await this.insertParts(q, layout, c, parts.map((p) => p.path!), cols);
        }
        // Each request_id once: the window's rows replace their copies in other windows.
        const sup = supersedeSql(this.dialect, this.ref, layout, c.window, c.late);
        if (sup && parts.length) await q(sup.text, sup.values);
      }, true);
      this.env.log.verbose(`redshift: window ${windowValues(c.window).join(' → ')} loaded into ${this.ref.schema}.${this.ref.table}`);
    } finally {
      await this.unstage(c.parts.map((p) => p.key));
    }
    return fitWarnings(fit);
  }

  /** Replays the spooled parts as batched INSERTs (late rows via a TEMP stage, to skip known request_ids). */
  private async insertParts(q: Query, layout: TableLayout, c: CommitInfo, paths: string[], cols: Map<string, string>): Promise<FitCounts> {
    if (!paths.length) return { nul: 0, truncated: 0 };
    const viaStage = c.late && layout.keyed;
    if (viaStage) await q(createStageSql(this.ref, LATE_STAGE));
    const superColumns = new Set(layout.recordColumns.filter((col) => col.type === 'json' && cols.get(col.name.toLowerCase()) === 'super').map((col) => col.name.toLowerCase()));
    const counts = await replayParts(q, paths, {
      target: viaStage ? quoteIdent(LATE_STAGE) : qualified(this.ref), layout, window: c.window, batchRows: this.batchRows, superColumns, dedupe: viaStage, where: this.where,
    });
    if (counts.truncated) this.env.log.warn(`redshift: ${counts.truncated} value(s) over ${VARCHAR_MAX_BYTES} bytes were cut to fit VARCHAR(${VARCHAR_MAX_BYTES}) (ending in "${TRUNCATION_MARKER}")`);
    if (counts.nul) this.env.log.warn(`redshift: ${counts.nul} U+0000 character(s), which the table cannot hold, were replaced by U+FFFD`);
    if (viaStage) {
      const ins = insertFromStageSql(this.dialect, { target: this.ref, stage: quoteIdent(LATE_STAGE), layout, window: c.window, late: true, windowFromStage: true });
      await q(ins.text, ins.values);
      await q(`DROP TABLE ${quoteIdent(LATE_STAGE)}`);
    }
    return counts;
  }

  /** Staged files and objects live only until their commit (whatever its outcome). */
  private async unstage(keys: readonly string[]): Promise<void> {
    for (const k of keys) {
      const s = this.staged.get(k);
      this.staged.delete(k);
      await removeSpooled([s?.path]);
      if (s?.object) {
        const store = await this.stagingStore();
        await store.delete(s.object.key).catch((err: unknown) => this.env.log.warn(`could not remove the staged object s3://${s.object!.bucket}/${s.object!.key}: ${(err as Error).message}`));
      }
    }
  }

  async countWindow(w: { start: number; end: number }): Promise<number> {
    const client = await this.session.connect();
    try {
      return await countWindowIn(asQuery(client), this.dialect, this.ref, w);
    } catch (err) {
      throw sqlError('count the window in redshift', err, this.where);
    }
  }

  async close(): Promise<void> {
    await this.unstage(this.staged.keys());
    await this.session.close();
    if (this.s3) await (await this.s3.catch(() => null))?.close?.().catch(() => {});
  }
}

export const createRedshiftDestination: DestinationFactory = async (config: RedshiftConfig, env: DestinationEnv) => new RedshiftDestination(config, env);
