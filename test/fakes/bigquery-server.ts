/**
 * A fake BigQuery for tests: an HTTP server on 127.0.0.1 speaking the subset of
 * the BigQuery v2 REST API that @google-cloud/bigquery 8 uses, with in-memory
 * tables and a very small GoogleSQL interpreter, so the real SDK is exercised
 * unmodified, over HTTP.
 *
 * POINTING THE SDK HERE (what the product code must do with `api_endpoint`):
 *   const bq = new BigQuery({ projectId: fake.projectId, apiEndpoint: fake.apiEndpoint,
 *                             credentials: { client_email, private_key, universe_domain } });
 * The BigQuery client always authenticates (unlike Storage it has no "custom endpoint ⇒ no auth"
 * rule). `fake.credentials` is a key of its own universe (`universe_domain`, as every Google key
 * names one): outside googleapis.com google-auth-library signs its own JWT (RS256, iss =
 * client_email, scope = bigquery) and sends it as the bearer token, so no token server is
 * involved. A googleapis.com key would be exchanged at https://oauth2.googleapis.com/token
 * (hard-coded in google-auth-library 10; a key's token_uri is ignored), which fails offline. Without any
 * credentials, application-default credentials are looked up; importing this module sets
 * METADATA_SERVER_DETECTION=none (unless set) so that ends at once in "Could not load the default
 * credentials", after which the SDK sends the request unauthenticated.
 * `fake.credentials` is a key this server accepts; a JWT signed with another key, for another
 * client_email, or expired gets 401 authError. Requests without Authorization are accepted unless
 * `requireAuth`.
 *
 * ENDPOINTS (under /bigquery/v2/projects/:project, the fake's project only; other projects → 404):
 *   datasets: GET/POST /datasets, GET/DELETE /datasets/:d (deleteContents)
 *   tables:   GET/POST /datasets/:d/tables, GET/PATCH/PUT/DELETE /datasets/:d/tables/:t,
 *             GET /datasets/:d/tables/:t/data (tabledata.list)
 *             A schema patch may only add NULLABLE/REPEATED columns (dropping or retyping → 400).
 *   jobs:     POST /jobs (query jobs), GET /jobs/:id, POST /jobs/:id/cancel,
 *             GET /queries/:id (getQueryResults), POST /queries (jobs.query)
 *   uploads:  POST /upload/bigquery/v2/projects/:p/jobs?uploadType=multipart (what the SDK's
 *             createLoadJob(file) / createWriteStream use), or uploadType=resumable + PUT.
 * Load jobs: sourceFormat NEWLINE_DELIMITED_JSON (gzip accepted) or PARQUET (read with hyparquet);
 * writeDisposition WRITE_APPEND (default) / WRITE_TRUNCATE / WRITE_EMPTY; createDisposition
 * CREATE_IF_NEEDED (needs a schema) / CREATE_NEVER; schemaUpdateOptions ALLOW_FIELD_ADDITION;
 * ignoreUnknownValues; maxBadRecords. A given schema must match the table's (same names and types).
 * Values are checked against column types; a load is all or nothing. Not supported: CSV/AVRO/ORC,
 * sourceUris (gs://), autodetect, copy/extract jobs, streaming inserts (insertAll).
 *
 * SQL (GoogleSQL only; anything else fails the job with invalidQuery "not supported by the fake"):
 *   scripts of statements separated by `;`, with BEGIN [TRANSACTION] / COMMIT [TRANSACTION] /
 *     ROLLBACK [TRANSACTION]: what a transaction does is applied all at once at COMMIT; an error
 *     inside it (or a script ending with it open) discards it all. Statements outside a transaction
 *     apply one by one.
 *   DELETE [FROM] t [[AS] a] WHERE cond
 *   INSERT [INTO] t [(cols)] SELECT … | VALUES (…), (…)   column types must be assignable
 *     (same type, NULL, INT64→FLOAT64), otherwise "Query column N has type X which cannot be
 *     inserted into column c, which has type Y" — e.g. STRING into JSON needs PARSE_JSON.
 *   SELECT [DISTINCT] items [FROM t [[AS] a]] [WHERE …] [GROUP BY …] [ORDER BY … [ASC|DESC]] [LIMIT n [OFFSET m]]
 *     items: *, a.*, expressions [AS name]; no joins, no subqueries in FROM.
 *   DROP TABLE [IF EXISTS] t, TRUNCATE TABLE t
 *   expressions: AND/OR/NOT, = != <> < <= > >=, IS [NOT] NULL, [NOT] IN (list | subquery),
 *     [NOT] EXISTS (subquery, correlated allowed), [NOT] BETWEEN, + - * / ||, CAST/SAFE_CAST,
 *     TIMESTAMP 'literal', @named and ? positional parameters, and the functions COUNT(*|x),
 *     COUNTIF, SUM, AVG, MIN, MAX, ANY_VALUE, PARSE_JSON, SAFE.PARSE_JSON, IF, TO_JSON_STRING, TO_JSON, TIMESTAMP,
 *     CURRENT_TIMESTAMP, UNIX_MICROS, TIMESTAMP_MICROS, COALESCE, IFNULL, LOWER, UPPER, LENGTH, CONCAT.
 *   Comparisons are type-checked: TIMESTAMP vs a STRING *literal* is fine, vs a STRING parameter
 *   or column it is "No matching signature for operator"; JSON is not comparable. A parameter
 *   sent without parameterValue.value is NULL (which is what the SDK sends for
 *   `params: { x: 'iso string' }, types: { x: 'TIMESTAMP' }` — pass a Date or bq.timestamp()).
 *   Table names: `project.dataset.table`, dataset.table, or table with a defaultDataset.
 *   Subqueries are re-run per outer row (fine for test-sized tables).
 *
 * JOBS: the work is done when the job is inserted. A successful job is DONE in the insert answer
 * (unless `runningPolls` > 0: then that many jobs.get / getQueryResults answers say RUNNING /
 * jobComplete:false first). A failed job (bad data, a runtime or type error, an injected failure)
 * answers the insert with RUNNING and reports DONE + errorResult on jobs.get, as BigQuery does for
 * asynchronous failures; a SQL syntax error fails at insert (DONE + errorResult); a failed dry run
 * or jobs.query answers with an HTTP error. Reusing a jobId → 409 duplicate.
 *
 * STORAGE: `tables` maps "dataset.table" → { schema: { fields }, rows, timePartitioning, metadata }.
 * Schema types are reported with BigQuery's legacy names (INTEGER, FLOAT, BOOLEAN, RECORD), as the
 * API does. Row values are plain JS: STRING → string, INTEGER → number (a decimal string beyond
 * 2^53), FLOAT → number, BOOLEAN → boolean, TIMESTAMP → ISO-8601 UTC text ('…T…Z', milliseconds,
 * or microseconds when there are any), JSON → the parsed value, others → strings; NULL → null.
 * API answers encode rows as BigQuery does ({ f: [{ v }] }, every value a string, TIMESTAMP per
 * formatOptions: int64 micros with useInt64Timestamp, ISO with timestampOutputFormat=ISO8601_STRING,
 * float seconds otherwise).
 *
 * Differences from BigQuery: one project, no IAM, no quotas, no table expiration, no partition
 * pruning or clustering, no concurrent-transaction conflicts, no streaming buffer; NDJSON integers
 * beyond 2^53 lose precision (JSON.parse); RECORD/REPEATED columns are stored but not interpreted
 * by SQL.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { loadDiscovery, matchMethod, unknownQueryParams, validateValue, type MatchedMethod } from './discovery/validate.js';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { parquetReadObjects } from 'hyparquet';
import { checkBearer, createFakeServiceAccount, splitMultipart, type FakeServiceAccountKey } from './gcs-server.js';

// With no credentials, google-auth-library would probe the GCE metadata server (slow offline).
process.env.METADATA_SERVER_DETECTION ??= 'none';

// ---------------------------------------------------------------------------------------------
// Types and values

type Field = { name: string; type: string; mode?: string; fields?: Field[]; [k: string]: unknown };
export interface FakeTable {
  schema: { fields: Field[] };
  rows: Record<string, unknown>[];
  timePartitioning?: Record<string, unknown>;
  /** The rest of the table resource (labels, expirationTime, description, creationTime, …). */
  metadata: Record<string, any>;
}

class BqError extends Error {
  constructor(readonly reason: string, message: string, readonly runtime = true) { super(message); }
}
/** Google's discovery document for BigQuery v2 (origin: discovery/README.md). */
const DISCOVERY = loadDiscovery('bigquery.v2.json');

const STATUS: Record<string, number> = {
  notFound: 404, duplicate: 409, invalid: 400, invalidQuery: 400, accessDenied: 403, authError: 401, resourceInUse: 400,
  backendError: 503, internalError: 500, jobInternalError: 400, rateLimitExceeded: 403, quotaExceeded: 403, responseTooLarge: 403,
};
const invalidQuery = (m: string) => new BqError('invalidQuery', m);

/** Timestamps inside the interpreter: microseconds since the epoch. */
class Ts { constructor(readonly us: bigint) {} }
/** JSON values inside the interpreter. */
class Js { constructor(readonly v: unknown) {} }
type V = null | bigint | number | boolean | string | Ts | Js | V[] | Buffer;

const LEGACY: Record<string, string> = { INT64: 'INTEGER', FLOAT64: 'FLOAT', BOOL: 'BOOLEAN', STRUCT: 'RECORD', DECIMAL: 'NUMERIC', BIGDECIMAL: 'BIGNUMERIC' };
const legacy = (t: string) => { const u = String(t ?? 'STRING').toUpperCase(); return LEGACY[u] ?? u; };
const NUMERIC_T = new Set(['INTEGER', 'FLOAT', 'NUMERIC', 'BIGNUMERIC']);

function normFields(fields: Field[] = []): Field[] {
  return fields.map((f) => ({ ...f, type: legacy(f.fields ? 'RECORD' : f.type), mode: (f.mode ?? 'NULLABLE').toUpperCase(), ...(f.fields ? { fields: normFields(f.fields) } : {}) }));
}

