import pg from 'pg';
import { freePort } from '../support/services.js';
import type { DestinationEnv } from '../../src/destination/types.js';
import { createPostgresDestination } from '../../src/destination/postgres/index.js';
import { createRedshiftDestination } from '../../src/destination/redshift/index.js';
import type { Harness, Row } from './warehouse-contract.js';
import { isoOf } from './warehouse-contract.js';
import type { Rec } from './warehouse-data.js';

/**
 * The PostgreSQL-wire warehouses on an embedded PostgreSQL: `postgres` (COPY
 * into a session stage) and `redshift` without staging (batched INSERTs),
 * the latter's SQL being what both servers accept.
 */

const TYPES = {
  postgres: { timestamp: 'timestamp with time zone', request_id: 'text', provider: 'text', status_code: 'integer', input_tokens: 'integer', bytes_total: 'bigint', cost_usd: 'double precision', stream: 'boolean', params: 'jsonb', content_summary: 'text' },
  redshift: { timestamp: 'timestamp with time zone', request_id: 'character varying', provider: 'character varying', status_code: 'integer', input_tokens: 'integer', bytes_total: 'bigint', cost_usd: 'double precision', stream: 'boolean', params: 'character varying', content_summary: 'character varying' },
};
const TIMESTAMPS = new Set(['timestamp', 'window_start', 'window_end']);

export function redshiftConfigFor(url: string, table: string, over: { user?: string; password?: string; port?: number } = {}) {
  const u = new URL(url);
  return {
    host: u.hostname, port: over.port ?? Number(u.port || 5432), database: decodeURIComponent(u.pathname.slice(1)),
    schema: 'public', table, ssl: false, insert_batch_rows: 7,
    credentials: { username: over.user ?? decodeURIComponent(u.username), password: over.password ?? decodeURIComponent(u.password) },
  };
}

/** U+0000 → U+FFFD: everywhere (jsonb and text, postgres), or in text columns only (redshift keeps JSON's escape). */
function storedAs(kind: 'postgres' | 'redshift'): (r: Rec) => Rec {
  const deep = (v: unknown): unknown => (typeof v === 'string' ? v.replace(/\0/g, '\uFFFD') : Array.isArray(v) ? v.map(deep) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deep(x)])) : v);
  return (r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, kind === 'postgres' || typeof v === 'string' ? deep(v) : v]));
}

export function sqlHarness(kind: 'postgres' | 'redshift', get: () => { url: string; admin: pg.Client }, env: () => DestinationEnv): Harness {
  const admin = () => get().admin;
  const columns = async (t: string) => (await admin().query(`SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`, [t])).rows;
  return {
    name: kind,
    expectedTypes: TYPES[kind],
    aggTypes: { total_requests: 'bigint', total_cost: 'double precision', window_start: 'timestamp with time zone', window_end: 'timestamp with time zone' },
    nul: true,
    stored: storedAs(kind),
    make: (table, over = {}) => {
      const o = over as { url?: string; user?: string; password?: string; port?: number };
      if (kind === 'redshift') return createRedshiftDestination(redshiftConfigFor(o.url ?? get().url, table, o), env());
      const u = new URL(o.url ?? get().url);
      if (o.password !== undefined) u.password = o.password;
      if (o.port !== undefined) u.port = String(o.port);
      return createPostgresDestination({ url: u.toString(), schema: 'public', table }, env());
    },
    async rows(t) {
      const exists = (await columns(t)).length > 0;
      if (!exists) return [];
      const rows = (await admin().query(`SELECT * FROM public."${t}"`)).rows as Row[];
      return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => {
        if (TIMESTAMPS.has(k)) return [k, isoOf(v)];
        // Redshift's VARCHAR holds the JSON text.
        if (kind === 'redshift' && k === 'params' && typeof v === 'string') return [k, JSON.parse(v)];
        return [k, v];
      }))).sort((a, b) => String(a.request_id ?? '').localeCompare(String(b.request_id ?? '')));
    },
    types: async (t) => Object.fromEntries((await columns(t)).map((c) => [c.column_name, c.data_type])),
    leftovers: async () => (await admin().query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE '%bifrost_logs%'`)).rows.map((r) => r.table_name as string),
    spoil: (r) => ({ ...r, input_tokens: 'not a number' }),
    sql: {
      kind,
      url: () => get().url,
      admin,
      allNullable: async (t) => (await columns(t)).every((c) => c.is_nullable === 'YES'),
      tables: async () => (await admin().query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)).rows.map((r) => r.table_name as string),
      closedPort: async () => ({ port: await freePort() }),
    },
  };
}
