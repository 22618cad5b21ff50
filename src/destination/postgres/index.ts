import { pgDeadlines } from '../../util/pg-timeouts.js';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { CliError, ExitCode } from '../../errors.js';
import { redactUrl } from '../../source/postgres/postgres-source.js';
import {
  POSTGRES_DIALECT, checkTableAccess, countWindowSql, deleteWindowSql, ensureTable, existingColumns, qualified, quoteIdent,
  sqlError, tableLayout, windowValues, type Query, type TableLayout, type TableRef,
} from '../sql-table.js';
import type { CommitInfo, Destination, DestinationEnv, DestinationFactory, PartInfo, PartUpload } from '../types.js';
import type { PostgresConfig } from './schema.js';

const APP = 'bifrost-logs';
const CONNECT_TIMEOUT_MS = 10_000;
/** A whole window's load (DELETE + INSERT … SELECT) may take a while; a stuck lock must not hang forever. */
const LOAD_TIMEOUT = '30min';
const LOAD_TIMEOUT_MS = 30 * 60_000;
const SHORT_TIMEOUT = '60s';
const STAGE = 'pg_temp.bifrost_logs_stage';
/**
 * One NDJSON line is one CSV field: quote and delimiter are control bytes
 * JSON never holds unescaped, so backslashes and quotes pass through as they are.
 */
const COPY_SQL = `COPY ${STAGE} (doc) FROM STDIN WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`;

const EMPTY = Buffer.alloc(0);
const NUL_ESCAPE = Buffer.from('\\u0000');

/**
 * jsonb (and text) cannot hold U+0000: its JSON escape `\u0000` becomes
 * `\ufffd`, the replacement character, so one stray NUL never fails a window.
 * Works on whole lines (a JSON text never holds a raw newline), so an escape
 * split across chunks is still seen; an escaped backslash before `u0000` is left alone.
 */
export function createNulScrubber(): { push(chunk: Buffer): Buffer; end(): Buffer } {
  let carry: Buffer[] = [];
  const fix = (b: Buffer): Buffer => (b.indexOf(NUL_ESCAPE) < 0 ? b : Buffer.from(b.toString('utf8').replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd'), 'utf8'));
  return {
    push(chunk) {
      const nl = chunk.lastIndexOf(0x0a);
      if (nl < 0) { carry.push(Buffer.from(chunk)); return EMPTY; }
      const head = carry.length ? Buffer.concat([...carry, chunk.subarray(0, nl + 1)]) : chunk.subarray(0, nl + 1);
      carry = nl + 1 < chunk.length ? [Buffer.from(chunk.subarray(nl + 1))] : [];
      return fix(head);
    },
    end() {
      const rest = Buffer.concat(carry);
      carry = [];
      return fix(rest);
    },
  };
}

/**
 * The INSERT … SELECT that moves staged documents into the table: each
 * document becomes a row of the table's own type (so every value is cast by
 * the column it lands in), aggregated rows get the window, late rows skip
 * request_ids already present, a re-delivered record replaces its older copy.
 */
export function pgInsertSql(t: TableRef, layout: TableLayout, c: { late: boolean; window: { start: number; end: number } }, partIds: number[]): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const names = layout.columns.map((col) => quoteIdent(col.name));
  const select = layout.columns.map((col) => {
    if (col.window) { values.push(windowValues(c.window)[col.window === 'start' ? 0 : 1]); return `$${values.length}::timestamptz`; }
    return `r.${quoteIdent(col.name)}`;
  });
  values.push(partIds);
  let text = `INSERT INTO ${qualified(t)} (${names.join(', ')}) SELECT ${select.join(', ')} FROM ${STAGE} s CROSS JOIN LATERAL jsonb_populate_record(NULL::${qualified(t)}, s.doc) r WHERE s.part = ANY($${values.length}::integer[])`;
  if (layout.keyed) {
    const rid = quoteIdent('request_id');
    if (c.late) text += ` ON CONFLICT (${rid}) DO NOTHING`;
    else text += ` ON CONFLICT (${rid}) DO UPDATE SET ${layout.recordColumns.map((col) => `${quoteIdent(col.name)} = EXCLUDED.${quoteIdent(col.name)}`).join(', ')}`;
  }
  return { text, values };
}

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
        await client.query(`CREATE TEMP TABLE IF NOT EXISTS bifrost_logs_stage (part integer, doc jsonb)`);
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
    const client = this.newClient();
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query(`SET statement_timeout = '${SHORT_TIMEOUT}'`);
      await checkTableAccess(asQuery(client), POSTGRES_DIALECT, this.ref);
    } catch (err) {
      throw sqlError('check postgres', err, this.where);
    } finally {
      await client.end().catch(() => {});
    }
  }

  async openPart(part: PartInfo): Promise<PartUpload> {
    if (part.format !== 'jsonl' || part.contentEncoding) {
      throw new CliError('load into postgres', `parts must be uncompressed jsonl (got ${part.format}${part.contentEncoding ? `, ${part.contentEncoding}` : ''})`, { exitCode: ExitCode.software });
    }
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

  async commit(c: CommitInfo): Promise<void> {
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
    const q = asQuery(client);
    try {
      await q('BEGIN');
      await q(`SET LOCAL statement_timeout = '${LOAD_TIMEOUT}'`);
      await ensureTable(q, POSTGRES_DIALECT, this.ref, layout);
      if (!c.late) {
        const del = deleteWindowSql(this.ref, layout.mode, c.window);
        await q(del.text, del.values);
      }
      if (ids.length) {
        const ins = pgInsertSql(this.ref, layout, c, ids);
        await q(ins.text, ins.values);
      }
      await q('COMMIT');
      this.env.log.verbose(`postgres: window ${windowValues(c.window).join(' → ')} loaded into ${this.ref.schema}.${this.ref.table} (${c.parts.length} part(s))`);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw sqlError('load into postgres', err, this.where);
    } finally {
      this.staged.clear();
      if (this.client === client) await client.query(`TRUNCATE ${STAGE}`).catch(() => this.dropSession(client));
    }
  }

  async countWindow(w: { start: number; end: number }): Promise<number> {
    const client = await this.session();
    const q = asQuery(client);
    try {
      const cols = await existingColumns(q, POSTGRES_DIALECT, this.ref);
      if (!cols.size) return 0;
      const s = countWindowSql(this.ref, cols.has('timestamp'), w);
      const r = await q<{ n: string }>(s.text, s.values);
      return Number(r.rows[0]?.n ?? 0);
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

export function asQuery(client: pg.Client): Query {
  return (async (text: string, values?: unknown[]) => client.query(text, values)) as Query;
}

export const createPostgresDestination: DestinationFactory = async (config: PostgresConfig, env: DestinationEnv) => new PostgresDestination(config, env);