const TS_RE = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:[Tt]|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|z|UTC|[+-]\d{1,2}(?::?\d{2})?)?$/;
function parseTs(s: string): bigint | null {
  const m = TS_RE.exec(s.trim());
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', se = '0', frac = '', tz] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se));
  if (Number.isNaN(ms) || Number(mo) > 12 || Number(d) > 31 || Number(h) > 23 || Number(mi) > 59 || Number(se) > 59) return null;
  let us = BigInt(ms) * 1000n + BigInt((frac + '000000').slice(0, 6));
  if (tz && !/^(z|utc)$/i.test(tz)) {
    const t = /^([+-])(\d{1,2}):?(\d{2})?$/.exec(tz)!;
    const off = (Number(t[2]) * 60 + Number(t[3] ?? 0)) * 60_000_000;
    us -= BigInt(t[1] === '-' ? -off : off);
  }
  return us;
}
function isoOf(us: bigint): string {
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
  const iso = new Date(Number(ms)).toISOString();
  const micros = ((us % 1000n) + 1000n) % 1000n;
  return micros === 0n ? iso : `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}
const intOut = (b: bigint): number | string => (b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString());

/** A stored value (see STORAGE above) → the interpreter's. */
function fromStored(type: string, v: unknown): V {
  if (v === null || v === undefined) return null;
  switch (type) {
    case 'INTEGER': return BigInt(v as string);
    case 'FLOAT': return Number(v);
    case 'BOOLEAN': return Boolean(v);
    case 'TIMESTAMP': return v instanceof Ts ? v : new Ts(typeof v === 'number' ? BigInt(Math.round(v * 1000)) : parseTs(String(v)) ?? 0n);
    case 'JSON': return new Js(v);
    case 'RECORD': return v as V;
    default: return Array.isArray(v) ? (v as V[]) : String(v);
  }
}
/** The interpreter's value → the stored form of a column of this type. */
function toStored(type: string, v: V): unknown {
  if (v === null) return null;
  switch (type) {
    case 'INTEGER': return intOut(typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v))));
    case 'FLOAT': return Number(v);
    case 'TIMESTAMP': return isoOf((v as Ts).us);
    case 'JSON': return v instanceof Js ? v.v : v;
    case 'BOOLEAN': return Boolean(v);
    default: return typeof v === 'bigint' ? v.toString() : v;
  }
}

interface Fmt { int64Ts: boolean; isoTs: boolean }
/** A value in BigQuery's row JSON (`{v}` payload). */
function cell(field: Field, v: V, fmt: Fmt): unknown {
  if (v === null || v === undefined) return null;
  if (field.mode === 'REPEATED' && Array.isArray(v)) return v.map((x) => ({ v: cell({ ...field, mode: 'NULLABLE' }, x, fmt) }));
  switch (field.type) {
    case 'TIMESTAMP': {
      const us = (v as Ts).us;
      if (fmt.isoTs) return isoOf(us).replace(/\.(\d{3})Z$/, '.$1000Z');
      if (fmt.int64Ts) return us.toString();
      const neg = us < 0n;
      const a = neg ? -us : us;
      return `${neg ? '-' : ''}${a / 1_000_000n}.${String(a % 1_000_000n).padStart(6, '0')}`;
    }
    case 'JSON': return JSON.stringify(v instanceof Js ? v.v : v);
    case 'RECORD': return { f: (field.fields ?? []).map((sf) => ({ v: cell(sf, fromStored(sf.type, (v as unknown as Record<string, unknown>)[sf.name]), fmt) })) };
    case 'BOOLEAN': return v ? 'true' : 'false';
    default: return typeof v === 'string' ? v : String(v);
  }
}
const apiRows = (fields: Field[], rows: V[][], fmt: Fmt) => rows.map((r) => ({ f: fields.map((f, i) => ({ v: cell(f, r[i] ?? null, fmt) })) }));

// ---------------------------------------------------------------------------------------------
// Load: converting incoming values (NDJSON / Parquet) to a column's stored form

function convertIn(f: Field, v: unknown, src: 'json' | 'parquet'): unknown {
  if (v === null || v === undefined) {
    if (f.mode === 'REQUIRED') throw new Error(`Missing required field: ${f.name}.`);
    return f.mode === 'REPEATED' ? [] : null;
  }
  if (f.mode === 'REPEATED') {
    if (!Array.isArray(v)) throw new Error(`Array specified for non-repeated field: ${f.name}.`);
    return v.map((x) => convertIn({ ...f, mode: 'NULLABLE' }, x, src));
  }
  const bad = (what: string) => new Error(`Could not convert value '${typeof v === 'object' ? JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x)) : String(v)}' to ${what}. Field: ${f.name}; Value: ${String(v)}`);
  switch (f.type) {
    case 'STRING':
      if (typeof v === 'string') return v;
      if (src === 'json' && (typeof v === 'number' || typeof v === 'boolean')) return String(v);
      throw bad('string');
    case 'INTEGER':
      if (typeof v === 'bigint') return intOut(v);
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      if (src === 'json' && typeof v === 'string' && /^[+-]?\d+$/.test(v.trim())) return intOut(BigInt(v.trim()));
      throw bad('integer');
    case 'FLOAT': case 'NUMERIC': case 'BIGNUMERIC':
      if (typeof v === 'number') return v;
      if (typeof v === 'bigint') return Number(v);
      if (src === 'json' && typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
      throw bad('double');
    case 'BOOLEAN':
      if (typeof v === 'boolean') return v;
      if (src === 'json' && typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
      throw bad('bool');
    case 'TIMESTAMP': {
      if (v instanceof Ts) return isoOf(v.us);
      if (v instanceof Date) return isoOf(BigInt(v.getTime()) * 1000n);
      if (src === 'json' && typeof v === 'number') return isoOf(BigInt(Math.round(v * 1e6)));
      const us = typeof v === 'string' ? parseTs(v) : null;
      if (us === null) throw bad('timestamp');
      return isoOf(us);
    }
    case 'JSON':
      if (src === 'parquet' && typeof v === 'string') {
        try { return JSON.parse(v); } catch { throw bad('JSON'); }
      }
      return v;
    case 'DATE':
      if (v instanceof Date) return v.toISOString().slice(0, 10);
      if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v)) return v;
      throw bad('date');
    case 'RECORD': {
      if (typeof v !== 'object' || Array.isArray(v)) throw bad('record');
      const out: Record<string, unknown> = {};
      for (const sf of f.fields ?? []) out[sf.name] = convertIn(sf, (v as Record<string, unknown>)[sf.name], src);
      return out;
    }
    default:
      return typeof v === 'string' ? v : JSON.stringify(v);
  }
}

// ---------------------------------------------------------------------------------------------
// SQL: lexer

type Tok = { t: 'id' | 'qid' | 'str' | 'num' | 'param' | 'pos' | 'op' | 'eof'; v: string; at: number };
const ESC: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', v: '\v', a: '\x07', '\\': '\\', "'": "'", '"': '"', '`': '`', '?': '?' };

function lex(sql: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  let pos = 0;
  const syntax = (m: string) => new BqError('invalidQuery', `Syntax error: ${m} at [${sql.slice(0, i).split('\n').length}:${i - sql.lastIndexOf('\n', i - 1)}]`, false);
  while (i < sql.length) {
    const c = sql[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if ((c === '-' && sql[i + 1] === '-') || c === '#') { const j = sql.indexOf('\n', i); i = j < 0 ? sql.length : j; continue; }
    if (c === '/' && sql[i + 1] === '*') { const j = sql.indexOf('*/', i + 2); if (j < 0) throw syntax('unclosed comment'); i = j + 2; continue; }
    if (c === '`') { const j = sql.indexOf('`', i + 1); if (j < 0) throw syntax('unclosed identifier'); out.push({ t: 'qid', v: sql.slice(i + 1, j), at: i }); i = j + 1; continue; }
    const raw = /[rR]/.test(c) && /['"]/.test(sql[i + 1] ?? '');
    const k = raw ? i + 1 : i;
    const q = sql[k]!;
    if (q === "'" || q === '"') {
      const delim = sql.startsWith(q.repeat(3), k) ? q.repeat(3) : q;
      let j = k + delim.length;
      let s = '';
      for (;;) {
        if (j >= sql.length) throw syntax('unclosed string literal');
        if (sql.startsWith(delim, j)) { j += delim.length; break; }
        const ch = sql[j]!;
        if (ch === '\n' && delim.length === 1) throw syntax('unclosed string literal');
        if (ch === '\\' && !raw) {
          const e = sql[j + 1]!;
          if (e in ESC) { s += ESC[e]; j += 2; continue; }
          const hex = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
          if (hex) { s += String.fromCodePoint(parseInt(sql.slice(j + 2, j + 2 + hex), 16)); j += 2 + hex; continue; }
          if (/[0-7]/.test(e)) { s += String.fromCharCode(parseInt(sql.slice(j + 1, j + 4), 8)); j += 4; continue; }
          throw syntax(`illegal escape sequence \\${e}`);
        }
        if (ch === '\\' && raw) { s += ch + sql[j + 1]; j += 2; continue; }
        s += ch;
        j++;
      }
      out.push({ t: 'str', v: s, at: i });
      i = j;
      continue;
    }
    let m: RegExpExecArray | null;
    if ((m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i, i + 300)))) { out.push({ t: 'id', v: m[0], at: i }); i += m[0].length; continue; }
    if ((m = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(sql.slice(i, i + 100)))) { out.push({ t: 'num', v: m[0], at: i }); i += m[0].length; continue; }
    if (c === '@') {
      if (sql[i + 1] === '@') throw syntax('system variables (@@) are not supported by the fake');
      m = /^@([A-Za-z_][A-Za-z0-9_]*)/.exec(sql.slice(i, i + 200));
      if (!m) throw syntax('bad parameter');
      out.push({ t: 'param', v: m[1]!, at: i });
      i += m[0].length;
      continue;
    }
    if (c === '?') { out.push({ t: 'pos', v: String(pos++), at: i }); i++; continue; }
    const two = sql.slice(i, i + 2);
    if (['<=', '>=', '<>', '!=', '||'].includes(two)) { out.push({ t: 'op', v: two, at: i }); i += 2; continue; }
    if ('(),.;*=<>+-/[]'.includes(c)) { out.push({ t: 'op', v: c, at: i }); i++; continue; }
    throw syntax(`unexpected character "${c}"`);
  }
  out.push({ t: 'eof', v: '', at: sql.length });
  return out;
}

// ---------------------------------------------------------------------------------------------
// SQL: parser

type E =
  | { k: 'lit'; v: V; type: string }
  | { k: 'param'; name: string }
  | { k: 'col'; path: string[]; fi?: number; ci?: number }
  | { k: 'call'; fn: string; args: E[]; star?: boolean; distinct?: boolean; as?: string }
  | { k: 'bin'; op: string; l: E; r: E }
  | { k: 'not'; e: E }
  | { k: 'neg'; e: E }
  | { k: 'isnull'; e: E; neg: boolean }
  | { k: 'in'; e: E; list?: E[]; sub?: Select; neg: boolean }
  | { k: 'exists'; sub: Select; neg: boolean }
  | { k: 'between'; e: E; lo: E; hi: E; neg: boolean }
  | { k: 'scalar'; sub: Select };
type Item = { star: true; qual?: string } | { star?: false; e: E; alias?: string };
interface Select {
  items: Item[]; distinct: boolean; from?: { parts: string[]; alias: string }; where?: E;
  groupBy?: E[]; orderBy?: Array<{ e: E; desc: boolean }>; limit?: number; offset?: number;
  /** Filled by the type check: whether it reads the outer row. */
  correlated?: boolean;
}
type StmtBody =
  | { k: 'begin' } | { k: 'commit' } | { k: 'rollback' }
  | { k: 'delete'; table: string[]; alias: string; where: E }
  | { k: 'insert'; table: string[]; cols?: string[]; select?: Select; values?: E[][] }
  | { k: 'select'; q: Select }
  | { k: 'drop'; table: string[]; ifExists: boolean }
  | { k: 'truncate'; table: string[] };
type Stmt = StmtBody & { text: string };

const RESERVED = new Set(('SELECT FROM WHERE GROUP ORDER BY LIMIT OFFSET AS AND OR NOT IN IS NULL TRUE FALSE EXISTS BETWEEN LIKE ' +
  'INSERT INTO VALUES DELETE BEGIN COMMIT ROLLBACK TRANSACTION DROP TABLE IF CAST ASC DESC DISTINCT ON JOIN LEFT RIGHT INNER ' +
  'OUTER CROSS UNION HAVING CASE WHEN THEN ELSE END WITH QUALIFY WINDOW EXCEPT INTERSECT ALL USING UNNEST').split(' '));
const AGG = new Set(['COUNT', 'COUNTIF', 'SUM', 'AVG', 'MIN', 'MAX', 'ANY_VALUE', 'LOGICAL_AND', 'LOGICAL_OR']);

class Parser {
  private i = 0;
  constructor(private readonly toks: Tok[], private readonly sql: string) {}
  private peek(o = 0) { return this.toks[this.i + o]!; }
  private next() { return this.toks[this.i++]!; }
  private fail(what: string): never {
    const t = this.peek();
    const at = this.sql.slice(0, t.at);
    throw new BqError('invalidQuery', `Syntax error: ${what}, found ${t.t === 'eof' ? 'end of input' : `"${t.v}"`} at [${at.split('\n').length}:${t.at - at.lastIndexOf('\n')}]`, false);
  }
  private isKw(...w: string[]) { const t = this.peek(); return t.t === 'id' && w.includes(t.v.toUpperCase()); }
  private kw(...w: string[]) { if (this.isKw(...w)) { return this.next().v.toUpperCase(); } return null; }
  private expectKw(w: string) { if (!this.kw(w)) this.fail(`Expected keyword ${w}`); }
  private isOp(o: string) { const t = this.peek(); return t.t === 'op' && t.v === o; }
  private op(o: string) { if (this.isOp(o)) { this.i++; return true; } return false; }
  private expectOp(o: string) { if (!this.op(o)) this.fail(`Expected "${o}"`); }
  private ident(): string {
    const t = this.peek();
    if (t.t === 'qid' || (t.t === 'id' && !RESERVED.has(t.v.toUpperCase()))) { this.i++; return t.v; }
    return this.fail('Expected identifier');
  }

  script(): Stmt[] {
    const out: Stmt[] = [];
    while (this.peek().t !== 'eof') {
      if (this.op(';')) continue;
      const start = this.peek().at;
      const s = this.statement();
      const end = this.peek().at;
      if (!this.op(';') && this.peek().t !== 'eof') this.fail('Expected ";" or end of input');
      out.push({ ...s, text: this.sql.slice(start, end).trim() } as Stmt);
    }
    if (!out.length) this.fail('Expected a statement');
    return out;
  }

  private tableRef(): string[] {
    const parts: string[] = [];
    do {
      const t = this.peek();
      if (t.t === 'qid') { this.i++; parts.push(...t.v.split('.')); } else parts.push(this.ident());
    } while (this.op('.'));
    if (parts.length > 3 || parts.some((p) => !p)) this.fail(`Invalid table name ${parts.join('.')}`);
    return parts;
  }
  private alias(): string | undefined {
    if (this.kw('AS')) return this.ident();
    const t = this.peek();
    if (t.t === 'qid' || (t.t === 'id' && !RESERVED.has(t.v.toUpperCase()))) return this.ident();
    return undefined;
  }

  private statement(): StmtBody {
    if (this.kw('BEGIN')) { this.kw('TRANSACTION'); return { k: 'begin' }; }
    if (this.kw('COMMIT')) { this.kw('TRANSACTION'); return { k: 'commit' }; }
    if (this.kw('ROLLBACK')) { this.kw('TRANSACTION'); return { k: 'rollback' }; }
    if (this.kw('DELETE')) {
      this.kw('FROM');
      const table = this.tableRef();
      const alias = this.alias() ?? table.at(-1)!;
      this.expectKw('WHERE');
      return { k: 'delete', table, alias, where: this.expr() };
    }
    if (this.kw('INSERT')) {
      this.kw('INTO');
      const table = this.tableRef();
      let cols: string[] | undefined;
      if (this.op('(')) {
        cols = [];
        do cols.push(this.ident()); while (this.op(','));
        this.expectOp(')');
      }
      if (this.kw('VALUES')) {
        const values: E[][] = [];
        do {
          this.expectOp('(');
          const row: E[] = [];
          do row.push(this.expr()); while (this.op(','));
          this.expectOp(')');
          values.push(row);
        } while (this.op(','));
        return { k: 'insert', table, cols, values };
      }
      const paren = this.op('(');
      const select = this.select();
      if (paren) this.expectOp(')');
      return { k: 'insert', table, cols, select };
    }
    if (this.isKw('SELECT')) return { k: 'select', q: this.select() };
    if (this.kw('DROP')) {
      this.expectKw('TABLE');
      const ifExists = !!this.kw('IF') && (this.expectKw('EXISTS'), true);
      return { k: 'drop', table: this.tableRef(), ifExists };
    }
    if (this.kw('TRUNCATE')) { this.expectKw('TABLE'); return { k: 'truncate', table: this.tableRef() }; }
    const t = this.peek();
    throw new BqError('invalidQuery', `not supported by the fake BigQuery: a statement starting with "${t.v}"`, false);
  }

  select(): Select {
    this.expectKw('SELECT');
    const distinct = !!this.kw('DISTINCT');
    this.kw('ALL');
    const items: Item[] = [];
    do {
      if (this.op('*')) { items.push({ star: true }); continue; }
      if ((this.peek().t === 'id' || this.peek().t === 'qid') && this.peek(1).v === '.' && this.peek(2).v === '*') {
        const qual = this.next().v;
        this.i += 2;
        items.push({ star: true, qual });
        continue;
      }
      const e = this.expr();
      items.push({ e, alias: this.alias() });
    } while (this.op(','));
    const q: Select = { items, distinct };
    if (this.kw('FROM')) {
      if (this.isOp('(')) this.fail('Subqueries in FROM are not supported by the fake');
      const parts = this.tableRef();
      q.from = { parts, alias: this.alias() ?? parts.at(-1)! };
      if (this.isKw('JOIN', 'LEFT', 'RIGHT', 'INNER', 'CROSS', 'FULL') || this.isOp(',')) this.fail('Joins are not supported by the fake');
    }
    if (this.kw('WHERE')) q.where = this.expr();
    if (this.kw('GROUP')) {
      this.expectKw('BY');
      q.groupBy = [];
      do q.groupBy.push(this.expr()); while (this.op(','));
    }
    if (this.isKw('HAVING', 'QUALIFY', 'WINDOW', 'UNION', 'EXCEPT', 'INTERSECT')) this.fail('Not supported by the fake');
    if (this.kw('ORDER')) {
      this.expectKw('BY');
      q.orderBy = [];
      do {
        const e = this.expr();
        const dir = this.kw('ASC', 'DESC');
        q.orderBy.push({ e, desc: dir === 'DESC' });
      } while (this.op(','));
    }
    if (this.kw('LIMIT')) {
      const t = this.next();
      if (t.t !== 'num') this.fail('Expected a number after LIMIT');
      q.limit = Number(t.v);
      if (this.kw('OFFSET')) q.offset = Number(this.next().v);
    }
    return q;
  }

  expr(): E { return this.or(); }
  private or(): E { let l = this.and(); while (this.kw('OR')) l = { k: 'bin', op: 'OR', l, r: this.and() }; return l; }
  private and(): E { let l = this.notE(); while (this.kw('AND')) l = { k: 'bin', op: 'AND', l, r: this.notE() }; return l; }
  private notE(): E { return this.kw('NOT') ? { k: 'not', e: this.notE() } : this.cmp(); }
  private cmp(): E {
    const l = this.add();
    const t = this.peek();
    if (t.t === 'op' && ['=', '!=', '<>', '<', '<=', '>', '>='].includes(t.v)) { this.i++; return { k: 'bin', op: t.v === '<>' ? '!=' : t.v, l, r: this.add() }; }
    if (this.kw('IS')) {
      const neg = !!this.kw('NOT');
      this.expectKw('NULL');
      return { k: 'isnull', e: l, neg };
    }
    const neg = this.isKw('NOT') && ['IN', 'BETWEEN', 'LIKE'].includes(this.peek(1).v.toUpperCase()) ? (this.i++, true) : false;
    if (this.kw('IN')) {
      this.expectOp('(');
      if (this.isKw('SELECT')) { const sub = this.select(); this.expectOp(')'); return { k: 'in', e: l, sub, neg }; }
      const list: E[] = [];
      do list.push(this.expr()); while (this.op(','));
      this.expectOp(')');
      return { k: 'in', e: l, list, neg };
    }
    if (this.kw('BETWEEN')) {
      const lo = this.add();
      this.expectKw('AND');
      return { k: 'between', e: l, lo, hi: this.add(), neg };
    }
    if (this.kw('LIKE')) return { k: 'bin', op: neg ? 'NOT LIKE' : 'LIKE', l, r: this.add() };
    return l;
  }
  private add(): E {
    let l = this.mul();
    for (;;) {
      const t = this.peek();
      if (t.t === 'op' && ['+', '-', '||'].includes(t.v)) { this.i++; l = { k: 'bin', op: t.v, l, r: this.mul() }; } else return l;
    }
  }
  private mul(): E {
    let l = this.unary();
    for (;;) {
      const t = this.peek();
      if (t.t === 'op' && ['*', '/'].includes(t.v)) { this.i++; l = { k: 'bin', op: t.v, l, r: this.unary() }; } else return l;
    }
  }
  private unary(): E { return this.op('-') ? { k: 'neg', e: this.unary() } : this.primary(); }
  private primary(): E {
    const t = this.peek();
    if (t.t === 'str') { this.i++; return { k: 'lit', v: t.v, type: 'STRING' }; }
    if (t.t === 'num') { this.i++; return /[.eE]/.test(t.v) ? { k: 'lit', v: Number(t.v), type: 'FLOAT' } : { k: 'lit', v: BigInt(t.v), type: 'INTEGER' }; }
    if (t.t === 'param') { this.i++; return { k: 'param', name: t.v }; }
    if (t.t === 'pos') { this.i++; return { k: 'param', name: `#${t.v}` }; }
    if (this.op('(')) {
      if (this.isKw('SELECT')) { const sub = this.select(); this.expectOp(')'); return { k: 'scalar', sub }; }
      const e = this.expr();
      this.expectOp(')');
      return e;
    }
    if (t.t === 'id') {
      const u = t.v.toUpperCase();
      if (u === 'NULL') { this.i++; return { k: 'lit', v: null, type: 'NULL' }; }
      if (u === 'TRUE' || u === 'FALSE') { this.i++; return { k: 'lit', v: u === 'TRUE', type: 'BOOLEAN' }; }
      if (u === 'EXISTS') { this.i++; this.expectOp('('); const sub = this.select(); this.expectOp(')'); return { k: 'exists', sub, neg: false }; }
      if ((u === 'TIMESTAMP' || u === 'JSON') && this.peek(1).t === 'str') {
        this.i++;
        const s = this.next().v;
        if (u === 'JSON') { try { return { k: 'lit', v: new Js(JSON.parse(s)), type: 'JSON' }; } catch { this.fail('Invalid JSON literal'); } }
        const us = parseTs(s);
        if (us === null) this.fail(`Invalid TIMESTAMP literal "${s}"`);
        return { k: 'lit', v: new Ts(us), type: 'TIMESTAMP' };
      }
      if ((u === 'CAST' || u === 'SAFE_CAST') && this.peek(1).v === '(') {
        this.i += 2;
        const e = this.expr();
        this.expectKw('AS');
        const as = legacy(this.next().v);
        this.expectOp(')');
        return { k: 'call', fn: u, args: [e], as };
      }
      // SAFE.<function>(…): the function's NULL-on-error form.
      if (u === 'SAFE' && this.peek(1).v === '.' && this.peek(2).t === 'id' && this.peek(3).v === '(') {
        const fn = `SAFE.${this.peek(2).v.toUpperCase()}`;
        this.i += 4;
        const args: E[] = [];
        if (!this.isOp(')')) do args.push(this.expr()); while (this.op(','));
        this.expectOp(')');
        return { k: 'call', fn, args };
      }
      if (this.peek(1).v === '(' && this.peek(1).t === 'op') {
        this.i += 2;
        if (this.op('*')) { this.expectOp(')'); return { k: 'call', fn: u, args: [], star: true }; }
        const distinct = !!this.kw('DISTINCT');
        const args: E[] = [];
        if (!this.isOp(')')) do args.push(this.expr()); while (this.op(','));
        this.expectOp(')');
        return { k: 'call', fn: u, args, distinct };
      }
      if (u === 'CURRENT_TIMESTAMP') { this.i++; return { k: 'call', fn: u, args: [] }; }
    }
    if (t.t === 'id' || t.t === 'qid') {
      const path = [this.ident()];
      while (this.isOp('.') && (this.peek(1).t === 'id' || this.peek(1).t === 'qid')) { this.i++; path.push(this.next().v); }
      return { k: 'col', path };
    }
    return this.fail('Unexpected token');
  }
}

