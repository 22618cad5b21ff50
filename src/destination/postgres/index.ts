import { pgDeadlines } from '../../util/pg-timeouts.js';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { CliError, ExitCode } from '../../errors.js';
import { redactUrl } from '../../source/postgres/postgres-source.js';
import { tableLayout, windowValues } from '../warehouse/layout.js';
import { checkTableAccess, countWindowIn, ensureTable, inTransaction, sqlError, asQuery, type TableRef } from '../warehouse/pg-wire.js';
import { deleteWindowSql } from '../warehouse/sql.js';
import { assertLoadFormat } from '../warehouse/staging.js';
import type { CommitInfo, CommitResult, Destination, DestinationEnv, DestinationFactory, PartInfo, PartUpload } from '../types.js';
import { POSTGRES_DIALECT, requestIdIndexName, uniqueIndexSql } from './dialect.js';
import { COPY_SQL, CREATE_STAGE_SQL, STAGE, createNulScrubber, pgInsertSql } from './stage.js';
import type { PostgresConfig } from './schema.js';

export { asQuery } from '../warehouse/pg-wire.js';
export { createNulScrubber, pgInsertSql } from './stage.js';

const APP = 'bifrost-logs';
const CONNECT_TIMEOUT_MS = 10_000;
/** A whole window's load (DELETE + INSERT … SELECT) may take a while; a stuck lock must not hang forever. */
const LOAD_TIMEOUT = '30min';
const LOAD_TIMEOUT_MS = 30 * 60_000;
const SHORT_TIMEOUT = "'60s'";

/**
 * PostgreSQL: each part is streamed with COPY FROM STDIN into a session TEMP
 * table (one jsonb per line) on one dedicated connection; `commit` then runs
 * one transaction: create/alter the table, delete the window, INSERT … SELECT
 * from the stage. A failure anywhere rolls back to the table as it was.
 */
class PostgresDestination implements Destination {
  readonly type = 'postgres';
  readonly kind = 'table' as const;
  readonly loadFormat = 'jsonl' as const;
  private readonly ref: TableRef;
  private readonly where: string;
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  /** Part key → its id in the stage, for parts staged on the current connection. */
  private readonly staged = new Map<string, number>();
  /** U+0000 characters each staged part had replaced (jsonb cannot hold them). */
  private readonly nulReplaced = new Map<string, number>();
  private nextPartId = 0;

  constructor(private readonly config: PostgresConfig, private readonly env: DestinationEnv) {
    this.ref = { schema: config.schema ?? 'public', table: config.table };
    this.where = `${redactUrl(config.url)} ${config.schema ?? 'public'}.${config.table}`;
  }

  private newClient(): pg.Client {
    return new pg.Client({ connectionString: this.config.url, application_name: APP, ...pgDeadlines(this.config.request_timeout_secs ?? CONNECT_TIMEOUT_MS / 1000, LOAD_TIMEOUT_MS) });
  }

  /** The dedicated session that holds the stage from the first part to the commit. */
  private async session(): Promise<pg.Client> {
    if (this.client) return this.client;
    if (this.connecting) return this.connecting;
    this.connecting = (async () => {
      const client = this.newClient();
      client.on('error', () => { this.dropSession(client); });
      client.on('end', () => { this.dropSession(client); });
      try {
        await client.connect();
        await client.query(CREATE_STAGE_SQL);
      } catch (err) {
        await client.end().catch(() => {});
        throw sqlError('connect to postgres', err, this.where);
      }
      this.client = client;
      return client;
    })();
    try {
      return await this.connecting;
    } finally {
      this.connecting = null;
    }
  }

  /** A lost session loses its stage with it. */
  private dropSession(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.staged.clear();
    client.end().catch(() => {});
  }

  async check(): Promise<void> {
    try {
      await checkTableAccess(this.newClient(), SHORT_TIMEOUT, POSTGRES_DIALECT, this.ref);
    } catch (err) {
      throw sqlError('check postgres', err, this.where);
    }
  }

