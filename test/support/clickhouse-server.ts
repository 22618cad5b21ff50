/**
 * A ClickHouse HTTP endpoint for the tests: the real engine (chdb, embedded
 * ClickHouse) behind a small HTTP front that speaks enough of ClickHouse's
 * HTTP interface for `@clickhouse/client`:
 *
 *  - GET /ping, GET|POST /?query=…, the query in the body (or the `query`
 *    param with the body as INSERT data), `param_*` bound parameters
 *    (server-side binding by the engine), `database`, `default_format`, a
 *    FORMAT clause, settings as URL params, `query_id`;
 *  - basic auth (or X-ClickHouse-User/-Key, or user/password params) checked
 *    against one configured user: a wrong one is ClickHouse's code 516;
 *  - gzip-compressed request bodies;
 *  - responses streamed chunk by chunk from the engine with X-ClickHouse-*
 *    headers; errors as ClickHouse sends them: status 500 (404 for unknown
 *    tables/databases, 403 for auth), `X-ClickHouse-Exception-Code` and the
 *    body `Code: N. DB::Exception: …`.
 *
 * Every query runs on one persistent chdb Session, one at a time, so the SQL,
 * the table engines, FINAL and the formats are ClickHouse's own; only the
 * transport is this file's.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { randomUUID } from 'node:crypto';
import { Session } from 'chdb';

export interface ClickHouseServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** Runs SQL directly on the engine (test set-up and truth). */
  exec(sql: string, format?: string): Promise<string>;
  /** Queries run through the endpoint, in order (for assertions about what was pushed down). */
  readonly log: string[];
  stop(): Promise<void>;
}

/** URL params that are the HTTP transport's, not settings. */
const TRANSPORT = new Set([
  'query', 'database', 'default_format', 'query_id', 'session_id', 'session_timeout', 'session_check', 'user',
  'password', 'enable_http_compression', 'wait_end_of_query', 'send_progress_in_http_headers',
  'http_headers_progress_interval_ms', 'buffer_size', 'compress', 'decompress', 'client_protocol_version',
  'http_zlib_compression_level', 'role',
]);

const ESC: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '0': '\0', a: '\x07', v: '\v' };
/** Undo the escaping a client applies to a String `param_*` value. */
function unescape(s: string): string {
  return s.replace(/\\(.)/gs, (_, c: string) => ESC[c] ?? c);
}

/**
 * The engine's binder takes JS values and writes their wire form itself, so a
 * wire value is handed over as the JS value it encodes: as is when it holds no
 * escapes (numbers, dates, plain strings), unescaped for a String, and parsed
 * for an array of quoted strings / numbers.
 */
function paramValue(wire: string, type: string | undefined): unknown {
  if (!wire.includes('\\')) return wire;
  const t = (type ?? 'String').replace(/\s+/g, '');
  if (!/^Array\(/.test(t)) return unescape(wire);
  const out: unknown[] = [];
  const re = /\s*(?:'((?:[^'\\]|\\.)*)'|(NULL)|([^,\]]+))\s*(?:,|\])/gsy;
  re.lastIndex = wire.indexOf('[') + 1;
  for (let m = re.exec(wire); m; m = re.exec(wire)) {
    out.push(m[1] !== undefined ? unescape(m[1]) : m[2] ? null : Number(m[3]));
  }
  return out;
}

const ident = (s: string) => '`' + s.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';

function errorCode(e: unknown): number {
  const x = e as { clickhouseCode?: number; message?: string };
  if (typeof x?.clickhouseCode === 'number') return x.clickhouseCode;
  const m = /Code: (\d+)/.exec(String(x?.message ?? e));
  return m ? Number(m[1]) : 1000;
}

function errorBody(e: unknown, code: number): string {
  const msg = String((e as Error)?.message ?? e).trim();
  return /^Code: \d+\./.test(msg) ? msg + '\n' : `Code: ${code}. DB::Exception: ${msg}. (UNKNOWN)\n`;
}

function statusFor(code: number): number {
  if (code === 516 || code === 192 || code === 194) return 403;
  if (code === 60 || code === 81) return 404;
  return 500;
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  const raw = Buffer.concat(parts);
  const enc = String(req.headers['content-encoding'] ?? '').toLowerCase();
  return enc === 'gzip' ? gunzipSync(raw) : raw;
}