// ---------------------------------------------------------------------------------------------
// SQL: type check and evaluation

interface SFrame { alias: string; key: string; fields: Field[]; idx: Map<string, number> }
interface Frame extends SFrame { row: V[] }
interface Param { type: string; value: V }
interface Env { frames: Frame[]; group?: Frame[][]; ctx: Ctx }
interface Ctx { params: Map<string, Param>; rowsOf(key: string, fields: Field[]): V[][]; cache: Map<Select, V[][]> }
/** What the type check needs: parameters, table lookup, and whether the current subquery reads an outer row. */
interface TypeCtx { ps: Map<string, Param>; resolve(parts: string[]): { key: string; fields: Field[] }; correlated: boolean }
function sameish(a: string, b: string): boolean {
  return a === b || a === 'NULL' || b === 'NULL' || a === 'ANY' || b === 'ANY' || (NUMERIC_T.has(a) && NUMERIC_T.has(b));
}
function commonType(types: string[]): string {
  const known = types.filter((t) => t !== 'NULL');
  if (!known.length) return 'NULL';
  if (known.every((t) => NUMERIC_T.has(t))) return known.includes('FLOAT') ? 'FLOAT' : known[0]!;
  return known[0]!;
}

/** Checks an expression and returns its type; annotates column references with their frame/column. */
function typeOf(e: E, scope: SFrame[], tc: TypeCtx, inner: number): string {
  const T = (x: E) => typeOf(x, scope, tc, inner);
  const ps = tc.ps;
  const isStrLit = (x: E) => x.k === 'lit' && x.type === 'STRING';
  const compare = (op: string, l: E, r: E) => {
    const a = T(l);
    const b = T(r);
    if (a === 'JSON' || b === 'JSON') throw invalidQuery(op === '=' || op === '!=' ? 'Equality is not defined for arguments of type JSON' : `No matching signature for operator ${op} for argument types: ${a}, ${b}`);
    const ok = sameish(a, b) || (a === 'TIMESTAMP' && isStrLit(r)) || (b === 'TIMESTAMP' && isStrLit(l));
    if (!ok) throw invalidQuery(`No matching signature for operator ${op} for argument types: ${a === 'INTEGER' ? 'INT64' : a}, ${b === 'INTEGER' ? 'INT64' : b}`);
  };
  switch (e.k) {
    case 'lit': return e.type;
    case 'param': {
      const p = ps.get(e.name);
      if (!p) throw invalidQuery(e.name.startsWith('#') ? 'Not enough positional query parameters' : `Query parameter '${e.name}' not found`);
      return p.type;
    }
    case 'col': {
      const resolve = (fi: number, col: string) => {
        const ci = scope[fi]!.idx.get(col.toLowerCase());
        if (ci === undefined) return false;
        e.fi = fi;
        e.ci = ci;
        return true;
      };
      if (e.path.length === 2) {
        for (let fi = scope.length - 1; fi >= 0; fi--) {
          if (scope[fi]!.alias === e.path[0] || scope[fi]!.key.split('.')[1] === e.path[0]) {
            if (!resolve(fi, e.path[1]!)) throw invalidQuery(`Name ${e.path[1]} not found inside ${e.path[0]}`);
            if (fi < inner) tc.correlated = true;
            return scope[fi]!.fields[e.ci!]!.type;
          }
        }
      }
      if (e.path.length === 1) {
        for (let fi = scope.length - 1; fi >= 0; fi--) {
          if (resolve(fi, e.path[0]!)) { if (fi < inner) tc.correlated = true; return scope[fi]!.fields[e.ci!]!.type; }
        }
      }
      throw invalidQuery(`Unrecognized name: ${e.path.join('.')}`);
    }
    case 'bin': {
      if (e.op === 'AND' || e.op === 'OR') {
        for (const x of [e.l, e.r]) { const t = T(x); if (t !== 'BOOLEAN' && t !== 'NULL') throw invalidQuery(`No matching signature for operator ${e.op} for argument types: ${t}`); }
        return 'BOOLEAN';
      }
      if (['=', '!=', '<', '<=', '>', '>='].includes(e.op)) { compare(e.op, e.l, e.r); return 'BOOLEAN'; }
      if (e.op.endsWith('LIKE')) { T(e.l); T(e.r); return 'BOOLEAN'; }
      if (e.op === '||') { T(e.l); T(e.r); return 'STRING'; }
      const a = T(e.l);
      const b = T(e.r);
      if (!(NUMERIC_T.has(a) || a === 'NULL') || !(NUMERIC_T.has(b) || b === 'NULL')) throw invalidQuery(`No matching signature for operator ${e.op} for argument types: ${a}, ${b}`);
      return e.op === '/' || a === 'FLOAT' || b === 'FLOAT' ? 'FLOAT' : 'INTEGER';
    }
    case 'not': T(e.e); return 'BOOLEAN';
    case 'neg': return T(e.e);
    case 'isnull': T(e.e); return 'BOOLEAN';
    case 'between': compare('BETWEEN', e.e, e.lo); compare('BETWEEN', e.e, e.hi); return 'BOOLEAN';
    case 'in': {
      if (e.list) { for (const x of e.list) compare('IN', e.e, x); return 'BOOLEAN'; }
      const cols = typeSelect(e.sub!, scope, tc);
      if (cols.length !== 1) throw invalidQuery('IN subquery must return exactly one column');
      const a = T(e.e);
      if (a === 'JSON' || cols[0]!.type === 'JSON' || !sameish(a, cols[0]!.type)) throw invalidQuery(`Cannot execute IN subquery with uncomparable types ${a} and ${cols[0]!.type}`);
      return 'BOOLEAN';
    }
    case 'exists': typeSelect(e.sub, scope, tc); return 'BOOLEAN';
    case 'scalar': {
      const cols = typeSelect(e.sub, scope, tc);
      if (cols.length !== 1) throw invalidQuery('Scalar subquery cannot have more than one column');
      return cols[0]!.type;
    }
    case 'call': {
      const args = e.args.map(T);
      const sig = () => invalidQuery(`No matching signature for function ${e.fn} for argument types: ${args.join(', ') || '(none)'}`);
      const need = (n: number) => { if (args.length !== n && !e.star) throw sig(); };
      switch (e.fn) {
        case 'COUNT': return 'INTEGER';
        case 'COUNTIF': need(1); return 'INTEGER';
        case 'SUM': need(1); if (!NUMERIC_T.has(args[0]!) && args[0] !== 'NULL') throw sig(); return args[0] === 'NULL' ? 'INTEGER' : args[0]!;
        case 'AVG': need(1); if (!NUMERIC_T.has(args[0]!) && args[0] !== 'NULL') throw sig(); return 'FLOAT';
        case 'MIN': case 'MAX': case 'ANY_VALUE': need(1); if (args[0] === 'JSON') throw sig(); return args[0]!;
        case 'LOGICAL_AND': case 'LOGICAL_OR': need(1); return 'BOOLEAN';
        case 'PARSE_JSON': case 'SAFE.PARSE_JSON': if (args[0] !== 'STRING' && args[0] !== 'NULL') throw sig(); return 'JSON';
        case 'IF': need(3); if (args[0] !== 'BOOLEAN' && args[0] !== 'NULL') throw sig(); if (!sameish(args[1]!, args[2]!)) throw sig(); return commonType([args[1]!, args[2]!]);
        case 'TO_JSON_STRING': return 'STRING';
        case 'TO_JSON': need(1); return 'JSON';
        case 'TIMESTAMP': need(1); if (!['STRING', 'TIMESTAMP', 'NULL'].includes(args[0]!)) throw sig(); return 'TIMESTAMP';
        case 'CURRENT_TIMESTAMP': return 'TIMESTAMP';
        case 'UNIX_MICROS': need(1); if (args[0] !== 'TIMESTAMP' && args[0] !== 'NULL') throw sig(); return 'INTEGER';
        case 'TIMESTAMP_MICROS': need(1); return 'TIMESTAMP';
        case 'COALESCE': case 'IFNULL': {
          const c = commonType(args);
          if (!args.every((a) => sameish(a, c))) throw sig();
          return c;
        }
        case 'LOWER': case 'UPPER': need(1); return 'STRING';
        case 'LENGTH': need(1); return 'INTEGER';
        case 'CONCAT': return 'STRING';
        case 'CAST': case 'SAFE_CAST': return e.as!;
        default: throw invalidQuery(`Function not found: ${e.fn} (not supported by the fake BigQuery)`);
      }
    }
  }
}