  async openPart(part: PartInfo): Promise<PartUpload> {
    assertLoadFormat(part, 'jsonl', 'postgres');
    const client = await this.session();
    const id = ++this.nextPartId;
    this.staged.delete(part.key);
    let stream: ReturnType<typeof copyStreams.from>;
    try {
      // Rows of this COPY carry the part's id, so a retried or abandoned part never mixes in.
      await client.query(`ALTER TABLE ${STAGE} ALTER COLUMN part SET DEFAULT ${id}`);
      stream = client.query(copyStreams.from(COPY_SQL));
    } catch (err) {
      throw sqlError(`stage ${part.key} in postgres`, err, this.where);
    }
    let failure: unknown = null;
    stream.on('error', (err) => { failure ??= err; });
    const fail = (err: unknown) => sqlError(`stage ${part.key} in postgres`, err, this.where);
    const nul = createNulScrubber();
    return {
      write: async (raw) => {
        if (failure) throw fail(failure);
        const chunk = nul.push(raw);
        if (chunk.length && !stream.write(chunk)) {
          await Promise.race([once(stream, 'drain').catch(() => {}), finished(stream).catch(() => {})]);
          if (failure) throw fail(failure);
        }
      },
      finish: async () => {
        if (failure) throw fail(failure);
        const tail = nul.end();
        stream.end(tail.length ? tail : undefined);
        try {
          await finished(stream);
        } catch (err) {
          throw fail(failure ?? err);
        }
        if (failure) throw fail(failure);
        this.staged.set(part.key, id);
        this.nulReplaced.set(part.key, nul.replaced);
      },
      abort: async () => {
        this.staged.delete(part.key);
        if (stream.writableFinished || stream.closed) return;
        // CopyFail: the server drops every row of this COPY.
        stream.destroy(new Error('part abandoned'));
        const timer = new Promise<'timeout'>((r) => setTimeout(r, 10_000, 'timeout').unref());
        const r = await Promise.race([finished(stream).then(() => 'done', () => 'done'), timer]);
        if (r === 'timeout') this.dropSession(client);
      },
    };
  }

  async commit(c: CommitInfo): Promise<CommitResult | void> {
    const layout = tableLayout(c.schema, c.aggregated);
    const ids: number[] = [];
    for (const p of c.parts) {
      const id = this.staged.get(p.key);
      if (id === undefined) {
        throw new CliError(`load into postgres (${this.where})`, `part ${p.key} is no longer staged (the connection was lost)`, { exitCode: ExitCode.unavailable, hint: 'run the export again: the window is re-delivered whole' });
      }
      ids.push(id);
    }
    if (c.late && !ids.length) return;
    const client = await this.session();
    try {
      await inTransaction(client, 'load into postgres', this.where, async (q) => {
        await q(`SET LOCAL statement_timeout = '${LOAD_TIMEOUT}'`);
        await ensureTable(q, POSTGRES_DIALECT, this.ref, layout);
        if (layout.keyed) {
          const r = await q(`SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 AND indexname = $3`, [this.ref.schema, this.ref.table, requestIdIndexName(this.ref).slice(0, 63)]);
          if (!r.rows.length) await q(uniqueIndexSql(this.ref));
        }
        if (!c.late) {
          const del = deleteWindowSql(POSTGRES_DIALECT, this.ref, layout.mode, c.window);
          await q(del.text, del.values);
        }
        if (ids.length) {
          // ON CONFLICT on the unique request_id: the newest load wins (late rows only add new ones).
          const ins = pgInsertSql(this.ref, layout, c, ids);
          await q(ins.text, ins.values);
        }
      });
      this.env.log.verbose(`postgres: window ${windowValues(c.window).join(' → ')} loaded into ${this.ref.schema}.${this.ref.table} (${c.parts.length} part(s))`);
    } finally {
      this.staged.clear();
      if (this.client === client) await client.query(`TRUNCATE ${STAGE}`).catch(() => this.dropSession(client));
    }
    const nul = c.parts.reduce((a, p) => a + (this.nulReplaced.get(p.key) ?? 0), 0);
    this.nulReplaced.clear();
    if (!nul) return;
    this.env.log.warn(`postgres: ${nul} U+0000 character(s), which the table cannot hold, were replaced by U+FFFD`);
    return { warnings: { nul_replaced: nul } };
  }

  async countWindow(w: { start: number; end: number }): Promise<number> {
    const client = await this.session();
    try {
      return await countWindowIn(asQuery(client), POSTGRES_DIALECT, this.ref, w);
    } catch (err) {
      throw sqlError('count the window in postgres', err, this.where);
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.staged.clear();
    await client?.end().catch(() => {});
  }
}

export const createPostgresDestination: DestinationFactory = async (config: PostgresConfig, env: DestinationEnv) => new PostgresDestination(config, env);