export async function startClickHouse(opts: { user?: string; password?: string; database?: string } = {}): Promise<ClickHouseServer> {
  const user = opts.user ?? 'bifrost';
  const password = opts.password ?? 'ch-secret-' + randomUUID().slice(0, 8);
  const database = opts.database ?? 'bifrost';
  const dir = mkdtempSync(join(tmpdir(), 'bl-chdb-'));
  // The server's defaults where chdb's differ: 64-bit integers are quoted in JSON formats.
  const session = new Session(join(dir, 'data'), { connectionArgs: ['--output_format_json_quote_64bit_integers=1'] });
  const log: string[] = [];
  // One query at a time on the session (one active stream per session).
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => undefined);
    return p;
  };
  await session.queryAsync(`CREATE DATABASE IF NOT EXISTS ${ident(database)}`);

  const exec = (sql: string, format = 'TabSeparated') =>
    serial(async () => {
      await session.queryAsync(`USE ${ident(database)}`);
      return (await session.queryAsync(sql, { format })).text();
    });

  function credentials(req: IncomingMessage, url: URL): { u: string; p: string } {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const s = Buffer.from(auth.slice(6), 'base64').toString('utf8');
      const i = s.indexOf(':');
      return { u: decodeURIComponent(s.slice(0, i)), p: decodeURIComponent(s.slice(i + 1)) };
    }
    const hu = req.headers['x-clickhouse-user'];
    if (typeof hu === 'string') return { u: hu, p: String(req.headers['x-clickhouse-key'] ?? '') };
    return { u: url.searchParams.get('user') ?? 'default', p: url.searchParams.get('password') ?? '' };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/ping' || (url.pathname === '/' && req.method === 'GET' && !url.searchParams.has('query'))) {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' }).end('Ok.\n');
      return;
    }
    const queryId = url.searchParams.get('query_id') ?? randomUUID();
    const fail = (e: unknown) => {
      const code = errorCode(e);
      if (!res.headersSent) {
        res.writeHead(statusFor(code), {
          'Content-Type': 'text/plain; charset=UTF-8',
          'X-ClickHouse-Exception-Code': String(code),
          'X-ClickHouse-Query-Id': queryId,
          'X-ClickHouse-Server-Display-Name': 'chdb',
        });
        res.end(errorBody(e, code));
      } else {
        // Mid-stream: ClickHouse writes the exception into the body and ends.
        res.end('\n' + errorBody(e, code));
      }
    };
    const { u, p } = credentials(req, url);
    if (u !== user || p !== password) {
      res.writeHead(403, { 'X-ClickHouse-Exception-Code': '516', 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end(`Code: 516. DB::Exception: ${u}: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)\n`);
      return;
    }
    const data = await body(req);
    let sql = url.searchParams.get('query') ?? '';
    if (sql) { if (data.length) sql += '\n' + data.toString('utf8'); }
    else sql = data.toString('utf8');
    if (!sql.trim()) { fail(new Error('Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)')); return; }
    const params: Record<string, string> = {};
    const settings: string[] = [];
    for (const [k, v] of url.searchParams) {
      if (k.startsWith('param_')) params[k.slice(6)] = v;
      else if (!TRANSPORT.has(k)) settings.push(`${k} = ${/^-?\d+(\.\d+)?$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`}`);
    }
    const db = url.searchParams.get('database') || String(req.headers['x-clickhouse-database'] ?? '') || database;
    const format = url.searchParams.get('default_format') || String(req.headers['x-clickhouse-format'] ?? '') || 'TabSeparated';
    const bound: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(params)) {
      const m = new RegExp('\\{\\s*' + k + '\\s*:\\s*([^}]+)\\}').exec(sql);
      bound[k] = paramValue(v, m?.[1]);
    }
    log.push(sql);
    await serial(async () => {
      const prefix = `USE ${ident(db)}; ${settings.length ? `SET ${settings.join(', ')}; ` : ''}`;
      const isRead = /^\s*(\(?\s*SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b/i.test(sql);
      const headers = {
        'Content-Type': 'text/plain; charset=UTF-8',
        'X-ClickHouse-Query-Id': queryId,
        'X-ClickHouse-Format': format || 'TabSeparated',
        'X-ClickHouse-Timezone': 'UTC',
        'X-ClickHouse-Server-Display-Name': 'chdb',
      };
      try {
        if (!isRead) {
          const r = await session.queryBindAsync(prefix + sql, bound, { format: format || 'TabSeparated' });
          res.writeHead(200, { ...headers, 'X-ClickHouse-Summary': JSON.stringify({ read_rows: String(r.rowsRead), read_bytes: String(r.bytesRead), written_rows: '0', written_bytes: '0', total_rows_to_read: '0', result_rows: '0', result_bytes: '0', elapsed_ns: String(Math.round(r.elapsed * 1e9)) }) });
          res.end(Buffer.from(r.bytes()));
          return;
        }
        // Reads stream: chunks leave as the engine produces them, with backpressure.
        await session.queryAsync(`USE ${ident(db)}`);
        if (settings.length) await session.queryAsync(`SET ${settings.join(', ')}`);
        const stream = session.queryStreamBind(sql, bound, { format: format || 'TabSeparated' });
        let first = true;
        try {
          for await (const chunk of stream) {
            if (first) { res.writeHead(200, headers); first = false; }
            if (!res.write(Buffer.from(chunk.raw()))) await new Promise((r) => res.once('drain', r));
            if (res.destroyed) { stream.cancel(); return; }
          }
        } finally {
          if (!stream.closed) stream.cancel();
        }
        if (first) res.writeHead(200, headers);
        res.end();
      } catch (e) {
        fail(e);
      }
    });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e) => { try { res.destroy(e as Error); } catch { /* gone */ } });
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', () => resolve()); });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`, port, user, password, database, exec, log,
    async stop() {
      server.closeAllConnections?.();
      await new Promise<void>((r) => server.close(() => r()));
      await chain.catch(() => undefined);
      session.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