/**
 * Types a SELECT in a scope of outer frames: its items' names and types ('NULL' for an untyped
 * NULL). Records its FROM frame for runSelect and whether it is correlated.
 */
function typeSelect(q: Select, outer: SFrame[], tc: TypeCtx): Array<{ name: string; type: string }> {
  const scope = [...outer];
  if (q.from) {
    const { key, fields } = tc.resolve(q.from.parts);
    const frame = { alias: q.from.alias, key, fields, idx: new Map(fields.map((f, i) => [f.name.toLowerCase(), i])) };
    frameInfo.set(q, frame);
    scope.push(frame);
  }
  const saved = tc.correlated;
  tc.correlated = false;
  const inner = outer.length;
  const out: Array<{ name: string; type: string }> = [];
  let anon = 0;
  for (const it of q.items) {
    if (it.star) {
      const frames = it.qual ? scope.slice(inner).filter((f) => f.alias === it.qual) : scope.slice(inner);
      if (!frames.length) throw invalidQuery(it.qual ? `Unrecognized name: ${it.qual}` : 'SELECT * must have a FROM clause');
      for (const f of frames) for (const fd of f.fields) out.push({ name: fd.name, type: fd.type });
      continue;
    }
    const type = typeOf(it.e, scope, tc, inner);
    const name = it.alias ?? (it.e.k === 'col' ? it.e.path.at(-1)! : `f${anon++}_`);
    out.push({ name, type });
  }
  if (q.where) {
    const t = typeOf(q.where, scope, tc, inner);
    if (t !== 'BOOLEAN' && t !== 'NULL') throw invalidQuery(`WHERE clause should return type BOOL, but returns ${t}`);
  }
  for (const g of q.groupBy ?? []) typeOf(g, scope, tc, inner);
  for (const o of q.orderBy ?? []) {
    const bare = o.e.k === 'col' && o.e.path.length === 1 ? o.e.path[0]!.toLowerCase() : null;
    if (bare && out.some((c) => c.name.toLowerCase() === bare) && !q.items.some((it) => it.star)) continue;
    typeOf(o.e, scope, tc, inner);
  }
  q.correlated = tc.correlated;
  tc.correlated = saved || tc.correlated;
  return out;
}

