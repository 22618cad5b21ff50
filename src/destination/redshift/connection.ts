import pg from 'pg';
import { configError } from '../../errors.js';
import { pgDeadlines } from '../../util/pg-timeouts.js';
import { sqlError, type TableRef } from '../warehouse/pg-wire.js';
import type { RedshiftConfig } from './schema.js';

const APP = 'bifrost-logs';
const CONNECT_TIMEOUT_MS = 15_000;
/** statement_timeout in ms (a plain integer: both Redshift and PostgreSQL take it). */
export const LOAD_TIMEOUT_MS = 30 * 60_000;
export const SHORT_TIMEOUT_MS = 60_000;
const DEFAULT_PORT = 5439;

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

export function describe(c: RedshiftConfig, ref: TableRef): string {
  let host: string;
  try { host = redshiftHost(c); } catch { host = c.host ?? c.cluster ?? '?'; }
  return `redshift://${c.credentials?.username ? `${c.credentials.username}@` : ''}${host}:${c.port ?? DEFAULT_PORT}/${c.database} ${ref.schema}.${ref.table}`;
}

/** One session, opened on first use; an idle connection the server dropped is replaced. */
export class RedshiftSession {
  private client: pg.Client | null = null;
  constructor(private readonly config: RedshiftConfig, private readonly where: string) {}

  newClient(): pg.Client {
    const c = new pg.Client(redshiftClientConfig(this.config));
    const drop = () => { if (this.client === c) { this.client = null; c.end().catch(() => {}); } };
    c.on('error', drop);
    c.on('end', drop);
    return c;
  }

  async connect(): Promise<pg.Client> {
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
  async begin(): Promise<pg.Client> {
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

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }
}