function truthy(v: V): boolean { return v === true; }
function cmp(a: V, b: V): number | null {
  if (a === null || b === null) return null;
  if (a instanceof Ts || b instanceof Ts) {
    const x = a instanceof Ts ? a.us : parseTs(String(a));
    const y = b instanceof Ts ? b.us : parseTs(String(b));
    if (x === null || y === null) throw invalidQuery(`Could not cast literal "${a instanceof Ts ? b : a}" to type TIMESTAMP`);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if ((typeof a === 'bigint' || typeof a === 'number') && (typeof b === 'bigint' || typeof b === 'number')) {
    const x = Number(a);
    const y = Number(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
function toJsonValue(v: V): unknown {
  if (v instanceof Js) return v.v;
  if (v instanceof Ts) return isoOf(v.us);
  if (typeof v === 'bigint') return intOut(v);
  if (Array.isArray(v)) return v.map(toJsonValue);
  return v;
}
function castTo(v: V, t: string, safe: boolean): V {
  if (v === null) return null;
  const fail = () => { if (safe) return null; throw invalidQuery(`Bad ${t} value: ${String(v instanceof Ts ? isoOf(v.us) : v)}`); };
  switch (t) {
    case 'STRING': return v instanceof Ts ? isoOf(v.us).replace('T', ' ').replace(/Z$/, '+00') : v instanceof Js ? JSON.stringify(v.v) : String(v);
    case 'INTEGER': {
      if (typeof v === 'bigint') return v;
      if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.round(v)) : fail();
      if (typeof v === 'boolean') return v ? 1n : 0n;
      return /^\s*[+-]?\d+\s*$/.test(String(v)) ? BigInt(String(v).trim()) : fail();
    }
    case 'FLOAT': { const n = Number(v); return Number.isNaN(n) && String(v).toLowerCase() !== 'nan' ? fail() : n; }
    case 'BOOLEAN': return typeof v === 'boolean' ? v : /^(true|false)$/i.test(String(v)) ? String(v).toLowerCase() === 'true' : typeof v === 'bigint' ? v !== 0n : fail();
    case 'TIMESTAMP': { if (v instanceof Ts) return v; const us = parseTs(String(v)); return us === null ? fail() : new Ts(us); }
    case 'JSON': return v instanceof Js ? v : new Js(toJsonValue(v));
    default: return v;
  }
}

function ev(e: E, env: Env): V {
  switch (e.k) {
    case 'lit': return e.v;
    case 'param': return env.ctx.params.get(e.name)!.value;
    case 'col': {
      const f = env.frames[e.fi!];
      return f ? f.row[e.ci!] ?? null : null;
    }
    case 'not': { const v = ev(e.e, env); return v === null ? null : !truthy(v); }
    case 'neg': { const v = ev(e.e, env); return v === null ? null : typeof v === 'bigint' ? -v : -Number(v); }
    case 'isnull': { const v = ev(e.e, env); return e.neg ? v !== null : v === null; }
    case 'between': {
      const v = ev(e.e, env);
      const a = cmp(v, ev(e.lo, env));
      const b = cmp(v, ev(e.hi, env));
      if (a === null || b === null) return null;
      return (a >= 0 && b <= 0) !== e.neg;
    }
    case 'bin': {
      if (e.op === 'AND') {
        const l = ev(e.l, env);
        if (l === false) return false;
        const r = ev(e.r, env);
        return r === false ? false : l === null || r === null ? null : true;
      }
      if (e.op === 'OR') {
        const l = ev(e.l, env);
        if (l === true) return true;
        const r = ev(e.r, env);
        return r === true ? true : l === null || r === null ? null : false;
      }
      const l = ev(e.l, env);
      const r = ev(e.r, env);
      if (l === null || r === null) return null;
      switch (e.op) {
        case '=': return cmp(l, r) === 0;
        case '!=': return cmp(l, r) !== 0;
        case '<': return cmp(l, r)! < 0;
        case '<=': return cmp(l, r)! <= 0;
        case '>': return cmp(l, r)! > 0;
        case '>=': return cmp(l, r)! >= 0;
        case '||': return String(l) + String(r);
        case 'LIKE': case 'NOT LIKE': {
          const re = new RegExp(`^${String(r).replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%/g, '.*').replace(/_/g, '.')}$`, 's');
          return re.test(String(l)) !== (e.op === 'NOT LIKE');
        }
      }
      if (typeof l === 'bigint' && typeof r === 'bigint' && e.op !== '/') return e.op === '+' ? l + r : e.op === '-' ? l - r : l * r;
      const x = Number(l);
      const y = Number(r);
      if (e.op === '/' && y === 0) throw invalidQuery(`division by zero: ${x} / ${y}`);
      return e.op === '+' ? x + y : e.op === '-' ? x - y : e.op === '*' ? x * y : x / y;
    }
    case 'in': {
      const v = ev(e.e, env);
      const vals = e.list ? e.list.map((x) => ev(x, env)) : runSelect(e.sub!, env).map((r) => r[0]!);
      if (v === null) return vals.length ? null : e.neg;
      let sawNull = false;
      for (const x of vals) { const c = cmp(v, x); if (c === 0) return !e.neg; if (c === null) sawNull = true; }
      return sawNull ? null : e.neg;
    }
    case 'exists': return (runSelect(e.sub, env, 1).length > 0) !== e.neg;
    case 'scalar': {
      const rows = runSelect(e.sub, env, 2);
      if (rows.length > 1) throw invalidQuery('Scalar subquery produced more than one element');
      return rows[0]?.[0] ?? null;
    }
    case 'call': return call(e, env);
  }
}

function call(e: Extract<E, { k: 'call' }>, env: Env): V {
  if (AGG.has(e.fn)) {
    if (!env.group) throw invalidQuery(`Aggregate function ${e.fn} not allowed here`);
    const vals = e.star ? env.group.map(() => true as V) : env.group.map((frames) => ev(e.args[0]!, { ...env, frames, group: undefined }));
    let nn = vals.filter((v) => v !== null);
    if (e.distinct) { const seen = new Set<string>(); nn = nn.filter((v) => { const k = String(toJsonValue(v)); return seen.has(k) ? false : (seen.add(k), true); }); }
    switch (e.fn) {
      case 'COUNT': return BigInt(nn.length);
      case 'COUNTIF': return BigInt(nn.filter((v) => v === true).length);
      case 'SUM': return nn.length ? nn.reduce((a, b) => (typeof a === 'bigint' && typeof b === 'bigint' ? a + b : Number(a) + Number(b))) : null;
      case 'AVG': return nn.length ? nn.reduce((a: number, b) => a + Number(b), 0) / nn.length : null;
      case 'MIN': return nn.length ? nn.reduce((a, b) => (cmp(a, b)! <= 0 ? a : b)) : null;
      case 'MAX': return nn.length ? nn.reduce((a, b) => (cmp(a, b)! >= 0 ? a : b)) : null;
      case 'ANY_VALUE': return nn[0] ?? null;
      case 'LOGICAL_AND': return nn.length ? nn.every((v) => v === true) : null;
      case 'LOGICAL_OR': return nn.length ? nn.some((v) => v === true) : null;
    }
  }
  const a = e.args.map((x) => ev(x, env));
  switch (e.fn) {
    case 'PARSE_JSON': {
      if (a[0] === null) return null;
      try { return new Js(JSON.parse(String(a[0]))); } catch { throw invalidQuery(`Invalid input to PARSE_JSON: ${String(a[0]).slice(0, 80)}`); }
    }
    case 'SAFE.PARSE_JSON': {
      if (a[0] === null) return null;
      try { return new Js(JSON.parse(String(a[0]))); } catch { return null; }
    }
    case 'IF': return a[0] === true ? a[1]! : a[2]!;
    case 'TO_JSON_STRING': return JSON.stringify(toJsonValue(a[0] ?? null));
    case 'TO_JSON': return new Js(toJsonValue(a[0] ?? null));
    case 'TIMESTAMP': return castTo(a[0]!, 'TIMESTAMP', false);
    case 'CURRENT_TIMESTAMP': return new Ts(BigInt(Date.now()) * 1000n);
    case 'UNIX_MICROS': return a[0] === null ? null : (a[0] as Ts).us;
    case 'TIMESTAMP_MICROS': return a[0] === null ? null : new Ts(BigInt(a[0] as bigint));
    case 'COALESCE': case 'IFNULL': return a.find((v) => v !== null) ?? null;
    case 'LOWER': return a[0] === null ? null : String(a[0]).toLowerCase();
    case 'UPPER': return a[0] === null ? null : String(a[0]).toUpperCase();
    case 'LENGTH': return a[0] === null ? null : BigInt([...String(a[0])].length);
    case 'CONCAT': return a.some((v) => v === null) ? null : a.map((v) => String(v)).join('');
    case 'CAST': case 'SAFE_CAST': return castTo(a[0]!, e.as!, e.fn === 'SAFE_CAST');
  }
  throw invalidQuery(`Function not found: ${e.fn}`);
}

const hasAgg = (e: E): boolean => {
  switch (e.k) {
    case 'call': return AGG.has(e.fn) || e.args.some(hasAgg);
    case 'bin': return hasAgg(e.l) || hasAgg(e.r);
    case 'not': case 'neg': case 'isnull': return hasAgg(e.e);
    case 'between': return hasAgg(e.e) || hasAgg(e.lo) || hasAgg(e.hi);
    case 'in': return hasAgg(e.e) || (e.list ?? []).some(hasAgg);
    default: return false;
  }
};

/** Runs a (type-checked) SELECT; `enough` stops early (EXISTS / scalar). */
function runSelect(q: Select, env: Env, enough = Infinity): V[][] {
  if (!q.correlated && env.ctx.cache.has(q)) return env.ctx.cache.get(q)!;
  const base = env.frames;
  let frames: Frame[][];
  if (q.from) {
    const f = frameInfo.get(q)!;
    frames = env.ctx.rowsOf(f.key, f.fields).map((row) => [...base, { ...f, row }]);
  } else frames = [base];
  if (q.where) frames = frames.filter((fr) => truthy(ev(q.where!, { ...env, frames: fr, group: undefined })));
  const grouped = !!q.groupBy || q.items.some((it) => !it.star && hasAgg(it.e));
  const items = (fr: Frame[], group?: Frame[][]): V[] => {
    const out: V[] = [];
    for (const it of q.items) {
      if (it.star) {
        for (const f of fr.slice(base.length)) if (!it.qual || f.alias === it.qual) out.push(...f.row);
      } else out.push(ev(it.e, { ...env, frames: fr, group }));
    }
    return out;
  };
  let rows: Array<{ out: V[]; fr: Frame[] }>;
  if (grouped) {
    const groups = new Map<string, Frame[][]>();
    if (!q.groupBy) groups.set('', frames);
    else for (const fr of frames) {
      const k = JSON.stringify(q.groupBy.map((g) => toJsonValue(ev(g, { ...env, frames: fr, group: undefined }))));
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k)!.push(fr);
    }
    rows = [...groups.values()].map((g) => ({ out: items(g[0] ?? base, g), fr: g[0] ?? base }));
  } else {
    rows = [];
    for (const fr of frames) {
      rows.push({ out: items(fr), fr });
      if (!q.orderBy && !q.distinct && rows.length >= enough + (q.offset ?? 0)) break;
    }
  }
  if (q.distinct) {
    const seen = new Set<string>();
    rows = rows.filter((r) => { const k = JSON.stringify(r.out.map(toJsonValue)); return seen.has(k) ? false : (seen.add(k), true); });
  }
  if (q.orderBy) {
    const names = outputNames(q);
    const keyOf = (r: { out: V[]; fr: Frame[] }) => q.orderBy!.map((o) => {
      const byName = o.e.k === 'col' && o.e.path.length === 1 ? names.indexOf(o.e.path[0]!.toLowerCase()) : -1;
      return byName >= 0 && o.e.k === 'col' && o.e.ci === undefined ? r.out[byName]! : ev(o.e, { ...env, frames: r.fr, group: undefined });
    });
    const keyed = rows.map((r) => ({ r, k: keyOf(r) }));
    keyed.sort((x, y) => {
      for (let i = 0; i < q.orderBy!.length; i++) {
        const a = x.k[i]!;
        const b = y.k[i]!;
        const c = a === null && b === null ? 0 : a === null ? -1 : b === null ? 1 : cmp(a, b)!;
        if (c) return q.orderBy![i]!.desc ? -c : c;
      }
      return 0;
    });
    rows = keyed.map((k) => k.r);
  }
  let out = rows.map((r) => r.out);
  if (q.offset || q.limit !== undefined) out = out.slice(q.offset ?? 0, q.limit === undefined ? undefined : (q.offset ?? 0) + q.limit);
  if (!q.correlated) env.ctx.cache.set(q, out);
  return out;
}
function outputNames(q: Select): string[] {
  return q.items.flatMap((it) => (it.star ? [] : [(it.alias ?? (it.e.k === 'col' ? it.e.path.at(-1)! : '')).toLowerCase()]));
}
/** Each type-checked SELECT's FROM frame (set by typeSelect, read by runSelect). */
const frameInfo = new WeakMap<Select, SFrame>();

// ---------------------------------------------------------------------------------------------
// The server

export interface FakeBigQueryOptions {
  projectId?: string;
  location?: string;
  /** Datasets that exist from the start. */
  datasets?: string[];
  /** Refuse requests without an Authorization header (401). Default false. */
  requireAuth?: boolean;
  /** jobs.get / getQueryResults answers saying RUNNING before a job is DONE. Default 0. */
  runningPolls?: number;
}

export interface InjectedJobError { reason?: string; message?: string; /** 'get' (default): RUNNING at insert, DONE+error at jobs.get. */ at?: 'insert' | 'get' }

export type BqPermission = 'bigquery.tables.updateData' | 'bigquery.tables.create' | 'bigquery.tables.delete' | 'bigquery.jobs.create';
export interface FakeBigQuery {
  apiEndpoint: string;
  projectId: string;
  location: string;
  /** A service-account key whose self-signed JWTs this server accepts. */
  credentials: FakeServiceAccountKey;
  datasets: Map<string, { location: string; metadata: Record<string, any> }>;
  /** "dataset.table" → the table (see STORAGE in the header). */
  tables: Map<string, FakeTable>;
  /** Every job received (full resources: jobReference, configuration, status, statistics), in order; dry runs included. */
  jobs: any[];
  /** Every SQL text received (query jobs, dry runs, jobs.query), in order. */
  queries: string[];
  /** The data of every load upload, in order. */
  uploads: Buffer[];
  /** Every HTTP request, in order. */
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }>;
  /**
   * Requests and responses that do not match Google's discovery document (discovery/bigquery.v2.json),
   * one line each. A request that does not match is answered 400 as BigQuery does; `stop()` fails
   * while this list is not empty, so a suite that lets one through fails.
   */
  violations: string[];
  /**
   * IAM permissions the caller lacks, refused with 403 accessDenied as BigQuery does:
   * 'bigquery.tables.updateData' DML (dry runs included) and load jobs into an existing table;
   * 'bigquery.tables.create' tables.insert and load jobs that would create their table;
   * 'bigquery.tables.delete' tables.delete; 'bigquery.jobs.create' every job (query, load, dry run).
   */
  withheld: Set<BqPermission>;
  /**
   * The next `times` (default 1) jobs of this kind fail: 'load', 'query', or query jobs with a
   * statement (or whole text) matching the RegExp (the script runs up to that statement, so a
   * failure inside a transaction rolls it back).
   */
  failNext(what: 'load' | 'query' | RegExp, error?: InjectedJobError, times?: number): void;
  /** The next n HTTP requests (matching `METHOD url`, when `match` is given) fail with this status. */
  failRequests(n: number, status: number, opts?: { retryAfter?: number; match?: RegExp }): void;
  stop(): Promise<void>;
}

interface JobState { resource: any; pendingPolls: number; failed?: BqError; result?: { fields: Field[]; rows: V[][]; affected?: number } }

export async function startFakeBigQuery(opts: FakeBigQueryOptions = {}): Promise<FakeBigQuery> {
  const projectId = opts.projectId ?? 'fake-project';
  const location = opts.location ?? 'US';
  const datasets: FakeBigQuery['datasets'] = new Map((opts.datasets ?? []).map((d) => [d, { location, metadata: {} }]));
  const tables = new Map<string, FakeTable>();
  const jobs: any[] = [];
  const jobState = new Map<string, JobState>();
  const queries: string[] = [];
  const uploads: Buffer[] = [];
  const requests: FakeBigQuery['requests'] = [];
  const violations: string[] = [];
  const withheld = new Set<BqPermission>();
  const denied = (perm: BqPermission, on: string) => new BqError('accessDenied', `Access Denied: ${on}: Permission ${perm} denied on ${on} (or it may not exist).`, false);
  const methodOf = new WeakMap<ServerResponse, MatchedMethod>();
  const injected: Array<{ what: 'load' | 'query' | RegExp; error: InjectedJobError; left: number }> = [];
  let httpFail = { n: 0, status: 503, retryAfter: undefined as number | undefined, match: undefined as RegExp | undefined };
  const sessions = new Map<string, { job: any; chunks: Buffer[]; size: number }>();
  let base = '';
  let saCache: ReturnType<typeof createFakeServiceAccount> | undefined;
  const sa = () => (saCache ??= createFakeServiceAccount(projectId, 'https://oauth2.googleapis.com/token'));

  const now = () => String(Date.now());
  const tableId = (key: string) => `${projectId}:${key}`;
  const notFoundTable = (key: string) => new BqError('notFound', `Not found: Table ${tableId(key)} was not found in location ${location}`);
  const notFoundDataset = (d: string) => new BqError('notFound', `Not found: Dataset ${projectId}:${d}`);

  /** [project?, dataset?, table] → "dataset.table", checked against the fake's project. */
  const keyOf = (parts: string[], dflt?: { projectId?: string; datasetId?: string }): string => {
    const p = parts.length === 3 ? parts[0]! : dflt?.projectId ?? projectId;
    const d = parts.length >= 2 ? parts[parts.length - 2]! : dflt?.datasetId;
    const t = parts.at(-1)!;
    if (!d) throw invalidQuery(`Table "${t}" must be qualified with a dataset (e.g. dataset.table).`);
    if (p !== projectId) throw new BqError('notFound', `Not found: Dataset ${p}:${d}`);
    return `${d}.${t}`;
  };
  const tableResource = (key: string, t: FakeTable) => {
    const [d, id] = key.split('.') as [string, string];
    return {
      kind: 'bigquery#table', etag: Buffer.from(`${t.metadata.lastModifiedTime}`).toString('base64'), id: tableId(key),
      selfLink: `${base}/bigquery/v2/projects/${projectId}/datasets/${d}/tables/${id}`,
      tableReference: { projectId, datasetId: d, tableId: id }, type: 'TABLE', location,
      ...t.metadata, schema: t.schema, ...(t.timePartitioning ? { timePartitioning: t.timePartitioning } : {}),
      numRows: String(t.rows.length), numBytes: String(Buffer.byteLength(JSON.stringify(t.rows))),
    };
  };
  const newTable = (body: any): FakeTable => {
    const { schema, timePartitioning, tableReference: _r, id: _i, kind: _k, etag: _e, numRows: _n, numBytes: _b, ...rest } = body;
    return {
      schema: { fields: normFields(schema?.fields ?? []) }, rows: [],
      ...(timePartitioning ? { timePartitioning: { type: 'DAY', ...timePartitioning } } : {}),
      metadata: { ...rest, creationTime: now(), lastModifiedTime: now() },
    };
  };
  /** A schema update: every existing field kept with its type; new ones NULLABLE/REPEATED. */
  const checkSchemaUpdate = (key: string, old: Field[], next: Field[]): Field[] => {
    const byName = new Map(next.map((f) => [f.name.toLowerCase(), f]));
    for (const f of old) {
      const n = byName.get(f.name.toLowerCase());
      if (!n) throw new BqError('invalid', `Provided Schema does not match Table ${tableId(key)}. Field ${f.name} is missing in new schema`);
      if (n.type !== f.type) throw new BqError('invalid', `Provided Schema does not match Table ${tableId(key)}. Field ${f.name} has changed type from ${f.type} to ${n.type}`);
      if (n.mode === 'REQUIRED' && f.mode !== 'REQUIRED') throw new BqError('invalid', `Provided Schema does not match Table ${tableId(key)}. Field ${f.name} has changed mode from ${f.mode} to REQUIRED`);
    }
    const known = new Set(old.map((f) => f.name.toLowerCase()));
    for (const f of next) if (!known.has(f.name.toLowerCase()) && f.mode === 'REQUIRED') throw new BqError('invalid', `Provided Schema does not match Table ${tableId(key)}. Cannot add required fields to an existing schema. (field: ${f.name})`);
    return next;
  };

  /** Rows written before a column was added get NULL in it. */
  const backfill = (t: FakeTable) => {
    for (const r of t.rows) for (const f of t.schema.fields) if (!(f.name in r)) r[f.name] = f.mode === 'REPEATED' ? [] : null;
  };

  // ---- SQL execution --------------------------------------------------------------------------

  interface RunResult { fields?: Field[]; rows?: V[][]; statementType: string; affected?: number; inserted?: number; deleted?: number }

  /** Runs a script (see the header). Throws BqError; `dryRun` only checks. */
  function runSql(sql: string, params: Map<string, Param>, dflt: { projectId?: string; datasetId?: string } | undefined, dryRun: boolean, failOn?: RegExp): RunResult {
    const stmts = new Parser(lex(sql), sql).script();
    const work = new Map<string, FakeTable | null>();
    const read = (key: string) => (work.has(key) ? work.get(key) ?? undefined : tables.get(key));
    const publish = () => {
      for (const [k, t] of work) {
        if (t === null) tables.delete(k);
        else if (tables.has(k)) Object.assign(tables.get(k)!, t);
        else tables.set(k, t);
      }
      work.clear();
    };
    const internal = new Map<Record<string, unknown>[], V[][]>();
    const ctx: Ctx = {
      params,
      cache: new Map(),
      rowsOf(key, fields) {
        const t = read(key)!;
        let rs = internal.get(t.rows);
        if (!rs) { rs = t.rows.map((r) => fields.map((f) => fromStored(f.type, r[f.name]))); internal.set(t.rows, rs); }
        return rs;
      },
    };
    const resolveTable = (parts: string[]) => {
      const key = keyOf(parts, dflt);
      const t = read(key);
      if (!t) throw datasets.has(key.split('.')[0]!) ? notFoundTable(key) : notFoundDataset(key.split('.')[0]!);
      return { key, fields: t.schema.fields };
    };
    const tc: TypeCtx = { ps: params, resolve: resolveTable, correlated: false };
    const prepare = (q: Select) => typeSelect(q, [], tc);
    const result: RunResult = { statementType: stmts.length > 1 ? 'SCRIPT' : '' };
    let inTx = false;
    try {
      for (const st of stmts) {
        if (!dryRun && failOn?.test(st.text)) throw new BqError('__injected', st.text);
        switch (st.k) {
          case 'begin':
            if (inTx) throw invalidQuery('Nested transactions are not supported');
            publish();
            inTx = true;
            result.statementType ||= 'BEGIN_TRANSACTION';
            break;
          case 'commit':
            if (!inTx) throw invalidQuery('COMMIT TRANSACTION is not allowed: there is no active transaction');
            publish();
            inTx = false;
            result.statementType ||= 'COMMIT_TRANSACTION';
            break;
          case 'rollback':
            if (!inTx) throw invalidQuery('ROLLBACK TRANSACTION is not allowed: there is no active transaction');
            work.clear();
            inTx = false;
            result.statementType ||= 'ROLLBACK_TRANSACTION';
            break;
          case 'select': {
            const cols = prepare(st.q);
            result.fields = cols.map((c) => ({ name: c.name, type: c.type === 'NULL' ? 'INTEGER' : c.type, mode: 'NULLABLE' }));
            result.rows = dryRun ? [] : runSelect(st.q, { frames: [], ctx });
            result.statementType ||= 'SELECT';
            break;
          }
          case 'delete': {
            const { key, fields } = resolveTable(st.table);
            const q: Select = { items: [], distinct: false, from: { parts: st.table, alias: st.alias }, where: st.where };
            prepare(q);
            result.statementType ||= 'DELETE';
            if (dryRun) break;
            const t = read(key)!;
            const rs = ctx.rowsOf(key, fields);
            const frame = frameInfo.get(q)!;
            const keep = t.rows.filter((_r, i) => !truthy(ev(st.where, { frames: [{ ...frame, row: rs[i]! }], ctx })));
            const n = t.rows.length - keep.length;
            result.affected = (result.affected ?? 0) + n;
            result.deleted = (result.deleted ?? 0) + n;
            work.set(key, { ...t, rows: keep, metadata: { ...t.metadata, lastModifiedTime: now() } });
            ctx.cache.clear();
            break;
          }
          case 'insert': {
            const { key, fields } = resolveTable(st.table);
            const targetCols = st.cols
              ? st.cols.map((c) => { const f = fields.find((x) => x.name.toLowerCase() === c.toLowerCase()); if (!f) throw invalidQuery(`Column ${c} is not present in table ${key}`); return f; })
              : fields;
            let srcTypes: string[];
            if (st.select) srcTypes = prepare(st.select).map((c) => c.type);
            else {
              srcTypes = st.values![0]!.map((x) => typeOf(x, [], tc, 0));
              for (const row of st.values!) if (row.length !== srcTypes.length) throw invalidQuery('Inserted row has wrong column count');
            }
            if (srcTypes.length !== targetCols.length) throw invalidQuery(`Inserted row has wrong column count; Has ${srcTypes.length}, expected ${targetCols.length}`);
            srcTypes.forEach((t, i) => {
              const to = targetCols[i]!.type;
              const strLitToTs = to === 'TIMESTAMP' && st.values?.every((r) => r[i]!.k === 'lit');
              if (!(t === to || t === 'NULL' || (t === 'INTEGER' && (to === 'FLOAT' || to === 'NUMERIC')) || strLitToTs)) {
                throw invalidQuery(`Query column ${i + 1} has type ${t === 'INTEGER' ? 'INT64' : t} which cannot be inserted into column ${targetCols[i]!.name}, which has type ${to === 'INTEGER' ? 'INT64' : to}`);
              }
            });
            result.statementType ||= 'INSERT';
            if (dryRun) break;
            const src = st.select ? runSelect(st.select, { frames: [], ctx }) : st.values!.map((r) => r.map((x) => ev(x, { frames: [], ctx })));
            const rows = src.map((vals) => {
              const row: Record<string, unknown> = Object.fromEntries(fields.map((f) => [f.name, f.mode === 'REPEATED' ? [] : null]));
              targetCols.forEach((f, i) => {
                let v = vals[i] ?? null;
                if (f.type === 'TIMESTAMP' && typeof v === 'string') v = castTo(v, 'TIMESTAMP', false);
                if (v === null && f.mode === 'REQUIRED') throw invalidQuery(`Required field ${f.name} cannot be null`);
                row[f.name] = toStored(f.type, v);
              });
              for (const f of fields) if (f.mode === 'REQUIRED' && row[f.name] === null) throw invalidQuery(`Required field ${f.name} cannot be null`);
              return row;
            });
            const t = read(key)!;
            work.set(key, { ...t, rows: [...t.rows, ...rows], metadata: { ...t.metadata, lastModifiedTime: now() } });
            result.affected = (result.affected ?? 0) + rows.length;
            result.inserted = (result.inserted ?? 0) + rows.length;
            ctx.cache.clear();
            break;
          }
          case 'drop': {
            const key = keyOf(st.table, dflt);
            result.statementType ||= 'DROP_TABLE';
            if (!read(key)) { if (st.ifExists) break; throw notFoundTable(key); }
            if (!dryRun) work.set(key, null);
            break;
          }
          case 'truncate': {
            const { key } = resolveTable(st.table);
            result.statementType ||= 'TRUNCATE_TABLE';
            if (!dryRun) { const t = read(key)!; work.set(key, { ...t, rows: [] }); }
            break;
          }
        }
        if (!inTx && !dryRun) publish();
      }
      if (inTx) throw invalidQuery('Transaction started by BEGIN TRANSACTION was not committed or rolled back by the end of the script');
    } catch (err) {
      work.clear();
      throw err;
    }
    return result;
  }

  /** Named / positional query parameters → typed values. */
  const paramsOf = (list: any[] = [], mode?: string): Map<string, Param> => {
    const out = new Map<string, Param>();
    list.forEach((p, i) => {
      const type = legacy(p.parameterType?.type ?? 'STRING');
      const raw = p.parameterValue?.value;
      let value: V = null;
      if (type === 'ARRAY') throw invalidQuery('ARRAY query parameters are not supported by the fake');
      if (raw !== undefined && raw !== null) {
        if (type === 'TIMESTAMP') {
          const us = parseTs(String(raw));
          if (us === null) throw invalidQuery(`Invalid TIMESTAMP value for query parameter ${p.name}: ${raw}`);
          value = new Ts(us);
        } else if (type === 'JSON') value = new Js(JSON.parse(String(raw)));
        else value = castTo(String(raw), type, false);
      }
      out.set(String(mode ?? '').toUpperCase() === 'POSITIONAL' || !p.name ? `#${i}` : p.name, { type, value });
    });
    return out;
  };

  // ---- Jobs -----------------------------------------------------------------------------------

  const takeInjected = (kind: 'load' | 'query', sql?: string): { error: InjectedJobError; re?: RegExp; statements: string[] } | null => {
    for (const f of injected) {
      if (f.left <= 0) continue;
      if (f.what === kind) { f.left--; return { error: f.error, statements: [] }; }
      if (f.what instanceof RegExp && kind === 'query' && sql !== undefined) {
        const statements = (() => { try { return new Parser(lex(sql), sql).script().map((s) => s.text); } catch { return []; } })();
        if (statements.some((t) => (f.what as RegExp).test(t)) || f.what.test(sql)) { f.left--; return { error: f.error, re: f.what, statements }; }
      }
    }
    return null;
  };

  const jobResource = (ref: any, configuration: any, jobType: string) => ({
    kind: 'bigquery#job', etag: randomBytes(6).toString('base64'),
    id: `${projectId}:${ref.location}.${ref.jobId}`, selfLink: `${base}/bigquery/v2/projects/${projectId}/jobs/${ref.jobId}?location=${ref.location}`,
    user_email: saCache?.key.client_email ?? 'anonymous@example.com',
    jobReference: ref, configuration: { ...configuration, jobType }, status: { state: 'RUNNING' },
    statistics: { creationTime: now(), startTime: now() },
  });
  const fail = (st: JobState, err: BqError, atInsert: boolean) => {
    st.failed = err;
    const e = { reason: err.reason, message: err.message, ...(err.reason === 'invalidQuery' ? { location: 'query' } : {}) };
    st.resource.status = { state: 'DONE', errorResult: e, errors: [e] };
    st.resource.statistics.endTime = now();
    st.pendingPolls = atInsert ? 0 : opts.runningPolls ?? 0;
  };
  /** The job resource as the next jobs.get / insert answer shows it. */
  const view = (st: JobState, consume: boolean) => {
    if (st.pendingPolls > 0) {
      if (consume) st.pendingPolls--;
      return { ...st.resource, status: { state: 'RUNNING' } };
    }
    return st.resource;
  };

  /** Creates and runs a job (query or load). Returns the insert answer. */
  async function insertJob(body: any, data?: Buffer): Promise<{ status: number; body: unknown }> {
    const ref = { projectId, jobId: body?.jobReference?.jobId ?? `job_${randomBytes(12).toString('base64url')}`, location: body?.jobReference?.location ?? location };
    const config = body?.configuration ?? {};
    const dry = !!config.dryRun;
    if (withheld.has('bigquery.jobs.create')) return { status: 403, body: apiError(new BqError('accessDenied', `Access Denied: Project ${projectId}: User does not have bigquery.jobs.create permission in project ${projectId}.`)) };
    if (!dry && jobState.has(ref.jobId)) return { status: 409, body: apiError(new BqError('duplicate', `Already Exists: Job ${projectId}:${ref.location}.${ref.jobId}`)) };
    const jobType = config.query ? 'QUERY' : config.load ? 'LOAD' : config.copy ? 'COPY' : config.extract ? 'EXTRACT' : 'UNKNOWN';
    const st: JobState = { resource: jobResource(ref, config, jobType), pendingPolls: opts.runningPolls ?? 0 };
    jobs.push(st.resource);
    if (data) uploads.push(data);
    if (!dry) jobState.set(ref.jobId, st);
    try {
      if (config.query) runQueryJob(st, config.query, dry);
      else if (config.load) await runLoadJob(st, config.load, data);
      else throw new BqError('invalid', `${jobType} jobs are not supported by the fake BigQuery`, false);
      if (!st.failed) {
        st.resource.status = { state: 'DONE' };
        st.resource.statistics.endTime = now();
      }
    } catch (err) {
      if (!(err instanceof BqError)) throw err;
      if (dry) return { status: STATUS[err.reason] ?? 400, body: apiError(err) };
      fail(st, err, !err.runtime);
    }
    if (dry) return { status: 200, body: { ...st.resource, status: { state: 'DONE' } } };
    const answer = st.failed && st.failed.runtime ? { ...st.resource, status: { state: 'RUNNING' } } : view(st, false);
    return { status: 200, body: answer };
  }

  function runQueryJob(st: JobState, q: any, dry: boolean) {
    const sql = String(q.query ?? '');
    queries.push(sql);
    if (q.useLegacySql === true) throw new BqError('invalidQuery', 'Legacy SQL is not supported by the fake BigQuery (set useLegacySql: false)', false);
    if (q.destinationTable) throw new BqError('invalid', 'destinationTable on query jobs is not supported by the fake BigQuery', false);
    if (withheld.has('bigquery.tables.updateData') && /(^|;)\s*(DELETE|INSERT|UPDATE|MERGE|TRUNCATE)\b/i.test(sql)) {
      throw new BqError('accessDenied', 'Access Denied: Permission bigquery.tables.updateData denied (or it may not exist).', false);
    }
    const inj = dry ? null : takeInjected('query', sql);
    if (inj && (!inj.re || !inj.statements.some((t) => inj.re!.test(t)))) throw injectedError(inj.error, 'query');
    let r: RunResult;
    try {
      r = runSql(sql, paramsOf(q.queryParameters, q.parameterMode), q.defaultDataset, dry, inj?.re);
    } catch (err) {
      if (err instanceof BqError && err.reason === '__injected') throw injectedError(inj!.error, 'query');
      throw err;
    }
    st.result = { fields: r.fields ?? [], rows: r.rows ?? [], affected: r.affected };
    st.resource.statistics.query = {
      statementType: r.statementType, totalBytesProcessed: '0', totalBytesBilled: '0', cacheHit: false,
      ...(r.affected !== undefined ? { numDmlAffectedRows: String(r.affected), dmlStats: { insertedRowCount: String(r.inserted ?? 0), deletedRowCount: String(r.deleted ?? 0), updatedRowCount: '0' } } : {}),
      ...(r.fields ? { schema: { fields: r.fields } } : {}),
    };
    st.resource.statistics.totalBytesProcessed = '0';
  }
  const injectedError = (e: InjectedJobError, kind: 'load' | 'query') => new BqError(
    e.reason ?? (kind === 'load' ? 'invalid' : 'jobInternalError'),
    e.message ?? (kind === 'load'
      ? 'Error while reading data, error message: JSON table encountered too many errors, giving up. Rows: 1; errors: 1. (injected by the fake)'
      : 'The job encountered an internal error during execution and was unable to complete successfully. (injected by the fake)'),
    e.at !== 'insert',
  );

  async function runLoadJob(st: JobState, load: any, data: Buffer | undefined) {
    const dest = load.destinationTable ?? {};
    if (dest.projectId && dest.projectId !== projectId) throw new BqError('notFound', `Not found: Project ${dest.projectId}`);
    const key = `${dest.datasetId}.${dest.tableId}`;
    if (load.sourceUris?.length) throw new BqError('invalid', 'loads from sourceUris are not supported by the fake BigQuery (upload the data)', false);
    if (!data) throw new BqError('invalid', 'a load job needs uploaded data (upload/bigquery/v2/...)', false);
    const inj = takeInjected('load');
    if (inj) throw injectedError(inj.error, 'load');
    if (!datasets.has(String(dest.datasetId))) throw notFoundDataset(String(dest.datasetId));
    const format = String(load.sourceFormat ?? 'CSV').toUpperCase();
    const given = load.schema?.fields ? normFields(load.schema.fields) : undefined;
    let t = tables.get(key);
    const disposition = String(load.writeDisposition ?? 'WRITE_APPEND').toUpperCase();
    if (t && withheld.has('bigquery.tables.updateData')) throw denied('bigquery.tables.updateData', `Table ${tableId(key)}`);
    if (!t) {
      if (String(load.createDisposition ?? 'CREATE_IF_NEEDED').toUpperCase() === 'CREATE_NEVER') throw notFoundTable(key);
      if (withheld.has('bigquery.tables.create')) throw denied('bigquery.tables.create', `Dataset ${projectId}:${key.split('.')[0]}`);
      if (!given) throw new BqError('invalid', `No schema specified on job or table ${tableId(key)} (autodetect is not supported by the fake)`);
    }
    let fields = t?.schema.fields ?? given!;
    if (t && given) {
      if (disposition === 'WRITE_TRUNCATE') fields = given;
      else {
        const addition = (load.schemaUpdateOptions ?? []).includes('ALLOW_FIELD_ADDITION');
        const known = new Set(t.schema.fields.map((f) => f.name.toLowerCase()));
        const extra = given.filter((f) => !known.has(f.name.toLowerCase()));
        if (extra.length && !addition) throw new BqError('invalid', `Provided Schema does not match Table ${tableId(key)}. Cannot add fields (field: ${extra[0]!.name})`);
        const byName = new Map(given.map((f) => [f.name.toLowerCase(), f]));
        for (const f of t.schema.fields) {
          const g = byName.get(f.name.toLowerCase());
          if (!g) throw new BqError('invalid', `Provided Schema does not match Table ${tableId(key)}. Field ${f.name} is missing in new schema`);
          if (g.type !== f.type) throw new BqError('invalid', `Provided Schema does not match Table ${tableId(key)}. Field ${f.name} has changed type from ${f.type} to ${g.type}`);
        }
        fields = [...t.schema.fields, ...extra];
      }
    }
    if (t && disposition === 'WRITE_EMPTY' && t.rows.length) throw new BqError('duplicate', `Already Exists: Table ${tableId(key)}`);
    let raw = data;
    if (raw[0] === 0x1f && raw[1] === 0x8b) raw = gunzipSync(raw);
    const byName = new Map(fields.map((f) => [f.name.toLowerCase(), f]));
    const errors: string[] = [];
    const rows: Record<string, unknown>[] = [];
    let bad = 0;
    const convertRow = (obj: Record<string, unknown>, src: 'json' | 'parquet', where: string) => {
      try {
        const row: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(obj)) {
          if (!byName.has(k.toLowerCase()) && !load.ignoreUnknownValues && v !== undefined) throw new Error(`No such field: ${k}.`);
        }
        const lower = new Map(Object.entries(obj).map(([k, v]) => [k.toLowerCase(), v]));
        for (const f of fields) row[f.name] = convertIn(f, lower.get(f.name.toLowerCase()), src);
        rows.push(row);
      } catch (err) {
        bad++;
        errors.push(`Error while reading data, error message: ${src === 'json' ? 'JSON parsing error in row starting at position' : 'Parquet row'} ${where}: ${(err as Error).message}`);
      }
    };
    if (format === 'NEWLINE_DELIMITED_JSON' || format === 'JSON') {
      let pos = 0;
      for (const line of raw.toString('utf8').split('\n')) {
        const at = pos;
        pos += Buffer.byteLength(line) + 1;
        if (!line.trim()) continue;
        let obj: unknown;
        try { obj = JSON.parse(line); } catch (err) { bad++; errors.push(`Error while reading data, error message: JSON parsing error in row starting at position ${at}: ${(err as Error).message}`); continue; }
        if (!obj || typeof obj !== 'object' || Array.isArray(obj)) { bad++; errors.push(`Error while reading data, error message: JSON parsing error in row starting at position ${at}: Row is not a JSON object`); continue; }
        convertRow(obj as Record<string, unknown>, 'json', String(at));
      }
    } else if (format === 'PARQUET') {
      let objs: Record<string, unknown>[];
      try {
        objs = await readParquet(raw);
      } catch (err) {
        throw new BqError('invalid', `Error while reading data, error message: Read less than expected or file is not a Parquet file: ${(err as Error).message}`);
      }
      objs.forEach((o, i) => convertRow(o, 'parquet', String(i)));
    } else {
      throw new BqError('invalid', `sourceFormat ${format} is not supported by the fake BigQuery (NEWLINE_DELIMITED_JSON, PARQUET)`, false);
    }
    const maxBad = Number(load.maxBadRecords ?? 0);
    if (bad > maxBad) {
      const head = new BqError('invalid', `Error while reading data, error message: ${format === 'PARQUET' ? 'Parquet' : 'JSON'} table encountered too many errors, giving up. Rows: ${bad}; errors: ${bad}. Please look into the errors[] collection for more details.`);
      st.failed = head;
      const list = [{ reason: 'invalid', message: head.message }, ...errors.slice(0, 5).map((m) => ({ reason: 'invalid', message: m }))];
      st.resource.status = { state: 'DONE', errorResult: list[0], errors: list };
      st.resource.statistics.endTime = now();
      st.pendingPolls = opts.runningPolls ?? 0;
      return;
    }
    if (!t) {
      t = newTable({ schema: { fields }, ...(load.timePartitioning ? { timePartitioning: load.timePartitioning } : {}) });
      tables.set(key, t);
    }
    t.schema = { fields };
    t.rows = disposition === 'WRITE_TRUNCATE' ? rows : [...t.rows, ...rows];
    backfill(t);
    t.metadata.lastModifiedTime = now();
    st.resource.statistics.load = {
      inputFiles: '1', inputFileBytes: String(data.length), outputRows: String(rows.length),
      outputBytes: String(Buffer.byteLength(JSON.stringify(rows))), badRecords: String(bad),
    };
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  const apiError = (err: BqError) => {
    const code = STATUS[err.reason] ?? 400;
    return { error: { code, message: err.message, errors: [{ message: err.message, domain: 'global', reason: err.reason }], status: code === 404 ? 'NOT_FOUND' : code === 409 ? 'ALREADY_EXISTS' : code === 401 ? 'UNAUTHENTICATED' : code >= 500 ? 'UNAVAILABLE' : 'INVALID_ARGUMENT' } };
  };
  const body = (req: IncomingMessage) => new Promise<Buffer>((resolve, reject) => {
    const c: Buffer[] = [];
    req.on('data', (d: Buffer) => c.push(d));
    req.on('end', () => resolve(Buffer.concat(c)));
    req.on('error', reject);
  });
  const send = (res: ServerResponse, status: number, v?: unknown, headers: Record<string, string> = {}) => {
    const m = methodOf.get(res);
    if (m && status >= 200 && status < 300 && v !== undefined && m.method.response) {
      const errs = validateValue(DISCOVERY, m.method.response, v, `response of ${m.method.id}`);
      if (errs.length) violations.push(...errs);
    }
    if (v === undefined) { res.writeHead(status, headers); res.end(); return; }
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
    res.end(JSON.stringify(v));
  };
  const sendErr = (res: ServerResponse, err: BqError) => send(res, STATUS[err.reason] ?? 400, apiError(err));
  const fmtOf = (q: URLSearchParams | Record<string, unknown> | undefined): Fmt => {
    const get = (k: string) => (q instanceof URLSearchParams ? q.get(`formatOptions.${k}`) : (q as Record<string, unknown> | undefined)?.[k]);
    return { int64Ts: String(get('useInt64Timestamp')) === 'true' || get('timestampOutputFormat') === 'INT64', isoTs: get('timestampOutputFormat') === 'ISO8601_STRING' };
  };
  const page = <T>(all: T[], q: URLSearchParams | Record<string, unknown>) => {
    const get = (k: string) => (q instanceof URLSearchParams ? q.get(k) : (q as Record<string, unknown>)[k]);
    const from = Number(get('pageToken') ?? get('startIndex') ?? 0);
    const max = get('maxResults') !== null && get('maxResults') !== undefined ? Number(get('maxResults')) : all.length;
    return { rows: all.slice(from, from + max), ...(from + max < all.length ? { pageToken: String(from + max) } : {}) };
  };
  const queryResults = (st: JobState, q: URLSearchParams | Record<string, unknown>, fmt: Fmt) => {
    const r = st.result!;
    const p = page(r.rows, q);
    return {
      kind: 'bigquery#getQueryResultsResponse', etag: st.resource.etag, jobReference: st.resource.jobReference, jobComplete: true, cacheHit: false,
      totalBytesProcessed: '0', ...(r.fields.length ? { schema: { fields: r.fields }, totalRows: String(r.rows.length), rows: apiRows(r.fields, p.rows, fmt) } : { totalRows: '0' }),
      ...(p.pageToken ? { pageToken: p.pageToken } : {}), ...(r.affected !== undefined ? { numDmlAffectedRows: String(r.affected) } : {}),
    };
  };

  const server = createServer(async (req, res) => {
    requests.push({ method: req.method!, url: req.url!, headers: req.headers });
    const url = new URL(req.url!, 'http://x');
    const q = url.searchParams;
    const path = url.pathname;
    try {
      const data = await body(req);
      if (httpFail.n > 0 && (!httpFail.match || httpFail.match.test(`${req.method} ${req.url}`))) {
        httpFail.n--;
        return send(res, httpFail.status, apiError(new BqError(httpFail.status === 429 ? 'rateLimitExceeded' : 'backendError', 'injected failure')),
          httpFail.retryAfter !== undefined ? { 'retry-after': String(httpFail.retryAfter) } : {});
      }
      const sid = q.get('upload_id');
      if (!sid) {
        const auth = req.headers.authorization ? checkBearer(req.headers.authorization, sa()) : 'anonymous';
        if (auth !== 'ok' && (auth !== 'anonymous' || opts.requireAuth)) {
          return send(res, 401, { error: {
            code: 401, status: 'UNAUTHENTICATED',
            message: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
            errors: [{ message: `Invalid Credentials (${auth === 'anonymous' ? 'no Authorization header' : auth})`, domain: 'global', reason: 'authError', location: 'Authorization', locationType: 'header' }],
          } }, { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' });
        }
      }
      const json = () => (data.length ? JSON.parse(data.toString('utf8')) : {});
      let m: RegExpMatchArray | null;

      // The published schema: the method addressed, its query parameters, its request body.
      const dm = matchMethod(DISCOVERY, req.method!, path);
      if (dm) {
        methodOf.set(res, dm);
        const errs = unknownQueryParams(DISCOVERY, dm, q);
        if (dm.method.request && !sid) {
          let reqBody: unknown;
          if (dm.upload && q.get('uploadType') === 'multipart') { const parts = splitMultipart(data, req.headers['content-type']); reqBody = parts?.[0] ? JSON.parse(parts[0].toString('utf8')) : undefined; }
          else reqBody = data.length ? JSON.parse(data.toString('utf8')) : undefined;
          errs.push(...validateValue(DISCOVERY, dm.method.request, reqBody, `request of ${dm.method.id}`));
        }
        if (errs.length) {
          violations.push(...errs);
          return sendErr(res, new BqError('invalid', `Invalid JSON payload received. ${errs.join('; ')}`));
        }
      }

      // Uploads (load jobs with media)
      if ((m = path.match(/^\/upload\/bigquery\/v2\/projects\/([^/]+)\/jobs$/))) {
        if (decodeURIComponent(m[1]!) !== projectId) return sendErr(res, new BqError('notFound', `Not found: Project ${decodeURIComponent(m[1]!)}`));
        if (sid) {
          const s = sessions.get(sid);
          if (!s) return sendErr(res, new BqError('notFound', 'No such upload session'));
          const range = /^bytes (\*|(\d+)-(\d+))\/(\*|\d+)$/.exec(String(req.headers['content-range'] ?? `bytes 0-${data.length - 1}/${data.length}`));
          if (range && range[1] !== '*' && Number(range[2]) === s.size) { s.chunks.push(data); s.size += data.length; }
          if (!range || (range[4] !== '*' && s.size >= Number(range[4]))) {
            sessions.delete(sid);
            const r = await insertJob(s.job, Buffer.concat(s.chunks));
            return send(res, r.status, r.body);
          }
          return send(res, 308, undefined, s.size ? { range: `bytes=0-${s.size - 1}` } : {});
        }
        const type = q.get('uploadType');
        if (req.method === 'POST' && type === 'multipart') {
          const parts = splitMultipart(data, req.headers['content-type']);
          if (!parts || parts.length < 2) return sendErr(res, new BqError('invalid', 'multipart upload needs the job and the data'));
          const r = await insertJob(JSON.parse(parts[0]!.toString('utf8')), parts[1]!);
          return send(res, r.status, r.body);
        }
        if (req.method === 'POST' && type === 'resumable') {
          const id = randomBytes(12).toString('hex');
          sessions.set(id, { job: json(), chunks: [], size: 0 });
          return send(res, 200, undefined, { location: `${base}/upload/bigquery/v2/projects/${projectId}/jobs?uploadType=resumable&upload_id=${id}` });
        }
        return sendErr(res, new BqError('invalid', `uploadType ${type} is not supported by the fake`));
      }

      if (!(m = path.match(/^\/bigquery\/v2\/projects\/([^/]+)(\/.*)?$/))) return sendErr(res, new BqError('notFound', `not supported by the fake BigQuery: ${req.method} ${path}`));
      const project = decodeURIComponent(m[1]!);
      const rest = m[2] ?? '';
      if (project !== projectId) return sendErr(res, new BqError('notFound', `Not found: Project ${project}`));
      const M = req.method;

      // Datasets
      if (rest === '/datasets' && M === 'GET') {
        return send(res, 200, { kind: 'bigquery#datasetList', datasets: [...datasets.keys()].map((d) => ({ kind: 'bigquery#dataset', id: `${projectId}:${d}`, datasetReference: { projectId, datasetId: d }, location: datasets.get(d)!.location })) });
      }
      if (rest === '/datasets' && M === 'POST') {
        const b = json();
        const d = b.datasetReference?.datasetId;
        if (!d) return sendErr(res, new BqError('invalid', 'Missing datasetReference.datasetId'));
        if (datasets.has(d)) return sendErr(res, new BqError('duplicate', `Already Exists: Dataset ${projectId}:${d}`));
        const { datasetReference: _r, ...meta } = b;
        datasets.set(d, { location: b.location ?? location, metadata: { ...meta, creationTime: now() } });
        return send(res, 200, { kind: 'bigquery#dataset', id: `${projectId}:${d}`, datasetReference: { projectId, datasetId: d }, location: b.location ?? location, ...meta });
      }
      if ((m = rest.match(/^\/datasets\/([^/]+)$/))) {
        const d = decodeURIComponent(m[1]!);
        const ds = datasets.get(d);
        if (!ds) return sendErr(res, notFoundDataset(d));
        if (M === 'GET') return send(res, 200, { kind: 'bigquery#dataset', id: `${projectId}:${d}`, datasetReference: { projectId, datasetId: d }, location: ds.location, ...ds.metadata });
        if (M === 'DELETE') {
          const inside = [...tables.keys()].filter((k) => k.startsWith(`${d}.`));
          if (inside.length && q.get('deleteContents') !== 'true') return sendErr(res, new BqError('resourceInUse', `Dataset ${projectId}:${d} is still in use`));
          for (const k of inside) tables.delete(k);
          datasets.delete(d);
          return send(res, 204);
        }
      }

      // Tables
      if ((m = rest.match(/^\/datasets\/([^/]+)\/tables$/))) {
        const d = decodeURIComponent(m[1]!);
        if (!datasets.has(d)) return sendErr(res, notFoundDataset(d));
        if (M === 'GET') {
          const list = [...tables.entries()].filter(([k]) => k.startsWith(`${d}.`)).map(([k, t]) => {
            const r = tableResource(k, t);
            return { kind: r.kind, id: r.id, tableReference: r.tableReference, type: 'TABLE', creationTime: (r as any).creationTime, ...(r.timePartitioning ? { timePartitioning: r.timePartitioning } : {}) };
          });
          return send(res, 200, { kind: 'bigquery#tableList', tables: list, totalItems: list.length });
        }
        if (M === 'POST') {
          const b = json();
          const id = b.tableReference?.tableId;
          if (!id) return sendErr(res, new BqError('invalid', 'Missing tableReference.tableId'));
          const key = `${d}.${id}`;
          if (withheld.has('bigquery.tables.create')) return sendErr(res, denied('bigquery.tables.create', `Dataset ${projectId}:${d}`));
          if (tables.has(key)) return sendErr(res, new BqError('duplicate', `Already Exists: Table ${tableId(key)}`));
          const t = newTable(b);
          const tp = t.timePartitioning as { field?: string } | undefined;
          if (tp?.field) {
            const f = t.schema.fields.find((x) => x.name.toLowerCase() === tp.field!.toLowerCase());
            if (!f || !['TIMESTAMP', 'DATE', 'DATETIME'].includes(f.type)) return sendErr(res, new BqError('invalid', `The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. The type found is: ${f?.type ?? 'missing'}.`));
          }
          tables.set(key, t);
          return send(res, 200, tableResource(key, t));
        }
      }
      if ((m = rest.match(/^\/datasets\/([^/]+)\/tables\/([^/]+)(\/data)?$/))) {
        const d = decodeURIComponent(m[1]!);
        const key = `${d}.${decodeURIComponent(m[2]!)}`;
        if (!datasets.has(d)) return sendErr(res, notFoundDataset(d));
        const t = tables.get(key);
        if (!t) return sendErr(res, notFoundTable(key));
        if (m[3] && M === 'GET') {
          const all = t.rows.map((r) => t.schema.fields.map((f) => fromStored(f.type, r[f.name])));
          const p = page(all, q);
          return send(res, 200, { kind: 'bigquery#tableDataList', etag: 'x', totalRows: String(all.length), rows: apiRows(t.schema.fields, p.rows, fmtOf(q)), ...(p.pageToken ? { pageToken: p.pageToken } : {}) });
        }
        if (M === 'GET') return send(res, 200, tableResource(key, t));
        if (M === 'DELETE') {
          if (withheld.has('bigquery.tables.delete')) return sendErr(res, denied('bigquery.tables.delete', `Table ${tableId(key)}`));
          tables.delete(key);
          return send(res, 204);
        }
        if (M === 'PATCH' || M === 'PUT') {
          const b = json();
          const { schema, timePartitioning, tableReference: _r, id: _i, kind: _k, etag: _e, numRows: _n, numBytes: _b, ...meta } = b;
          try {
            if (schema?.fields) { t.schema = { fields: checkSchemaUpdate(key, t.schema.fields, normFields(schema.fields)) }; backfill(t); }
          } catch (err) { return sendErr(res, err as BqError); }
          if (timePartitioning && JSON.stringify(timePartitioning) !== JSON.stringify(t.timePartitioning)) return sendErr(res, new BqError('invalid', 'Cannot change partitioning/clustering spec for a partitioned/clustered table.'));
          t.metadata = { ...(M === 'PUT' ? { creationTime: t.metadata.creationTime } : t.metadata), ...meta, lastModifiedTime: now() };
          return send(res, 200, tableResource(key, t));
        }
      }

      // Jobs
      if (rest === '/jobs' && M === 'POST') {
        const r = await insertJob(json());
        return send(res, r.status, r.body);
      }
      if ((m = rest.match(/^\/jobs\/([^/]+)(\/cancel)?$/))) {
        const st = jobState.get(decodeURIComponent(m[1]!));
        if (!st) return sendErr(res, new BqError('notFound', `Not found: Job ${projectId}:${q.get('location') ?? location}.${decodeURIComponent(m[1]!)}`));
        if (m[2] && M === 'POST') return send(res, 200, { kind: 'bigquery#jobCancelResponse', job: view(st, false) });
        if (M === 'GET') return send(res, 200, view(st, true));
      }
      if ((m = rest.match(/^\/queries\/([^/]+)$/)) && M === 'GET') {
        const st = jobState.get(decodeURIComponent(m[1]!));
        if (!st) return sendErr(res, new BqError('notFound', `Not found: Job ${projectId}:${q.get('location') ?? location}.${decodeURIComponent(m[1]!)}`));
        if (st.pendingPolls > 0) { st.pendingPolls--; return send(res, 200, { kind: 'bigquery#getQueryResultsResponse', jobReference: st.resource.jobReference, jobComplete: false }); }
        if (st.failed) return sendErr(res, st.failed);
        if (!st.result) return sendErr(res, new BqError('invalid', `Job ${st.resource.id} is not a query job`));
        return send(res, 200, queryResults(st, q, fmtOf(q)));
      }
      if (rest === '/queries' && M === 'POST') {
        const b = json();
        const r = await insertJob({
          jobReference: { jobId: `job_${randomBytes(12).toString('base64url')}`, location: b.location ?? location },
          configuration: { query: { query: b.query, useLegacySql: b.useLegacySql ?? true, queryParameters: b.queryParameters, parameterMode: b.parameterMode, defaultDataset: b.defaultDataset }, ...(b.dryRun ? { dryRun: true } : {}), ...(b.labels ? { labels: b.labels } : {}) },
        });
        if (r.status !== 200) return send(res, r.status, r.body);
        const st = jobState.get((r.body as any).jobReference.jobId)!;
        if (st.failed) { st.pendingPolls = 0; return sendErr(res, st.failed); }
        st.pendingPolls = 0;
        const { etag: _etag, ...qr } = queryResults(st, b, fmtOf(b.formatOptions)); // QueryResponse has no etag
        return send(res, 200, { ...qr, kind: 'bigquery#queryResponse' });
      }
      return sendErr(res, new BqError('notFound', `not supported by the fake BigQuery: ${M} ${path}`));
    } catch (err) {
      if (err instanceof BqError) return sendErr(res, err);
      if (!res.headersSent) send(res, 500, apiError(new BqError('internalError', `fake BigQuery: ${(err as Error).stack ?? err}`)));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    apiEndpoint: base, projectId, location, datasets, tables, jobs, queries, uploads, requests, violations, withheld,
    get credentials() { return sa().key; },
    failNext(what, error = {}, times = 1) { injected.push({ what, error, left: times }); },
    failRequests(n, status, o = {}) { httpFail = { n, status, retryAfter: o.retryAfter, match: o.match }; },
    stop: () => new Promise((r, j) => {
      server.closeAllConnections();
      server.close(() => (violations.length ? j(new Error(`fake BigQuery: requests or responses that do not match the published API schema:\n${violations.join('\n')}`)) : r()));
    }),
  };
}

/** Parquet bytes → row objects; timestamps keep microseconds, JSON columns stay text. */
async function readParquet(buf: Buffer): Promise<Record<string, unknown>[]> {
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  const dec = new TextDecoder();
  return (await parquetReadObjects({
    file: ab,
    compressors: {
      GZIP: (b: Uint8Array) => new Uint8Array(gunzipSync(b)),
      BROTLI: (b: Uint8Array) => new Uint8Array(brotliDecompressSync(b)),
    },
    parsers: {
      timestampFromMilliseconds: (ms: bigint) => new Ts(BigInt(ms) * 1000n),
      timestampFromMicroseconds: (us: bigint) => new Ts(BigInt(us)),
      timestampFromNanoseconds: (ns: bigint) => new Ts(BigInt(ns) / 1000n),
      jsonFromBytes: (b: Uint8Array | undefined) => (b ? dec.decode(b) : b),
    },
  } as never)) as Record<string, unknown>[];
}
