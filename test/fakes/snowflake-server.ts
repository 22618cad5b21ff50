/**
 * A fake Snowflake for tests: an HTTP server on 127.0.0.1 that speaks the
 * subset of Snowflake's REST protocol the real `snowflake-sdk` (3.x) uses, so
 * the SDK is exercised unmodified, over HTTP, end to end.
 *
 * Protocol (read from snowflake-sdk/dist/lib): request bodies are gzipped JSON,
 * every answer is HTTP 200 `{ success, code, message, data }`; a failure is
 * `success: false` with a Snowflake error code and `data.sqlState`, which the
 * SDK turns into an error with `.code` and `.sqlState`.
 *   POST /session/v1/login-request      password, or SNOWFLAKE_JWT verified (RS256, iss/sub) against the user's registered public key → tokens, parameters
 *   POST /queries/v1/query-request      `sqlText`, `bindings`, `asyncExec` → JSON result (rowtype + rowset;
 *                                       the Node SDK has no Arrow reader, JSON is all it ever asks for)
 *   GET  /queries/:id/result            a stored result (asyncExec / getResultsFromQueryId)
 *   GET  /monitoring/queries/:id        query status
 *   POST /session?delete=true           logout: an open transaction is rolled back, temp tables dropped
 *   POST /session/heartbeat, /session/token-request, /telemetry/send, /queries/v1/abort-request
 * A query-request repeated with the same `requestId` (an SDK retry) gets the first answer, not a second run.
 *
 * Pointing the SDK here: `{ account: 'fakeaccount', accessUrl: 'http://127.0.0.1:<port>' }` (both needed:
 * without `account` the SDK derives one from the URL's host, '127'). Plain HTTP means no OCSP/CRL checks.
 * The SDK probes cloud metadata endpoints (169.254.169.254, metadata.google.internal) when it is first
 * loaded unless SNOWFLAKE_DISABLE_PLATFORM_DETECTION=true; importing this module sets that (and turns the
 * connection-shape telemetry off), so import it BEFORE anything imports snowflake-sdk.
 *
 * Array binds: the login parameters keep Snowflake's CLIENT_STAGE_ARRAY_BINDING_THRESHOLD (65280 bound
 * values). Past it the SDK would `CREATE TEMPORARY STAGE SYSTEM$BIND` and PUT the binds as CSV; the fake
 * refuses CREATE STAGE, and the SDK then falls back to sending the binds inline (it logs a warning), so
 * large array-bound INSERTs still work, just never via a bind stage.
 *
 * PUT: answered as Snowflake answers for an AWS-hosted account (snowflake-stage.ts): the stage is a
 * prefix in a bucket of an S3-compatible server (s3rver over HTTPS, test/support/services.ts) and the
 * answer carries S3 credentials, its endpoint and the stage's encryption material; the SDK's file
 * transfer agent encrypts the file (AES-CBC, key wrapped with the master key) and uploads it with its
 * own S3 client. COPY fetches each file from the S3 server, decrypts it and checks its digest; one that
 * does not open fails the COPY and lands in `violations` (stop() then fails). `stagedFiles` is a live,
 * decrypted view of the stages. This needs the test CA trusted (NODE_EXTRA_CA_CERTS, global setup).
 * Only table stages (`@%T`, `@DB.SCHEMA.%T`, with a path) and the user stage `@~` exist.
 *
 * SQL supported (one statement per request; keywords case-insensitive; `?` or `:N` binds; `--`/`/* *\/` comments):
 *   SELECT 1 | SELECT CURRENT_VERSION() | CURRENT_DATABASE() … (no FROM)
 *   SELECT [DISTINCT] <exprs | *> FROM <table | DB.INFORMATION_SCHEMA.COLUMNS | …TABLES | VALUES (…)> [alias]
 *          [WHERE …] [ORDER BY …] [LIMIT n]   (aggregates COUNT/MIN/MAX/SUM/AVG without GROUP BY)
 *   CREATE [OR REPLACE] [TEMPORARY|TRANSIENT] TABLE [IF NOT EXISTS] t (col TYPE [NOT NULL|DEFAULT …|COMMENT …], …)
 *   ALTER TABLE [IF EXISTS] t ADD [COLUMN] [IF NOT EXISTS] col TYPE [, col TYPE …]
 *   DROP TABLE [IF EXISTS] t | TRUNCATE [TABLE] [IF EXISTS] t
 *   CREATE DATABASE|SCHEMA …, USE …, ALTER SESSION … (accepted, no effect except USE)
 *   BEGIN [TRANSACTION] | START TRANSACTION | COMMIT | ROLLBACK
 *   INSERT [OVERWRITE] INTO t [(cols)] VALUES (…), … — array binds run the VALUES once per bound row;
 *          PARSE_JSON & co. in VALUES fail as on Snowflake (002014)
 *   INSERT INTO t [(cols)] SELECT … FROM <table|VALUES> [alias] [WHERE [NOT] EXISTS (SELECT … correlated)]
 *          (a correlated `x.c = outer.c` in EXISTS goes through a hash index: 5k × 5k rows in ~0.5 s)
 *   DELETE FROM t [WHERE …]
 *   COPY INTO t [(cols)] FROM @stage[/path] [FILES = ('f', …)] [PATTERN = '…'] FILE_FORMAT = (TYPE = PARQUET|JSON …)
 *          [MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE|CASE_SENSITIVE] [ON_ERROR = ABORT_STATEMENT|CONTINUE|SKIP_FILE]
 *          [PURGE = TRUE] [FORCE = TRUE] — Parquet via hyparquet; JSON = NDJSON (gzip ok) or STRIP_OUTER_ARRAY;
 *          files already loaded into the table (same name and content) are skipped unless FORCE, as on Snowflake
 *   PUT file://… @stage[/path] [AUTO_COMPRESS=…] [OVERWRITE=…] [SOURCE_COMPRESSION=…] | REMOVE/RM @stage[/path] [PATTERN=…]
 *   LIST/LS @stage[/path]
 * Expressions: column refs (alias.col), literals, binds, = <> != < <= > >=, AND/OR/NOT, IS [NOT] NULL,
 *   [NOT] IN (… | uncorrelated SELECT …), [NOT] BETWEEN, [NOT] EXISTS (SELECT …), + - ||, ::TYPE, CAST(x AS T), PARSE_JSON,
 *   TRY_PARSE_JSON, TO_VARIANT, TO_TIMESTAMP[_TZ|_NTZ|_LTZ], TO_DATE, TO_NUMBER, TO_DOUBLE, TO_VARCHAR,
 *   TO_BOOLEAN, COALESCE, UPPER, LOWER, CURRENT_TIMESTAMP…
 * Anything else fails with a Snowflake-style compilation error (001003, SQLSTATE 42000). Other error codes
 * used: 002003/42S02 missing object, 000904 invalid identifier, 002002 exists, 100035/100038/100037/100078/
 * 100069 (22xxx) for values that do not convert, 002014 PARSE_JSON in VALUES, 002020 bad INSERT arity.
 *
 * Semantics (simplified): types are checked and converted like Snowflake's implicit casts (NUMBER rounds to
 * its scale, VARCHAR(n) length, BOOLEAN, TIMESTAMP_* from ISO strings or epoch numbers, VARIANT). Stored
 * values are JS values: numbers, strings, booleans, Date (all timestamps, millisecond precision; the TZ
 * offset is not kept, strings without an offset are read as UTC = the fake's TIMEZONE), parsed JSON for
 * VARIANT. Transactions: DML inside BEGIN works on a per-session copy of each touched table and lands on
 * COMMIT (last committer wins, no conflict detection); ROLLBACK, logout or a failed statement's own changes
 * are discarded; DDL first commits an open transaction, as Snowflake does. A failed statement changes
 * nothing. TEMPORARY tables live in the session and are not in `tables`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { parquetReadObjects } from 'hyparquet';
import type { S3Service } from '../support/services.js';
import { verifySnowflakeJwt } from './snowflake-jwt.js';
import { startStageStore } from './snowflake-stage.js';

// Must be set before snowflake-sdk is first loaded (platform detection runs at module load).
process.env.SNOWFLAKE_DISABLE_PLATFORM_DETECTION ??= 'true';
process.env.SF_TELEMETRY_DISABLE_CONNECTION_SHAPE ??= 'true';

// ---------------------------------------------------------------------------------------------------
// Public API

export interface FakeColumn { name: string; type: string }
export interface FakeTable { name: string; columns: FakeColumn[]; rows: Record<string, unknown>[]; temporary?: boolean }
export interface FakeStatement { sql: string; binds?: unknown[] | unknown[][]; session: number; error?: string }
export interface FakeSnowflakeOptions {
  /** Accepted credentials (default: any username/password is accepted). */
  username?: string;
  password?: string;
  /** Account name put in `connectionOptions` (default 'fakeaccount'). */
  account?: string;
  /**
   * RSA public keys (PEM) registered per user, as `ALTER USER … SET RSA_PUBLIC_KEY`. A
   * SNOWFLAKE_JWT login is accepted only when its token verifies against the user's key.
   */
  publicKeys?: Record<string, string>;
}
export type SfPrivilege = 'stage write' | 'CREATE TABLE' | 'INSERT' | 'DELETE';
export interface FakeSnowflake {
  url: string;
  /** Pass to snowflake.createConnection together with username/password (and database/schema/…). */
  connectionOptions: { account: string; accessUrl: string };
  statements: FakeStatement[];
  /** Permanent tables by fully qualified upper-case name, e.g. 'DB.PUBLIC.EVENTS'. */
  tables: Map<string, FakeTable>;
  /** Files currently in stages (live, decrypted), keyed '@%DB.SCHEMA.T/path/file' or '@~/path/file'. */
  stagedFiles: Map<string, Buffer>;
  /** The S3-compatible server (HTTPS) the stages live on, and their bucket. */
  stageStore: { s3: S3Service; bucket: string };
  /** Staged files that were not encrypted as the PUT answer said (or whose digest did not match); stop() fails while any. */
  violations: string[];
  /** Why each refused SNOWFLAKE_JWT login was refused, in order. */
  jwtRefusals: string[];
  /**
   * Privileges the session's role lacks, refused with 003001 (SQL access control error) as Snowflake
   * does: 'stage write' PUT and REMOVE; 'CREATE TABLE' on the schema, temporary tables included;
   * 'INSERT' / 'DELETE' on permanent tables (INSERT covers COPY INTO). A session's own temporary
   * tables are always writable (it owns them).
   */
  withheld: Set<SfPrivilege>;
  /** `ALTER USER <user> SET RSA_PUBLIC_KEY = <pem>`. */
  registerPublicKey(user: string, pem: string): void;
  /** Logins seen: user, authenticator, database/schema/warehouse/role asked for. */
  logins: Array<{ user: string; authenticator: string; database?: string; schema?: string; warehouse?: string; role?: string }>;
  /** Make the next `times` statements whose SQL matches fail with this error (for failure-path tests). */
  failWhen(match: RegExp | string, err?: { code?: string; sqlState?: string; message?: string }, times?: number): void;
  /** Number of live sessions. */
  sessionCount(): number;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------
// Errors

class SfError extends Error {
  constructor(readonly code: string, readonly sqlState: string, message: string) { super(message); }
}
const sfErr = (code: string, sqlState: string, message: string) => new SfError(code, sqlState, message);
const compileErr = (m: string) => sfErr('001003', '42000', `SQL compilation error:\n${m}`);
const unsupported = (sql: string) => compileErr(`the fake Snowflake does not support this statement: ${sql.trim().slice(0, 200)}`);
const noObject = (kind: string, name: string) => sfErr('002003', '42S02', `SQL compilation error:\n${kind} '${name}' does not exist or not authorized.`);
const badIdent = (name: string) => sfErr('000904', '42000', `SQL compilation error: error line 1 at position 0\ninvalid identifier '${name}'`);

// ---------------------------------------------------------------------------------------------------
// Tokenizer

type TokKind = 'id' | 'qid' | 'str' | 'num' | 'bind' | 'op' | 'stage' | 'eof';
interface Tok { k: TokKind; v: string; pos: number; end: number; n?: number }

function tokenize(sql: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  let q = 0; // next `?` index
  while (i < sql.length) {
    const c = sql[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if (sql.startsWith('--', i) || sql.startsWith('//', i)) { const j = sql.indexOf('\n', i); i = j < 0 ? sql.length : j + 1; continue; }
    if (sql.startsWith('/*', i)) { const j = sql.indexOf('*/', i + 2); i = j < 0 ? sql.length : j + 2; continue; }
    const pos = i;
    const push = (k: TokKind, v: string, n?: number) => out.push({ k, v, pos, end: i, n });
    if (c === "'") {
      let v = '';
      i++;
      for (;;) {
        if (i >= sql.length) throw compileErr(`syntax error line 1 at position ${pos} unexpected '<EOF>'.`);
        const d = sql[i]!;
        if (d === '\\') { const e = sql[i + 1] ?? ''; v += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e === '0' ? '\0' : e; i += 2; continue; }
        if (d === "'") { if (sql[i + 1] === "'") { v += "'"; i += 2; continue; } i++; break; }
        v += d;
        i++;
      }
      push('str', v);
    } else if (sql.startsWith('$$', i)) {
      const j = sql.indexOf('$$', i + 2);
      if (j < 0) throw compileErr(`syntax error line 1 at position ${pos} unexpected '<EOF>'.`);
      const v = sql.slice(i + 2, j);
      i = j + 2;
      push('str', v);
    } else if (c === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= sql.length) throw compileErr(`syntax error line 1 at position ${pos} unexpected '<EOF>'.`);
        if (sql[i] === '"') { if (sql[i + 1] === '"') { v += '"'; i += 2; continue; } i++; break; }
        v += sql[i++];
      }
      push('qid', v);
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      const m = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(sql.slice(i))!;
      i += m[0].length;
      push('num', m[0]);
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i))!;
      i += m[0].length;
      push('id', m[0]);
    } else if (c === '?') {
      i++;
      push('bind', '?', q++);
    } else if (c === ':' && /[0-9]/.test(sql[i + 1] ?? '')) {
      const m = /^:(\d+)/.exec(sql.slice(i))!;
      i += m[0].length;
      push('bind', m[0], Number(m[1]) - 1);
    } else if (c === '@') {
      // a stage reference, up to whitespace / , ) ; (quoted parts may hold anything)
      let inQ = false;
      while (i < sql.length) {
        const d = sql[i]!;
        if (d === '"') inQ = !inQ;
        else if (!inQ && (/\s/.test(d) || d === ',' || d === ')' || d === ';')) break;
        i++;
      }
      push('stage', sql.slice(pos, i));
    } else {
      const two = sql.slice(i, i + 2);
      if (['::', '<=', '>=', '<>', '!=', '||'].includes(two)) { i += 2; push('op', two); } else if ('(),.;=<>*+-/%'.includes(c)) { i++; push('op', c); } else throw compileErr(`syntax error line 1 at position ${pos} unexpected '${c}'.`);
    }
  }
  out.push({ k: 'eof', v: '', pos: sql.length, end: sql.length });
  return out;
}

// ---------------------------------------------------------------------------------------------------
// AST

type Expr =
  | { k: 'lit'; v: unknown }
  | { k: 'bind'; i: number }
  | { k: 'col'; q?: string; name: string }
  | { k: 'fn'; name: string; args: Expr[]; star?: boolean; distinct?: boolean }
  | { k: 'cast'; e: Expr; type: string }
  | { k: 'bin'; op: string; l: Expr; r: Expr }
  | { k: 'not'; e: Expr }
  | { k: 'neg'; e: Expr }
  | { k: 'isnull'; e: Expr; not: boolean }
  | { k: 'in'; e: Expr; list: Expr[]; not: boolean; q?: Select }
  | { k: 'between'; e: Expr; lo: Expr; hi: Expr; not: boolean }
  | { k: 'exists'; q: Select; not: boolean }
  | { k: 'subq'; q: Select };
interface SelItem { e?: Expr; star?: string | true; alias?: string; text: string }
type Source = { k: 'table'; name: string[]; alias?: string } | { k: 'values'; rows: Expr[][]; alias?: string };
interface Select { items: SelItem[]; distinct: boolean; from?: Source; where?: Expr; order: { e: Expr; desc: boolean }[]; limit?: number }
type OptVal = string | number | boolean | OptVal[] | { [k: string]: OptVal };

const AGGS = new Set(['COUNT', 'MIN', 'MAX', 'SUM', 'AVG']);
const SEMI_FNS = new Set(['PARSE_JSON', 'TRY_PARSE_JSON', 'TO_VARIANT', 'TO_OBJECT', 'TO_ARRAY', 'OBJECT_CONSTRUCT', 'ARRAY_CONSTRUCT']);
const CLAUSE_WORDS = new Set(['WHERE', 'ORDER', 'LIMIT', 'GROUP', 'HAVING', 'UNION', 'ON', 'JOIN', 'INNER', 'LEFT', 'RIGHT', 'FULL', 'CROSS', 'FROM', 'SET', 'QUALIFY', 'FILES', 'PATTERN', 'FILE_FORMAT']);

class Parser {
  i = 0;
  constructor(readonly t: Tok[], readonly sql: string) {}
  peek(o = 0): Tok { return this.t[Math.min(this.i + o, this.t.length - 1)]!; }
  next(): Tok { const t = this.peek(); if (t.k !== 'eof') this.i++; return t; }
  isKw(...ws: string[]): boolean { return ws.every((w, j) => { const t = this.peek(j); return t.k === 'id' && t.v.toUpperCase() === w; }); }
  kw(...ws: string[]): boolean { if (this.isKw(...ws)) { this.i += ws.length; return true; } return false; }
  expectKw(...ws: string[]): void { if (!this.kw(...ws)) throw this.unexpected(); }
  isOp(o: string): boolean { const t = this.peek(); return t.k === 'op' && t.v === o; }
  op(o: string): boolean { if (this.isOp(o)) { this.i++; return true; } return false; }
  expectOp(o: string): void { if (!this.op(o)) throw this.unexpected(); }
  unexpected(): SfError {
    const t = this.peek();
    return compileErr(`syntax error line 1 at position ${t.pos} unexpected '${t.k === 'eof' ? '<EOF>' : this.sql.slice(t.pos, t.end)}'.`);
  }
  end(): void { this.op(';'); if (this.peek().k !== 'eof') throw this.unexpected(); }
  ident(): string {
    const t = this.next();
    if (t.k === 'id') return t.v.toUpperCase();
    if (t.k === 'qid') return t.v;
    this.i--;
    throw this.unexpected();
  }
  name(): string[] { const p = [this.ident()]; while (this.op('.')) p.push(this.ident()); return p; }
  /** A type: NUMBER(38,0), VARCHAR(10), DOUBLE PRECISION, TIMESTAMP_TZ(9)… */
  type(): string {
    let t = this.ident();
    if (t === 'DOUBLE' && this.kw('PRECISION')) t = 'DOUBLE PRECISION';
    if (t === 'CHARACTER' && this.kw('VARYING')) t = 'VARCHAR';
    if (this.op('(')) {
      const args: string[] = [];
      do { args.push(this.next().v); } while (this.op(','));
      this.expectOp(')');
      t += `(${args.join(',')})`;
    }
    return t;
  }

  // expressions, loosest first
  expr(): Expr { return this.or(); }
  or(): Expr { let l = this.and(); while (this.kw('OR')) l = { k: 'bin', op: 'OR', l, r: this.and() }; return l; }
  and(): Expr { let l = this.notE(); while (this.kw('AND')) l = { k: 'bin', op: 'AND', l, r: this.notE() }; return l; }
  notE(): Expr { if (this.isKw('NOT') && !this.isKw('NOT', 'EXISTS')) { this.i++; return { k: 'not', e: this.notE() }; } return this.cmp(); }
  cmp(): Expr {
    const l = this.add();
    const t = this.peek();
    if (t.k === 'op' && ['=', '<>', '!=', '<', '<=', '>', '>='].includes(t.v)) { this.i++; return { k: 'bin', op: t.v === '!=' ? '<>' : t.v, l, r: this.add() }; }
    if (this.kw('IS')) { const not = this.kw('NOT'); this.expectKw('NULL'); return { k: 'isnull', e: l, not }; }
    const not = this.kw('NOT');
    if (this.kw('IN')) {
      this.expectOp('(');
      if (this.isKw('SELECT')) { const q = this.select(); this.expectOp(')'); return { k: 'in', e: l, list: [], not, q }; }
      const list: Expr[] = [];
      do { list.push(this.expr()); } while (this.op(','));
      this.expectOp(')');
      return { k: 'in', e: l, list, not };
    }
    if (this.kw('BETWEEN')) { const lo = this.add(); this.expectKw('AND'); return { k: 'between', e: l, lo, hi: this.add(), not }; }
    if (not) { this.i--; throw this.unexpected(); }
    return l;
  }
  add(): Expr {
    let l = this.unary();
    for (;;) {
      const t = this.peek();
      if (t.k === 'op' && ['+', '-', '||', '*', '/'].includes(t.v)) { this.i++; l = { k: 'bin', op: t.v, l, r: this.unary() }; } else return l;
    }
  }
  unary(): Expr { if (this.op('-')) return { k: 'neg', e: this.unary() }; this.op('+'); return this.postfix(); }
  postfix(): Expr { let e = this.primary(); while (this.op('::')) e = { k: 'cast', e, type: this.type() }; return e; }
  primary(): Expr {
    const t = this.peek();
    if (t.k === 'op' && t.v === '(') {
      this.i++;
      if (this.isKw('SELECT')) { const q = this.select(); this.expectOp(')'); return { k: 'subq', q }; }
      const e = this.expr();
      this.expectOp(')');
      return e;
    }
    if (t.k === 'str') { this.i++; return { k: 'lit', v: t.v }; }
    if (t.k === 'num') { this.i++; return { k: 'lit', v: Number(t.v) }; }
    if (t.k === 'bind') { this.i++; return { k: 'bind', i: t.n! }; }
    if (t.k === 'qid') { const n = this.name(); return n.length > 1 ? { k: 'col', q: n[n.length - 2], name: n[n.length - 1]! } : { k: 'col', name: n[0]! }; }
    if (t.k !== 'id') throw this.unexpected();
    const w = t.v.toUpperCase();
    if (w === 'NULL') { this.i++; return { k: 'lit', v: null }; }
    if (w === 'TRUE' || w === 'FALSE') { this.i++; return { k: 'lit', v: w === 'TRUE' }; }
    if (this.isKw('NOT', 'EXISTS') || w === 'EXISTS') {
      const not = this.kw('NOT');
      this.expectKw('EXISTS');
      this.expectOp('(');
      const q = this.select();
      this.expectOp(')');
      return { k: 'exists', q, not };
    }
    if (w === 'CAST' && this.peek(1).v === '(') {
      this.i += 2;
      const e = this.expr();
      this.expectKw('AS');
      const type = this.type();
      this.expectOp(')');
      return { k: 'cast', e, type };
    }
    if (this.peek(1).k === 'op' && this.peek(1).v === '(') {
      this.i += 2;
      const f: Expr & { k: 'fn' } = { k: 'fn', name: w, args: [] };
      if (this.op('*')) f.star = true;
      else if (!this.isOp(')')) {
        if (this.kw('DISTINCT')) f.distinct = true;
        do { f.args.push(this.expr()); } while (this.op(','));
      }
      this.expectOp(')');
      return f;
    }
    if (['CURRENT_TIMESTAMP', 'CURRENT_DATE', 'SYSDATE', 'CURRENT_USER', 'CURRENT_ROLE'].includes(w)) { this.i++; return { k: 'fn', name: w, args: [] }; }
    const n = this.name();
    return n.length > 1 ? { k: 'col', q: n[n.length - 2], name: n[n.length - 1]! } : { k: 'col', name: n[0]! };
  }
  alias(): string | undefined {
    if (this.kw('AS')) return this.ident();
    const t = this.peek();
    if (t.k === 'qid' || (t.k === 'id' && !CLAUSE_WORDS.has(t.v.toUpperCase()))) return this.ident();
    return undefined;
  }
  values(): Expr[][] {
    const rows: Expr[][] = [];
    do {
      this.expectOp('(');
      const r: Expr[] = [];
      do { r.push(this.expr()); } while (this.op(','));
      this.expectOp(')');
      rows.push(r);
    } while (this.op(','));
    return rows;
  }
  select(): Select {
    this.expectKw('SELECT');
    const s: Select = { items: [], distinct: this.kw('DISTINCT'), order: [] };
    do {
      const start = this.peek().pos;
      if (this.op('*')) { s.items.push({ star: true, text: '*' }); continue; }
      if ((this.peek().k === 'id' || this.peek().k === 'qid') && this.peek(1).v === '.' && this.peek(2).v === '*') {
        const q = this.ident();
        this.i += 2;
        s.items.push({ star: q, text: `${q}.*` });
        continue;
      }
      const e = this.expr();
      const text = this.sql.slice(start, this.t[this.i - 1]!.end);
      s.items.push({ e, alias: this.alias(), text });
    } while (this.op(','));
    if (this.kw('FROM')) {
      if (this.op('(')) {
        this.expectKw('VALUES');
        s.from = { k: 'values', rows: this.values() };
        this.expectOp(')');
      } else if (this.kw('VALUES')) s.from = { k: 'values', rows: this.values() };
      else s.from = { k: 'table', name: this.name() };
      s.from.alias = this.alias();
    }
    if (this.kw('WHERE')) s.where = this.expr();
    if (this.kw('GROUP') || this.isKw('HAVING') || this.isKw('JOIN') || this.isOp(',')) throw this.unexpected();
    if (this.kw('ORDER', 'BY')) {
      do {
        const e = this.expr();
        const desc = this.kw('DESC');
        if (!desc) this.kw('ASC');
        this.kw('NULLS', 'FIRST') || this.kw('NULLS', 'LAST');
        s.order.push({ e, desc });
      } while (this.op(','));
    }
    if (this.kw('LIMIT')) s.limit = Number(this.next().v);
    return s;
  }
  /** `KEY = value …` options (COPY, PUT, FILE_FORMAT), values: words, strings, numbers, (lists) or (nested options). */
  options(): Record<string, OptVal> {
    const o: Record<string, OptVal> = {};
    while (this.peek().k === 'id') {
      const key = this.next().v.toUpperCase();
      this.expectOp('=');
      o[key] = this.optValue();
    }
    return o;
  }
  optValue(): OptVal {
    const t = this.next();
    if (t.k === 'op' && t.v === '(') {
      if (this.peek().k === 'id' && this.peek(1).v === '=') { const o = this.options(); this.expectOp(')'); return o; }
      const list: OptVal[] = [];
      if (!this.isOp(')')) do { list.push(this.optValue()); } while (this.op(','));
      this.expectOp(')');
      return list;
    }
    if (t.k === 'num') return Number(t.v);
    if (t.k === 'str' || t.k === 'qid') return t.v;
    if (t.k === 'id') { const w = t.v.toUpperCase(); return w === 'TRUE' ? true : w === 'FALSE' ? false : w; }
    this.i--;
    throw this.unexpected();
  }
}

// ---------------------------------------------------------------------------------------------------
// Types and conversions

type Cls = 'number' | 'float' | 'string' | 'boolean' | 'ts_tz' | 'ts_ntz' | 'ts_ltz' | 'date' | 'variant' | 'binary' | 'time';

function typeClass(type: string): Cls {
  const base = type.toUpperCase().replace(/\(.*$/, '').trim();
  if (['NUMBER', 'DECIMAL', 'NUMERIC', 'INT', 'INTEGER', 'BIGINT', 'SMALLINT', 'TINYINT', 'BYTEINT'].includes(base)) return 'number';
  if (['FLOAT', 'FLOAT4', 'FLOAT8', 'DOUBLE', 'DOUBLE PRECISION', 'REAL'].includes(base)) return 'float';
  if (base === 'BOOLEAN') return 'boolean';
  if (base === 'TIMESTAMP_TZ') return 'ts_tz';
  if (base === 'TIMESTAMP_LTZ') return 'ts_ltz';
  if (['TIMESTAMP', 'TIMESTAMP_NTZ', 'DATETIME'].includes(base)) return 'ts_ntz';
  if (base === 'DATE') return 'date';
  if (base === 'TIME') return 'time';
  if (['VARIANT', 'OBJECT', 'ARRAY'].includes(base)) return 'variant';
  if (['BINARY', 'VARBINARY'].includes(base)) return 'binary';
  return 'string';
}
function typeArgs(type: string): number[] {
  const m = /\(([^)]*)\)/.exec(type);
  return m ? m[1]!.split(',').map((s) => Number(s.trim())) : [];
}
/** INFORMATION_SCHEMA.COLUMNS.DATA_TYPE for a declared type. */
function dataType(type: string): string {
  const c = typeClass(type);
  const base = type.toUpperCase().replace(/\(.*$/, '').trim();
  return ({ number: 'NUMBER', float: 'FLOAT', string: 'TEXT', boolean: 'BOOLEAN', ts_tz: 'TIMESTAMP_TZ', ts_ntz: 'TIMESTAMP_NTZ', ts_ltz: 'TIMESTAMP_LTZ', date: 'DATE', time: 'TIME', binary: 'BINARY', variant: base } as Record<Cls, string>)[c];
}

const jsonStr = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));
const show = (v: unknown) => (typeof v === 'string' ? v : v instanceof Date ? v.toISOString() : jsonStr(v));
const notRecognized = (what: string, v: unknown, code: string, state: string) => sfErr(code, state, `${what} '${show(v)}' is not recognized`);

/** Epoch number → ms, with Snowflake's scale guess (seconds, ms, µs or ns by magnitude). */
function epochMs(n: number): number {
  const a = Math.abs(n);
  if (a < 31536000000) return n * 1000;
  if (a < 31536000000000) return n;
  if (a < 31536000000000000) return n / 1000;
  return n / 1e6;
}
function parseTimestamp(v: unknown, cls: Cls): Date {
  if (v instanceof Date) return v;
  if (typeof v === 'bigint') return new Date(epochMs(Number(v)));
  if (typeof v === 'number') return new Date(epochMs(v));
  if (typeof v !== 'string') throw notRecognized('Timestamp', v, '100035', '22007');
  const s = v.trim();
  if (/^-?\d+(\.\d+)?$/.test(s)) return new Date(s.includes('.') ? Number(s) * 1000 : epochMs(Number(s)));
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i.exec(s);
  if (!m) throw notRecognized('Timestamp', v, '100035', '22007');
  const [, y, mo, d, h = '0', mi = '0', se = '0', frac = '', tz] = m;
  let ms = Date.UTC(+y!, +mo! - 1, +d!, +h, +mi, +se, Number((frac + '000').slice(0, 3)));
  const check = new Date(ms);
  if (check.getUTCDate() !== +d! || check.getUTCMonth() !== +mo! - 1 || +h > 23 || +mi > 59 || +se > 59) throw notRecognized('Timestamp', v, '100035', '22007');
  if (tz && tz.toUpperCase() !== 'Z' && cls !== 'ts_ntz') { // NTZ drops an offset, TZ/LTZ apply it
    const sign = tz[0] === '-' ? -1 : 1;
    const digits = tz.slice(1).replace(':', '');
    ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0)) * 60000;
  }
  return new Date(ms);
}
function parseJson(v: unknown, strict: boolean): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string') return v;
  if (v.trim() === '') return null;
  try { return JSON.parse(v); } catch (e) {
    if (!strict) return null;
    throw sfErr('100069', '22P02', `Error parsing JSON: ${(e as Error).message}`);
  }
}

/** Snowflake's implicit cast of a value into a column of `type` (throws a 22xxx error when it cannot). */
function coerce(v: unknown, type: string): unknown {
  if (v === null || v === undefined) return null;
  const c = typeClass(type);
  switch (c) {
    case 'number':
    case 'float': {
      let n: number;
      if (typeof v === 'number') n = v;
      else if (typeof v === 'bigint') n = Number(v);
      else if (typeof v === 'boolean') n = v ? 1 : 0;
      else if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v.trim()))) n = Number(v.trim());
      else if (typeof v === 'string' && c === 'float' && /^(nan|inf|-inf|infinity|-infinity)$/i.test(v.trim())) n = /nan/i.test(v) ? NaN : v.trim().startsWith('-') ? -Infinity : Infinity;
      else throw notRecognized('Numeric value', v, '100038', '22018');
      if (c === 'float') return n;
      const [p = 38, s = 0] = /^(NUMBER|DECIMAL|NUMERIC)/i.test(type) ? typeArgs(type) : [38, 0];
      const f = 10 ** s;
      const r = Math.sign(n) * Math.round(Math.abs(n) * f) / f;
      if (!Number.isFinite(r) || Math.abs(r) >= 10 ** (p - s)) throw sfErr('100039', '22003', `Numeric value '${show(v)}' is out of range`);
      return r;
    }
    case 'boolean': {
      if (typeof v === 'boolean') return v;
      if (typeof v === 'number') return v !== 0;
      const s = String(v).trim().toLowerCase();
      if (['true', 't', 'yes', 'y', 'on', '1'].includes(s)) return true;
      if (['false', 'f', 'no', 'n', 'off', '0'].includes(s)) return false;
      throw notRecognized('Boolean value', v, '100037', '22018');
    }
    case 'ts_tz':
    case 'ts_ltz':
    case 'ts_ntz':
      return parseTimestamp(v, c);
    case 'date': {
      const d = parseTimestamp(v, 'ts_ntz');
      return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
    }
    case 'variant': {
      const base = type.toUpperCase().replace(/\(.*$/, '');
      if (base === 'OBJECT' && (typeof v !== 'object' || Array.isArray(v) || v instanceof Date)) throw sfErr('002023', '22000', `SQL compilation error:\nExpression type does not match column data type, expecting OBJECT but got ${typeof v === 'string' ? 'VARCHAR' : typeof v}`);
      if (base === 'ARRAY' && !Array.isArray(v)) throw sfErr('002023', '22000', `SQL compilation error:\nExpression type does not match column data type, expecting ARRAY but got ${typeof v === 'string' ? 'VARCHAR' : typeof v}`);
      if (typeof v === 'bigint') return Number(v);
      if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
      return v; // a string stays a string inside the VARIANT (PARSE_JSON is what parses)
    }
    case 'binary':
      if (v instanceof Uint8Array) return Buffer.from(v);
      if (typeof v === 'string' && /^([0-9a-f]{2})*$/i.test(v)) return Buffer.from(v, 'hex');
      throw notRecognized('Binary value', v, '100115', '22000');
    case 'time':
      return String(v);
    default: {
      let s: string;
      if (typeof v === 'string') s = v;
      else if (v instanceof Date) s = v.toISOString().replace('T', ' ').replace('Z', '');
      else if (typeof v === 'object') s = jsonStr(v);
      else s = String(v);
      const [len] = typeArgs(type);
      if (len !== undefined && /^(VARCHAR|STRING|TEXT|CHAR|CHARACTER|NVARCHAR|NCHAR)/i.test(type) && s.length > len) {
        throw sfErr('100078', '22001', `String '${s.slice(0, 50)}' is too long and would be truncated`);
      }
      return s;
    }
  }
}

/** Compare with Snowflake-ish implicit casts; null when either side is NULL. */
function compare(a: unknown, b: unknown): number | null {
  if (a === null || a === undefined || b === null || b === undefined) return null;
  if (a instanceof Date || b instanceof Date) {
    const x = parseTimestamp(a, 'ts_tz').getTime();
    const y = parseTimestamp(b, 'ts_tz').getTime();
    return x - y;
  }
  if (typeof a === 'number' || typeof b === 'number' || typeof a === 'bigint' || typeof b === 'bigint') {
    const x = coerce(a, 'FLOAT') as number;
    const y = coerce(b, 'FLOAT') as number;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'boolean' || typeof b === 'boolean') return Number(coerce(a, 'BOOLEAN')) - Number(coerce(b, 'BOOLEAN'));
  const x = typeof a === 'object' ? jsonStr(a) : String(a);
  const y = typeof b === 'object' ? jsonStr(b) : String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------
// Results (JSON result format)

interface RowType { name: string; type: string; scale: number | null; precision: number | null; length: number | null; byteLength: number | null; nullable: boolean; database: string; schema: string; table: string; collation: null }
interface QueryResult { rowtype: RowType[]; rowset: (string | null)[][]; statementTypeId: number }

function rowType(name: string, sqlType: string): RowType {
  const c = typeClass(sqlType);
  const [p, s] = typeArgs(sqlType);
  const wire = ({ number: 'fixed', float: 'real', string: 'text', boolean: 'boolean', ts_tz: 'timestamp_tz', ts_ntz: 'timestamp_ntz', ts_ltz: 'timestamp_ltz', date: 'date', time: 'text', variant: 'variant', binary: 'binary' } as Record<Cls, string>)[c];
  const scale = c === 'number' ? (/^(NUMBER|DECIMAL|NUMERIC)/i.test(sqlType) ? (s ?? 0) : 0) : c.startsWith('ts_') ? 9 : null;
  return {
    name, type: wire, scale, precision: c === 'number' ? (p ?? 38) : null, length: c === 'string' ? 16777216 : null, byteLength: c === 'string' ? 16777216 : null,
    nullable: true, database: '', schema: '', table: '', collation: null,
  };
}
/** One value on the wire, as the SDK's column converters expect it. */
function wireValue(v: unknown, rt: RowType): string | null {
  if (v === null || v === undefined) return null;
  switch (rt.type) {
    case 'fixed': return typeof v === 'number' && (rt.scale ?? 0) > 0 ? v.toFixed(rt.scale!) : String(typeof v === 'number' ? Math.round(v) : v);
    case 'real': return String(v);
    case 'boolean': return v ? '1' : '0';
    case 'timestamp_tz':
    case 'timestamp_ntz':
    case 'timestamp_ltz': {
      const ms = parseTimestamp(v, 'ts_tz').getTime();
      const sec = Math.floor(ms / 1000);
      const frac = String((ms - sec * 1000) * 1e6).padStart(9, '0');
      return `${sec}.${frac}${rt.type === 'timestamp_tz' ? ' 1440' : ''}`;
    }
    case 'date': return String(Math.floor(parseTimestamp(v, 'ts_ntz').getTime() / 86400000));
    case 'variant': return jsonStr(v);
    case 'binary': return Buffer.isBuffer(v) ? v.toString('hex') : String(v);
    default: return typeof v === 'string' ? v : coerce(v, 'VARCHAR') as string;
  }
}
function makeResult(cols: { name: string; type: string }[], rows: unknown[][], statementTypeId = 0x1000): QueryResult {
  const rowtype = cols.map((c) => rowType(c.name, c.type));
  return { rowtype, rowset: rows.map((r) => r.map((v, i) => wireValue(v, rowtype[i]!))), statementTypeId };
}
const statusResult = (msg: string, typeId = 0x6000) => makeResult([{ name: 'status', type: 'VARCHAR' }], [[msg]], typeId);

// ---------------------------------------------------------------------------------------------------
// Engine

interface Table extends FakeTable { loaded: Set<string> }
interface TxCopy { rows: Record<string, unknown>[]; loaded: Set<string> }
interface Session {
  id: number; token: string; masterToken: string; user: string;
  database?: string; schema?: string; warehouse?: string; role?: string;
  tx: Map<Table, TxCopy> | null;
  temps: Map<string, Table>;
  byRequest: Map<string, unknown>;
}
/** A row source while evaluating: one table row, with the alias/table it came from; chained for correlation. */
interface Scope { names: string[]; cols: FakeColumn[]; row: Record<string, unknown>; parent?: Scope }
interface Ctx { s: Session; binds: unknown[] }
type RunResult = { kind: 'rows'; result: QueryResult } | { kind: 'put'; data: Record<string, unknown> };

export async function startFakeSnowflake(opts: FakeSnowflakeOptions = {}): Promise<FakeSnowflake> {
  const store = await startStageStore();
  const tables = new Map<string, Table>();
  const statements: FakeStatement[] = [];
  const logins: FakeSnowflake['logins'] = [];
  const jwtRefusals: string[] = [];
  const withheld = new Set<SfPrivilege>();
  const denied = (what: string) => sfErr('003001', '42501', `SQL access control error:\nInsufficient privileges to operate on ${what}`);
  /** Refuses a write to a permanent table whose privilege is withheld. */
  const mayWrite = (t: Table, priv: 'INSERT' | 'DELETE') => { if (!t.temporary && withheld.has(priv)) throw denied(`table '${t.name.split('.').pop()}'`); };
  const sessions = new Map<string, Session>();
  const results = new Map<string, { body: unknown; status: string; error?: SfError }>();
  const failures: { match: RegExp | string; err: SfError; times: number }[] = [];
  let nextSession = 1;

  // --- stages -------------------------------------------------------------------------------------
  /** A Map that re-reads the stages on every read (the SDK uploads after our PUT answer). */
  class StagedFiles extends Map<string, Buffer> {
    sync(): void {
      super.clear();
      for (const [k, v] of store.view()) super.set(k, v);
    }
    override get(k: string) { this.sync(); return super.get(k); }
    override has(k: string) { this.sync(); return super.has(k); }
    override keys() { this.sync(); return super.keys(); }
    override values() { this.sync(); return super.values(); }
    override entries() { this.sync(); return super.entries(); }
    override forEach(cb: (v: Buffer, k: string, m: Map<string, Buffer>) => void, thisArg?: unknown) { this.sync(); super.forEach(cb, thisArg); }
    override [Symbol.iterator]() { this.sync(); return super.entries(); }
  }
  const mapSize = Object.getOwnPropertyDescriptor(Map.prototype, 'size')!.get!;
  Object.defineProperty(StagedFiles.prototype, 'size', { get(this: StagedFiles) { this.sync(); return mapSize.call(this) as number; } });
  const stagedFiles = new StagedFiles();

  // --- names ------------------------------------------------------------------------------------------
  const qualify = (s: Session, parts: string[], what = 'TABLE'): string => {
    if (parts.length > 3) throw compileErr(`invalid object name '${parts.join('.')}'`);
    const db = parts.length === 3 ? parts[0] : s.database;
    const schema = parts.length >= 2 ? parts[parts.length - 2] : s.schema;
    if (!db) throw sfErr('090105', '22000', `Cannot perform ${what}. This session does not have a current database. Call 'USE DATABASE', or use a qualified name.`);
    if (!schema) throw sfErr('090106', '22000', `Cannot perform ${what}. This session does not have a current schema. Call 'USE SCHEMA', or use a qualified name.`);
    return `${db}.${schema}.${parts[parts.length - 1]}`;
  };
  const findTable = (s: Session, parts: string[]): Table | undefined => {
    const key = qualify(s, parts);
    return s.temps.get(key) ?? tables.get(key);
  };
  const mustTable = (s: Session, parts: string[]): Table => {
    const t = findTable(s, parts);
    if (!t) throw noObject('Object', qualify(s, parts));
    return t;
  };

  // --- transactions -----------------------------------------------------------------------------------
  const rowsOf = (s: Session, t: Table) => s.tx?.get(t)?.rows ?? t.rows;
  const loadedOf = (s: Session, t: Table) => s.tx?.get(t)?.loaded ?? t.loaded;
  /** Replace a table's rows (and load history) in the session's transaction, or directly (autocommit). */
  const writeTable = (s: Session, t: Table, rows: Record<string, unknown>[], loaded?: Set<string>) => {
    if (s.tx) s.tx.set(t, { rows, loaded: loaded ?? loadedOf(s, t) });
    else { t.rows = rows; if (loaded) t.loaded = loaded; }
  };
  const commit = (s: Session) => {
    if (!s.tx) return;
    for (const [t, c] of s.tx) { t.rows = c.rows; t.loaded = c.loaded; }
    s.tx = null;
  };
  const endSession = (s: Session) => {
    s.tx = null; // rolled back
    s.temps.clear();
    sessions.delete(s.token);
  };

  // --- expression evaluation ---------------------------------------------------------------------------
  const lookup = (sc: Scope | undefined, q: string | undefined, name: string): { v: unknown; type: string } => {
    for (let c = sc; c; c = c.parent) {
      if (q && !c.names.includes(q)) continue;
      const col = c.cols.find((x) => x.name === name);
      if (col) return { v: c.row[col.name] ?? null, type: col.type };
      if (q) break;
    }
    throw badIdent(q ? `${q}.${name}` : name);
  };
  const fnType: Record<string, string> = {
    COUNT: 'NUMBER(18,0)', PARSE_JSON: 'VARIANT', TRY_PARSE_JSON: 'VARIANT', TO_VARIANT: 'VARIANT', TO_TIMESTAMP_TZ: 'TIMESTAMP_TZ',
    TO_TIMESTAMP_NTZ: 'TIMESTAMP_NTZ', TO_TIMESTAMP_LTZ: 'TIMESTAMP_LTZ', TO_TIMESTAMP: 'TIMESTAMP_NTZ', TRY_TO_TIMESTAMP_TZ: 'TIMESTAMP_TZ',
    TRY_TO_TIMESTAMP: 'TIMESTAMP_NTZ', TO_DATE: 'DATE', TO_NUMBER: 'NUMBER(38,0)', TO_DECIMAL: 'NUMBER(38,0)', TO_NUMERIC: 'NUMBER(38,0)',
    TO_DOUBLE: 'FLOAT', TO_VARCHAR: 'VARCHAR', TO_CHAR: 'VARCHAR', TO_BOOLEAN: 'BOOLEAN', CURRENT_TIMESTAMP: 'TIMESTAMP_LTZ',
    SYSDATE: 'TIMESTAMP_NTZ', CURRENT_DATE: 'DATE', UPPER: 'VARCHAR', LOWER: 'VARCHAR', AVG: 'FLOAT',
  };
  /** The SQL type of an expression where it is known statically (for the result's rowtype). */
  const typeOf = (e: Expr, sc: Scope | undefined): string | null => {
    switch (e.k) {
      case 'col': try { return lookup(sc, e.q, e.name).type; } catch { return null; }
      case 'cast': return e.type;
      case 'fn': if (fnType[e.name]) return fnType[e.name]!; if (['MIN', 'MAX', 'SUM', 'COALESCE'].includes(e.name) && e.args[0]) return typeOf(e.args[0], sc); return null;
      case 'bin': return ['=', '<>', '<', '<=', '>', '>=', 'AND', 'OR'].includes(e.op) ? 'BOOLEAN' : e.op === '||' ? 'VARCHAR' : null;
      case 'not': case 'isnull': case 'in': case 'between': case 'exists': return 'BOOLEAN';
      default: return null;
    }
  };
  const valueType = (v: unknown): string =>
    typeof v === 'number' ? (Number.isInteger(v) ? 'NUMBER(38,0)' : 'FLOAT') : typeof v === 'boolean' ? 'BOOLEAN' : v instanceof Date ? 'TIMESTAMP_TZ'
      : typeof v === 'object' && v !== null && !Buffer.isBuffer(v) ? 'VARIANT' : 'VARCHAR';

  /** The values of an uncorrelated `IN (SELECT …)`, once per statement (the table as it was before it). */
  const inCache = new WeakMap<Ctx, Map<Select, unknown[]>>();
  const ev = (e: Expr, sc: Scope | undefined, ctx: Ctx): unknown => {
    switch (e.k) {
      case 'lit': return e.v;
      case 'bind': {
        if (e.i >= ctx.binds.length) throw sfErr('002049', '22000', `SQL compilation error: Bind variable ${e.i + 1} not set.`);
        return ctx.binds[e.i];
      }
      case 'col': return lookup(sc, e.q, e.name).v;
      case 'cast': return coerce(ev(e.e, sc, ctx), e.type);
      case 'neg': { const v = ev(e.e, sc, ctx); return v === null ? null : -(coerce(v, 'FLOAT') as number); }
      case 'not': { const v = ev(e.e, sc, ctx); return v === null ? null : !coerce(v, 'BOOLEAN'); }
      case 'isnull': { const v = ev(e.e, sc, ctx); return (v === null || v === undefined) !== e.not; }
      case 'in': {
        const v = ev(e.e, sc, ctx);
        if (v === null) return null;
        if (e.q) {
          // An uncorrelated subquery: its values once per statement.
          const vals = inCache.get(ctx)?.get(e.q) ?? runSelect(e.q, ctx, sc).rows.map((r) => r[0]);
          if (!inCache.has(ctx)) inCache.set(ctx, new Map());
          inCache.get(ctx)!.set(e.q, vals);
          if (vals.some((x) => x !== null && x !== undefined && compare(v, x) === 0)) return !e.not;
          return vals.some((x) => x === null || x === undefined) ? null : e.not;
        }
        const hit = e.list.some((x) => compare(v, ev(x, sc, ctx)) === 0);
        return hit !== e.not;
      }
      case 'between': {
        const v = ev(e.e, sc, ctx);
        const a = compare(v, ev(e.lo, sc, ctx));
        const b = compare(v, ev(e.hi, sc, ctx));
        if (a === null || b === null) return null;
        return (a >= 0 && b <= 0) !== e.not;
      }
      case 'exists': {
        const fast = existsByIndex(e.q, sc, ctx);
        return (fast ?? runSelect(e.q, ctx, sc).rows.length > 0) !== e.not;
      }
      case 'subq': { const r = runSelect(e.q, ctx, sc).rows; return r[0]?.[0] ?? null; }
      case 'bin': {
        if (e.op === 'AND' || e.op === 'OR') {
          const l = ev(e.l, sc, ctx);
          const lb = l === null ? null : coerce(l, 'BOOLEAN');
          if (e.op === 'AND' && lb === false) return false;
          if (e.op === 'OR' && lb === true) return true;
          const r = ev(e.r, sc, ctx);
          const rb = r === null ? null : coerce(r, 'BOOLEAN');
          if (e.op === 'AND') return rb === false ? false : lb === null || rb === null ? null : true;
          return rb === true ? true : lb === null || rb === null ? null : false;
        }
        const l = ev(e.l, sc, ctx);
        const r = ev(e.r, sc, ctx);
        if (e.op === '||') return l === null || r === null ? null : `${coerce(l, 'VARCHAR')}${coerce(r, 'VARCHAR')}`;
        if (['+', '-', '*', '/'].includes(e.op)) {
          if (l === null || r === null) return null;
          const x = coerce(l, 'FLOAT') as number;
          const y = coerce(r, 'FLOAT') as number;
          if (e.op === '/' && y === 0) throw sfErr('100051', '22012', 'Division by zero');
          return e.op === '+' ? x + y : e.op === '-' ? x - y : e.op === '*' ? x * y : x / y;
        }
        const c = compare(l, r);
        if (c === null) return null;
        return { '=': c === 0, '<>': c !== 0, '<': c < 0, '<=': c <= 0, '>': c > 0, '>=': c >= 0 }[e.op];
      }
      case 'fn': {
        if (AGGS.has(e.name)) throw compileErr(`aggregate function ${e.name} is only supported in a SELECT list without GROUP BY`);
        const a = e.args.map((x) => ev(x, sc, ctx));
        const s = ctx.s;
        switch (e.name) {
          case 'PARSE_JSON': return parseJson(a[0], true);
          case 'TRY_PARSE_JSON': return parseJson(a[0], false);
          case 'TO_VARIANT': return a[0] ?? null;
          case 'COALESCE': return a.find((x) => x !== null && x !== undefined) ?? null;
          case 'UPPER': return a[0] === null ? null : String(a[0]).toUpperCase();
          case 'LOWER': return a[0] === null ? null : String(a[0]).toLowerCase();
          case 'CURRENT_VERSION': return '9.0.0';
          case 'CURRENT_DATABASE': return s.database ?? null;
          case 'CURRENT_SCHEMA': return s.schema ?? null;
          case 'CURRENT_WAREHOUSE': return s.warehouse ?? null;
          case 'CURRENT_ROLE': return s.role ?? 'PUBLIC';
          case 'CURRENT_USER': return s.user.toUpperCase();
          case 'CURRENT_ACCOUNT': return (opts.account ?? 'fakeaccount').toUpperCase();
          case 'CURRENT_SESSION': return String(s.id);
          case 'CURRENT_TIMESTAMP': case 'SYSDATE': case 'GETDATE': return new Date();
          case 'CURRENT_DATE': return coerce(new Date(), 'DATE');
          default: {
            const t = fnType[e.name];
            if (t && e.name.startsWith('TRY_')) { try { return coerce(a[0], t); } catch { return null; } }
            if (t && e.name.startsWith('TO_')) return coerce(a[0], t);
            throw sfErr('002140', '42601', `SQL compilation error:\nUnknown function ${e.name}`);
          }
        }
      }
    }
  };
  /**
   * [NOT] EXISTS (SELECT … FROM t x WHERE x.c = outer.c [AND …]) through a hash index on t.c (built once per
   * table version), instead of scanning t for every outer row; undefined when the subquery has another shape.
   */
  const existsIndex = new WeakMap<Select, { rows: unknown[]; col: string; byKey: Map<string, Record<string, unknown>[]> }>();
  const keyOf = (v: unknown) => (v instanceof Date ? `d${v.getTime()}` : `${typeof v}:${jsonStr(v)}`);
  const existsByIndex = (q: Select, outer: Scope | undefined, ctx: Ctx): boolean | undefined => {
    if (!q.from || q.from.k !== 'table' || !q.where || q.from.name.includes('INFORMATION_SCHEMA')) return undefined;
    const t = findTable(ctx.s, q.from.name);
    if (!t) return undefined;
    const names = [q.from.alias ?? q.from.name[q.from.name.length - 1]!];
    const conj: Expr[] = [];
    const flat = (e: Expr): void => { if (e.k === 'bin' && e.op === 'AND') { flat(e.l); flat(e.r); } else conj.push(e); };
    flat(q.where);
    const inner = (e: Expr) => e.k === 'col' && !!e.q && names.includes(e.q) && t.columns.some((c) => c.name === e.name);
    const outerCol = (e: Expr) => e.k === 'col' && !!e.q && !names.includes(e.q);
    const eq = conj.find((e) => e.k === 'bin' && e.op === '=' && ((inner(e.l) && outerCol(e.r)) || (inner(e.r) && outerCol(e.l)))) as (Expr & { k: 'bin' }) | undefined;
    if (!eq) return undefined;
    const [ic, oc] = (inner(eq.l) ? [eq.l, eq.r] : [eq.r, eq.l]) as [Expr & { k: 'col' }, Expr];
    const col = t.columns.find((c) => c.name === ic.name)!;
    const rows = rowsOf(ctx.s, t);
    let idx = existsIndex.get(q);
    if (!idx || idx.rows !== rows || idx.col !== col.name) {
      idx = { rows, col: col.name, byKey: new Map() };
      for (const r of rows) {
        const v = r[col.name];
        if (v === null || v === undefined) continue;
        const k = keyOf(v);
        const list = idx.byKey.get(k);
        if (list) list.push(r); else idx.byKey.set(k, [r]);
      }
      existsIndex.set(q, idx);
    }
    let v = ev(oc, outer, ctx);
    if (v === null || v === undefined) return false;
    try { v = coerce(v, col.type); } catch { return undefined; }
    return (idx.byKey.get(keyOf(v)) ?? []).some((row) => truthy(ev(q.where!, { names, cols: t.columns, row, parent: outer }, ctx)));
  };
  const truthy = (v: unknown) => v !== null && v !== undefined && coerce(v, 'BOOLEAN') === true;
  const children = (e: Expr): Expr[] => {
    switch (e.k) {
      case 'fn': return e.args;
      case 'cast': case 'not': case 'neg': case 'isnull': return [e.e];
      case 'bin': return [e.l, e.r];
      case 'in': return [e.e, ...e.list];
      case 'between': return [e.e, e.lo, e.hi];
      default: return []; // an EXISTS/subquery's aggregates are its own
    }
  };
  const hasAgg = (e: Expr): boolean => (e.k === 'fn' && AGGS.has(e.name)) || children(e).some(hasAgg);
  /** Evaluate an expression that may hold aggregates over a group of scopes. */
  const evAgg = (e: Expr, group: Scope[], outer: Scope | undefined, ctx: Ctx): unknown => {
    if (e.k === 'fn' && AGGS.has(e.name)) {
      if (e.name === 'COUNT' && e.star) return group.length;
      let vals = group.map((sc) => ev(e.args[0]!, sc, ctx)).filter((v) => v !== null && v !== undefined);
      if (e.distinct) vals = [...new Map(vals.map((v) => [jsonStr(v), v])).values()];
      if (e.name === 'COUNT') return vals.length;
      if (!vals.length) return null;
      if (e.name === 'MIN') return vals.reduce((m, v) => (compare(v, m)! < 0 ? v : m));
      if (e.name === 'MAX') return vals.reduce((m, v) => (compare(v, m)! > 0 ? v : m));
      const nums = vals.map((v) => coerce(v, 'FLOAT') as number);
      const sum = nums.reduce((x, y) => x + y, 0);
      return e.name === 'SUM' ? sum : sum / nums.length;
    }
    if (!hasAgg(e)) return ev(e, group[0] ?? outer, ctx);
    if (e.k === 'bin') return ev({ k: 'bin', op: e.op, l: { k: 'lit', v: evAgg(e.l, group, outer, ctx) }, r: { k: 'lit', v: evAgg(e.r, group, outer, ctx) } }, outer, ctx);
    if (e.k === 'fn') return ev({ ...e, args: e.args.map((x) => ({ k: 'lit', v: evAgg(x, group, outer, ctx) }) as Expr) }, outer, ctx);
    if (e.k === 'cast') return coerce(evAgg(e.e, group, outer, ctx), e.type);
    throw compileErr('unsupported use of an aggregate');
  };

  // --- SELECT --------------------------------------------------------------------------------------------
  /** The rows (as scopes) a FROM clause yields. */
  const sourceRows = (src: Source, ctx: Ctx, outer: Scope | undefined): { cols: FakeColumn[]; scopes: Scope[] } => {
    if (src.k === 'values') {
      const rows = src.rows.map((r) => r.map((x) => ev(x, outer, ctx)));
      const cols = (rows[0] ?? []).map((_, i) => ({ name: `COLUMN${i + 1}`, type: valueType(rows.find((r) => r[i] !== null)?.[i] ?? '') }));
      const names = src.alias ? [src.alias] : [];
      return { cols, scopes: rows.map((r) => ({ names, cols, row: Object.fromEntries(cols.map((c, i) => [c.name, r[i]])), parent: outer })) };
    }
    const parts = src.name;
    const names = [src.alias ?? parts[parts.length - 1]!, ...(src.alias ? [] : [parts.join('.')])];
    if (parts.length >= 2 && parts[parts.length - 2] === 'INFORMATION_SCHEMA') {
      const db = parts.length === 3 ? parts[0] : ctx.s.database;
      const all = [...tables.values(), ...ctx.s.temps.values()].filter((t) => t.name.split('.')[0] === db);
      const v = (n: string) => ({ name: n, type: 'VARCHAR' });
      const num = (n: string) => ({ name: n, type: 'NUMBER(38,0)' });
      let cols: FakeColumn[];
      let rows: Record<string, unknown>[];
      if (parts[parts.length - 1] === 'COLUMNS') {
        cols = [v('TABLE_CATALOG'), v('TABLE_SCHEMA'), v('TABLE_NAME'), v('COLUMN_NAME'), num('ORDINAL_POSITION'), v('IS_NULLABLE'), v('DATA_TYPE'), num('CHARACTER_MAXIMUM_LENGTH'), num('NUMERIC_PRECISION'), num('NUMERIC_SCALE')];
        rows = all.flatMap((t) => {
          const [c, s, n] = t.name.split('.');
          return t.columns.map((col, i) => {
            const cls = typeClass(col.type);
            const [p, sc] = typeArgs(col.type);
            return {
              TABLE_CATALOG: c, TABLE_SCHEMA: s, TABLE_NAME: n, COLUMN_NAME: col.name, ORDINAL_POSITION: i + 1, IS_NULLABLE: 'YES', DATA_TYPE: dataType(col.type),
              CHARACTER_MAXIMUM_LENGTH: cls === 'string' ? (p ?? 16777216) : null, NUMERIC_PRECISION: cls === 'number' ? (/^(NUMBER|DECIMAL|NUMERIC)/i.test(col.type) ? (p ?? 38) : 38) : null,
              NUMERIC_SCALE: cls === 'number' ? (/^(NUMBER|DECIMAL|NUMERIC)/i.test(col.type) ? (sc ?? 0) : 0) : null,
            };
          });
        });
      } else if (parts[parts.length - 1] === 'TABLES') {
        cols = [v('TABLE_CATALOG'), v('TABLE_SCHEMA'), v('TABLE_NAME'), v('TABLE_TYPE'), v('IS_TEMPORARY'), num('ROW_COUNT')];
        rows = all.map((t) => { const [c, s, n] = t.name.split('.'); return { TABLE_CATALOG: c, TABLE_SCHEMA: s, TABLE_NAME: n, TABLE_TYPE: t.temporary ? 'TEMPORARY TABLE' : 'BASE TABLE', IS_TEMPORARY: t.temporary ? 'YES' : 'NO', ROW_COUNT: rowsOf(ctx.s, t).length }; });
      } else throw noObject('Object', parts.join('.'));
      return { cols, scopes: rows.map((row) => ({ names, cols, row, parent: outer })) };
    }
    const t = mustTable(ctx.s, parts);
    return { cols: t.columns, scopes: rowsOf(ctx.s, t).map((row) => ({ names, cols: t.columns, row, parent: outer })) };
  };
  const runSelect = (q: Select, ctx: Ctx, outer?: Scope): { cols: FakeColumn[]; rows: unknown[][] } => {
    const src = q.from ? sourceRows(q.from, ctx, outer) : { cols: [] as FakeColumn[], scopes: [{ names: [], cols: [], row: {}, parent: outer }] };
    let scopes = q.where ? src.scopes.filter((sc) => truthy(ev(q.where!, sc, ctx))) : src.scopes;
    const probe = scopes[0] ?? { names: [], cols: src.cols, row: {}, parent: outer };
    // expand the select list
    const items: { e: Expr; name: string }[] = [];
    for (const it of q.items) {
      if (it.star) {
        if (!q.from) throw compileErr('SELECT * with no tables specified is not valid.');
        for (const c of src.cols) items.push({ e: { k: 'col', name: c.name }, name: c.name });
      } else items.push({ e: it.e!, name: it.alias ?? (it.e!.k === 'col' ? it.e!.name : it.text.toUpperCase()) });
    }
    const agg = items.some((it) => hasAgg(it.e));
    let rows: unknown[][];
    if (agg) {
      rows = [items.map((it) => evAgg(it.e, scopes, outer, ctx))];
    } else {
      if (q.order.length) {
        const keyed = scopes.map((sc) => ({ sc, keys: q.order.map((o) => ev(o.e, sc, ctx)) }));
        keyed.sort((a, b) => {
          for (let i = 0; i < q.order.length; i++) {
            const x = a.keys[i];
            const y = b.keys[i];
            const c = x === null ? (y === null ? 0 : 1) : y === null ? -1 : compare(x, y)!; // NULLS LAST asc
            if (c) return q.order[i]!.desc ? -c : c;
          }
          return 0;
        });
        scopes = keyed.map((k) => k.sc);
      }
      rows = scopes.map((sc) => items.map((it) => ev(it.e, sc, ctx)));
      if (q.distinct) rows = [...new Map(rows.map((r) => [jsonStr(r), r])).values()];
    }
    if (q.limit !== undefined) rows = rows.slice(0, q.limit);
    const cols = items.map((it, i) => ({ name: it.name, type: typeOf(it.e, probe) ?? valueType(rows.find((r) => r[i] !== null && r[i] !== undefined)?.[i] ?? '') }));
    return { cols, rows };
  };

  // --- DML helpers ------------------------------------------------------------------------------------------
  /** Values for the insert columns → a full row of the table, converted to the column types. */
  const makeRow = (t: Table, cols: string[], vals: unknown[]): Record<string, unknown> => {
    if (vals.length !== cols.length) throw sfErr('002020', '21S01', `SQL compilation error:\nInsert value list does not match column list expecting ${cols.length} but got ${vals.length}`);
    const row: Record<string, unknown> = Object.fromEntries(t.columns.map((c) => [c.name, null]));
    cols.forEach((name, i) => {
      const col = t.columns.find((c) => c.name === name);
      if (!col) throw badIdent(name);
      row[name] = coerce(vals[i], col.type);
    });
    return row;
  };
  const parseColumnList = (p: Parser): string[] | undefined => {
    if (!p.isOp('(')) return undefined;
    if (p.peek(1).k === 'id' && p.peek(1).v.toUpperCase() === 'SELECT') return undefined; // INSERT INTO t (SELECT …)
    p.expectOp('(');
    const cols: string[] = [];
    do { cols.push(p.ident()); } while (p.op(','));
    p.expectOp(')');
    return cols;
  };
  const colDefs = (p: Parser): FakeColumn[] => {
    const cols: FakeColumn[] = [];
    p.expectOp('(');
    do {
      if (p.isKw('PRIMARY') || p.isKw('CONSTRAINT') || p.isKw('UNIQUE') || p.isKw('FOREIGN')) { skipToComma(p); continue; }
      const name = p.ident();
      const type = p.type();
      skipToComma(p); // NOT NULL, DEFAULT …, COMMENT '…', COLLATE …
      if (cols.some((c) => c.name === name)) throw sfErr('002025', '42S21', `SQL compilation error:\nduplicate column name '${name}'`);
      cols.push({ name, type });
    } while (p.op(','));
    p.expectOp(')');
    return cols;
  };
  const skipToComma = (p: Parser) => {
    let depth = 0;
    for (;;) {
      const t = p.peek();
      if (t.k === 'eof') return;
      if (t.k === 'op' && depth === 0 && (t.v === ',' || t.v === ')')) return;
      if (t.k === 'op' && t.v === '(') depth++;
      if (t.k === 'op' && t.v === ')') depth--;
      p.next();
    }
  };
  const dml = (label: string, n: number, typeId: number) => makeResult([{ name: label, type: 'NUMBER(38,0)' }], [[n]], typeId);

  // --- stages: PUT / REMOVE / LIST / COPY ---------------------------------------------------------------------
  /** '@DB.S.%T/path/' → stage key, its directory and the path prefix inside it. */
  const resolveStage = (s: Session, ref: string): { key: string; prefix: string } => {
    let body = ref.replace(/^@/, '');
    let inQ = false;
    let cut = body.length;
    for (let i = 0; i < body.length; i++) {
      if (body[i] === '"') inQ = !inQ;
      else if (!inQ && body[i] === '/') { cut = i; break; }
    }
    const prefix = body.slice(cut + 1).replace(/^\/+/, '');
    body = body.slice(0, cut);
    if (body === '~') return { key: '@~', prefix };
    const p = new Parser(tokenize(body), body);
    const parts: string[] = [];
    let isTable = false;
    for (;;) {
      if (p.op('%')) isTable = true;
      parts.push(p.ident());
      if (!p.op('.')) break;
    }
    if (p.peek().k !== 'eof') throw p.unexpected();
    if (!isTable) throw sfErr('002003', '02000', `SQL compilation error:\nStage '${qualify(s, parts, 'STAGE')}' does not exist or not authorized.`);
    const t = findTable(s, parts);
    if (!t) throw sfErr('002003', '02000', `SQL compilation error:\nStage '${qualify(s, parts.slice(0, -1).concat('%' + parts[parts.length - 1]))}' does not exist or not authorized.`);
    return { key: `@%${t.name}`, prefix };
  };
  const underPrefix = (f: string, prefix: string) => !prefix || f === prefix.replace(/\/$/, '') || f.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`) || (!prefix.endsWith('/') && f.startsWith(prefix));
  const optStr = (v: OptVal | undefined) => (v === undefined ? undefined : String(v).toUpperCase());
  const optBool = (v: OptVal | undefined, dflt: boolean) => (v === undefined ? dflt : v === true || String(v).toUpperCase() === 'TRUE');

  const put = (s: Session, sql: string, queryId: string): RunResult => {
    let rest = sql.trim().replace(/^PUT\s+/i, '');
    let url: string;
    if (rest.startsWith("'")) {
      let i = 1;
      url = '';
      while (i < rest.length && rest[i] !== "'") { if (rest[i] === '\\') i++; url += rest[i++]; }
      rest = rest.slice(i + 1);
    } else {
      const m = /^\S+/.exec(rest)!;
      url = m[0];
      rest = rest.slice(url.length);
    }
    if (!/^file:\/\//i.test(url)) throw compileErr(`syntax error: PUT needs a file:// URL, got '${url}'`);
    const p = new Parser(tokenize(rest), rest);
    const st = p.next();
    if (st.k !== 'stage') throw p.unexpected();
    const stage = resolveStage(s, st.v);
    const o = p.options();
    p.end();
    return {
      kind: 'put',
      data: {
        command: 'UPLOAD', kind: null, operation: 'Node',
        src_locations: [url.replace(/^file:\/\//i, '')],
        autoCompress: optBool(o.AUTO_COMPRESS, true),
        overwrite: optBool(o.OVERWRITE, false),
        sourceCompression: (optStr(o.SOURCE_COMPRESSION) ?? 'AUTO_DETECT').toLowerCase(),
        parallel: typeof o.PARALLEL === 'number' ? o.PARALLEL : 4,
        threshold: 209715200,
        clientShowEncryptionParameter: false,
        ...store.putAnswer(stage.key, stage.prefix, queryId),
      },
    };
  };
  const remove = async (s: Session, p: Parser): Promise<QueryResult> => {
    const st = p.next();
    if (st.k !== 'stage') throw p.unexpected();
    const stage = resolveStage(s, st.v);
    const o = p.options();
    p.end();
    const re = o.PATTERN !== undefined ? new RegExp(`^(?:${String(o.PATTERN)})$`) : null;
    const gone = (await store.list(stage.key)).map((o) => o.name).filter((f) => underPrefix(f, stage.prefix) && (!re || re.test(f)));
    await store.remove(stage.key, gone);
    return makeResult([{ name: 'name', type: 'VARCHAR' }, { name: 'result', type: 'VARCHAR' }], gone.map((f) => [f, 'removed']));
  };
  const list = async (s: Session, p: Parser): Promise<QueryResult> => {
    const st = p.next();
    if (st.k !== 'stage') throw p.unexpected();
    const stage = resolveStage(s, st.v);
    p.options();
    p.end();
    const files = (await store.list(stage.key)).filter((o) => underPrefix(o.name, stage.prefix));
    return makeResult(
      [{ name: 'name', type: 'VARCHAR' }, { name: 'size', type: 'NUMBER(38,0)' }, { name: 'md5', type: 'VARCHAR' }, { name: 'last_modified', type: 'VARCHAR' }],
      files.map((o) => [o.name, o.size, o.md5, o.lastModified.toUTCString()]),
    );
  };
  const decodeFile = async (buf: Buffer, type: string, fmt: Record<string, OptVal>): Promise<Record<string, unknown>[]> => {
    if (type === 'PARQUET') {
      const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
      return (await parquetReadObjects({
        file: ab,
        compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gunzipSync(input)), BROTLI: (input: Uint8Array) => new Uint8Array(brotliDecompressSync(input)) },
      })) as Record<string, unknown>[];
    }
    if (type === 'JSON') {
      const text = (buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf) : buf).toString('utf8');
      if (optBool(fmt.STRIP_OUTER_ARRAY, false) && text.trim().startsWith('[')) return JSON.parse(text) as Record<string, unknown>[];
      return text.split('\n').filter((l) => l.trim()).map((l, i) => {
        try { return JSON.parse(l) as Record<string, unknown>; } catch (e) { throw sfErr('100069', '22P02', `Error parsing JSON: ${(e as Error).message}\n  File line ${i + 1}`); }
      });
    }
    throw compileErr(`the fake Snowflake loads only TYPE = PARQUET or JSON, not ${type}`);
  };
  const copyInto = async (s: Session, p: Parser): Promise<QueryResult> => {
    p.expectKw('COPY', 'INTO');
    const t = mustTable(s, p.name());
    mayWrite(t, 'INSERT');
    const targetCols = parseColumnList(p);
    p.expectKw('FROM');
    const st = p.next();
    if (st.k !== 'stage') throw compileErr('the fake Snowflake copies only FROM @stage (no transformations)');
    const stage = resolveStage(s, st.v);
    const o = p.options();
    p.end();
    const fmt = (typeof o.FILE_FORMAT === 'object' && !Array.isArray(o.FILE_FORMAT) ? o.FILE_FORMAT : {}) as Record<string, OptVal>;
    const type = optStr(fmt.TYPE) ?? 'CSV';
    const match = optStr(o.MATCH_BY_COLUMN_NAME) ?? 'NONE';
    const onError = optStr(o.ON_ERROR) ?? 'ABORT_STATEMENT';
    const force = optBool(o.FORCE, false);
    const cols = (targetCols ?? t.columns.map((c) => c.name)).map((n) => { const c = t.columns.find((x) => x.name === n); if (!c) throw badIdent(n); return c; });
    const all = (await store.list(stage.key)).map((o) => o.name);
    let files: string[];
    if (o.FILES !== undefined) {
      const base = stage.prefix && !stage.prefix.endsWith('/') ? `${stage.prefix}/` : stage.prefix;
      files = (Array.isArray(o.FILES) ? o.FILES : [o.FILES]).map((f) => `${base}${String(f)}`);
      for (const f of files) if (!all.includes(f)) throw sfErr('091016', '58030', `Remote file '${stage.key}/${f}' was not found. There are several potential causes. The file might not exist.`);
    } else {
      const re = o.PATTERN !== undefined ? new RegExp(`^(?:${String(o.PATTERN)})$`) : null;
      files = all.filter((f) => underPrefix(f, stage.prefix) && (!re || re.test(f)));
    }
    const loaded = new Set(loadedOf(s, t));
    const newRows: Record<string, unknown>[] = [];
    const report: unknown[][] = [];
    const done: string[] = [];
    for (const f of files) {
      let buf: Buffer;
      try { buf = await store.read(stage.key, f); } catch (e) {
        throw sfErr('091001', '58030', `Failed to decrypt file '${stage.key}/${f}' (the fake Snowflake checks every staged file): ${(e as Error).message}`);
      }
      const mark = `${stage.key}/${f}:${createHash('md5').update(buf).digest('hex')}`;
      if (loaded.has(mark) && !force) continue; // already loaded: skipped silently, as Snowflake's load metadata does
      const recs = await decodeFile(buf, type, fmt);
      const fileRows: Record<string, unknown>[] = [];
      let errors = 0;
      let firstErr: string | null = null;
      let firstLine: number | null = null;
      recs.forEach((rec, i) => {
        try {
          let vals: unknown[];
          if (match === 'CASE_INSENSITIVE' || match === 'CASE_SENSITIVE') {
            const keys = Object.keys(rec);
            vals = cols.map((c) => {
              const k = keys.find((x) => (match === 'CASE_SENSITIVE' ? x === c.name : x.toUpperCase() === c.name.toUpperCase()));
              return k === undefined ? null : rec[k];
            });
          } else if (cols.length === 1 && typeClass(cols[0]!.type) === 'variant') vals = [rec];
          else throw sfErr('002019', '0A000', `SQL compilation error:\n${type} file format can produce one and only one column of type variant, object, or array. Use CSV file format if you want to load more than one column.`);
          fileRows.push(makeRow(t, cols.map((c) => c.name), vals));
        } catch (e) {
          if (!(e instanceof SfError) || e.code === '002019' || onError.startsWith('ABORT')) {
            if (e instanceof SfError && e.code !== '002019') throw sfErr(e.code, e.sqlState, `${e.message}\n  File '${f}', line ${i + 1}, row ${i + 1}`);
            throw e;
          }
          errors++;
          firstErr ??= e.message;
          firstLine ??= i + 1;
        }
      });
      const skipFile = errors > 0 && onError.startsWith('SKIP_FILE');
      if (!skipFile) { newRows.push(...fileRows); loaded.add(mark); done.push(f); }
      report.push([`${stage.key.slice(1)}/${f}`, skipFile ? 'LOAD_FAILED' : errors ? 'PARTIALLY_LOADED' : 'LOADED', recs.length, skipFile ? 0 : fileRows.length, recs.length, errors, firstErr, firstLine, null, null]);
    }
    if (newRows.length || report.length) writeTable(s, t, [...rowsOf(s, t), ...newRows], loaded);
    if (optBool(o.PURGE, false)) await store.remove(stage.key, done);
    if (!report.length) return statusResult('Copy executed with 0 files processed.', 0x3000);
    const v = (n: string) => ({ name: n, type: 'VARCHAR' });
    const n = (x: string) => ({ name: x, type: 'NUMBER(38,0)' });
    return makeResult([v('file'), v('status'), n('rows_parsed'), n('rows_loaded'), n('error_limit'), n('errors_seen'), v('first_error'), n('first_error_line'), n('first_error_character'), v('first_error_column_name')], report, 0x3000);
  };

  // --- statements ------------------------------------------------------------------------------------------
  const run = async (s: Session, sql: string, bindRows: unknown[][], queryId: string): Promise<RunResult> => {
    for (const f of failures) {
      if (f.times > 0 && (typeof f.match === 'string' ? sql.toUpperCase().includes(f.match.toUpperCase()) : f.match.test(sql))) { f.times--; throw f.err; }
    }
    if (withheld.has('stage write') && /^\s*(PUT|REMOVE|RM)\s/i.test(sql)) throw denied(`stage '${/@\S*/.exec(sql)?.[0] ?? ''}'`);
    if (/^\s*PUT\s/i.test(sql)) return put(s, sql, queryId);
    if (/^\s*GET\s/i.test(sql)) throw unsupported(sql);
    const p = new Parser(tokenize(sql), sql);
    const ctx: Ctx = { s, binds: bindRows[0] ?? [] };
    const rows = (r: QueryResult): RunResult => ({ kind: 'rows', result: r });
    const w = p.peek().v.toUpperCase();
    const ddl = () => commit(s); // DDL commits an open transaction first
    switch (w) {
      case 'SELECT': {
        const q = p.select();
        p.end();
        const r = runSelect(q, ctx);
        return rows(makeResult(r.cols, r.rows));
      }
      case 'BEGIN': case 'START': {
        if (!p.kw('BEGIN')) p.expectKw('START', 'TRANSACTION');
        p.kw('TRANSACTION') || p.kw('WORK');
        if (p.kw('NAME')) p.ident();
        p.end();
        s.tx ??= new Map();
        return rows(statusResult('Statement executed successfully.', 0x5000));
      }
      case 'COMMIT': {
        p.next(); p.kw('WORK'); p.end();
        commit(s);
        return rows(statusResult('Statement executed successfully.', 0x5000));
      }
      case 'ROLLBACK': {
        p.next(); p.kw('WORK'); p.end();
        s.tx = null;
        return rows(statusResult('Statement executed successfully.', 0x5000));
      }
      case 'USE': {
        p.next();
        const kind = p.kw('ROLE') ? 'ROLE' : p.kw('WAREHOUSE') ? 'WAREHOUSE' : p.kw('DATABASE') ? 'DATABASE' : p.kw('SCHEMA') ? 'SCHEMA' : 'DATABASE';
        const n = p.name();
        p.end();
        if (kind === 'ROLE') s.role = n[0];
        else if (kind === 'WAREHOUSE') s.warehouse = n[0];
        else if (kind === 'DATABASE') s.database = n[0];
        else { if (n.length === 2) s.database = n[0]; s.schema = n[n.length - 1]; }
        return rows(statusResult('Statement executed successfully.', 0x5000));
      }
      case 'ALTER': {
        p.next();
        if (p.kw('SESSION')) return rows(statusResult('Statement executed successfully.', 0x5000));
        p.expectKw('TABLE');
        const ifExists = p.kw('IF', 'EXISTS');
        const parts = p.name();
        p.expectKw('ADD');
        p.kw('COLUMN');
        const ifNot = p.kw('IF', 'NOT', 'EXISTS');
        const added: FakeColumn[] = [];
        do {
          p.kw('COLUMN');
          const name = p.ident();
          const type = p.type();
          skipToComma(p);
          added.push({ name, type });
        } while (p.op(','));
        p.end();
        ddl();
        const t = findTable(s, parts);
        if (!t) { if (ifExists) return rows(statusResult('Statement executed successfully.')); throw noObject('Table', qualify(s, parts)); }
        for (const c of added) {
          if (t.columns.some((x) => x.name === c.name)) { if (ifNot) continue; throw sfErr('002025', '42S21', `SQL compilation error:\ncolumn '${c.name}' already exists`); }
          t.columns.push(c);
          for (const r of t.rows) r[c.name] = null;
        }
        return rows(statusResult('Statement executed successfully.'));
      }
      case 'CREATE': {
        p.next();
        const replace = p.kw('OR', 'REPLACE');
        p.kw('LOCAL') || p.kw('GLOBAL');
        const temporary = p.kw('TEMPORARY') || p.kw('TEMP') || p.kw('VOLATILE');
        p.kw('TRANSIENT');
        if (p.kw('DATABASE') || p.kw('SCHEMA') || p.kw('WAREHOUSE')) { ddl(); return rows(statusResult('Statement executed successfully.')); }
        if (!p.kw('TABLE')) throw unsupported(sql); // includes CREATE STAGE (so the SDK sends array binds inline)
        const ifNot = p.kw('IF', 'NOT', 'EXISTS');
        const key = qualify(s, p.name(), 'CREATE TABLE');
        if (withheld.has('CREATE TABLE')) throw denied(`schema '${key.split('.')[1]}'`);
        const columns = colDefs(p);
        p.options(); // COMMENT = '…', DATA_RETENTION_TIME_IN_DAYS = …
        p.end();
        ddl();
        const home = temporary ? s.temps : tables;
        const exists = home.get(key);
        const short = key.split('.').pop();
        if (exists && !replace) {
          if (ifNot) return rows(statusResult(`${short} already exists, statement succeeded.`));
          throw sfErr('002002', '42710', `SQL compilation error:\nObject '${key}' already exists.`);
        }
        const t: Table = { name: key, columns, rows: [], loaded: new Set(), ...(temporary ? { temporary: true } : {}) };
        home.set(key, t);
        return rows(statusResult(`Table ${short} successfully created.`));
      }
      case 'DROP': {
        p.next();
        if (!p.kw('TABLE')) throw unsupported(sql);
        const ifExists = p.kw('IF', 'EXISTS');
        const parts = p.name();
        p.end();
        ddl();
        const key = qualify(s, parts);
        if (s.temps.delete(key) || tables.delete(key)) return rows(statusResult(`${key.split('.').pop()} successfully dropped.`));
        if (ifExists) return rows(statusResult('Drop statement executed successfully (' + key.split('.').pop() + ' already dropped).'));
        throw noObject('Table', key);
      }
      case 'TRUNCATE': {
        p.next();
        p.kw('TABLE');
        const ifExists = p.kw('IF', 'EXISTS');
        const parts = p.name();
        p.end();
        const t = findTable(s, parts);
        if (!t) { if (ifExists) return rows(statusResult('Statement executed successfully.')); throw noObject('Table', qualify(s, parts)); }
        writeTable(s, t, [], new Set());
        return rows(statusResult('Statement executed successfully.', 0x3000));
      }
      case 'DELETE': {
        p.next();
        p.expectKw('FROM');
        const parts = p.name();
        const t = mustTable(s, parts);
        mayWrite(t, 'DELETE');
        const alias = p.alias();
        const where = p.kw('WHERE') ? p.expr() : undefined;
        p.end();
        const names = [alias ?? parts[parts.length - 1]!];
        const cur = rowsOf(s, t);
        const doomed = new Set<Record<string, unknown>>();
        for (const br of bindRows.length ? bindRows : [[]]) {
          const c: Ctx = { s, binds: br };
          for (const row of cur) if (!where || truthy(ev(where, { names, cols: t.columns, row }, c))) doomed.add(row);
        }
        if (doomed.size) writeTable(s, t, cur.filter((r) => !doomed.has(r)));
        return rows(dml('number of rows deleted', doomed.size, 0x3300));
      }
      case 'INSERT': {
        p.next();
        const overwrite = p.kw('OVERWRITE');
        p.expectKw('INTO');
        const t = mustTable(s, p.name());
        mayWrite(t, 'INSERT');
        const cols = parseColumnList(p) ?? t.columns.map((c) => c.name);
        const out: Record<string, unknown>[] = [];
        if (p.kw('VALUES')) {
          const vrows = p.values();
          p.end();
          const bad = (e: Expr): boolean => (e.k === 'fn' && SEMI_FNS.has(e.name)) || (e.k === 'cast' && typeClass(e.type) === 'variant') || (e.k === 'cast' && bad(e.e));
          for (const r of vrows) for (const e of r) if (bad(e)) throw sfErr('002014', '22000', `SQL compilation error:\nInvalid expression [${e.k === 'fn' ? `${e.name}(…)` : 'CAST(…)'}] in VALUES clause`);
          for (const br of bindRows.length ? bindRows : [[]]) {
            const c: Ctx = { s, binds: br };
            for (const r of vrows) out.push(makeRow(t, cols, r.map((e) => ev(e, undefined, c))));
          }
        } else if (p.isKw('SELECT') || p.isOp('(')) {
          const paren = p.op('(');
          const q = p.select();
          if (paren) p.expectOp(')');
          p.end();
          if (bindRows.length > 1) throw compileErr('array binds with INSERT … SELECT are not supported by the fake');
          for (const r of runSelect(q, ctx).rows) out.push(makeRow(t, cols, r));
        } else throw p.unexpected();
        writeTable(s, t, [...(overwrite ? [] : rowsOf(s, t)), ...out]);
        return rows(dml('number of rows inserted', out.length, 0x3100));
      }
      case 'COPY': return rows(await copyInto(s, p));
      case 'REMOVE': case 'RM': p.next(); return rows(await remove(s, p));
      case 'LIST': case 'LS': p.next(); return rows(await list(s, p));
      default: throw unsupported(sql);
    }
  };

  // --- HTTP ---------------------------------------------------------------------------------------------------
  const ok = (data: unknown, code: string | null = null, message: string | null = null) => ({ success: true, code, message, data });
  const failBody = (e: SfError, queryId?: string) => ({ success: false, code: e.code, message: e.message, data: { sqlState: e.sqlState, errorCode: e.code, errorMessage: e.message, queryId, internalError: false, age: 0, type: 'COMPILATION' } });
  const params = () => [
    { name: 'TIMEZONE', value: 'UTC' }, { name: 'TIMESTAMP_OUTPUT_FORMAT', value: 'YYYY-MM-DD HH24:MI:SS.FF3 TZHTZM' }, { name: 'TIMESTAMP_NTZ_OUTPUT_FORMAT', value: 'YYYY-MM-DD HH24:MI:SS.FF3' },
    { name: 'TIMESTAMP_LTZ_OUTPUT_FORMAT', value: '' }, { name: 'TIMESTAMP_TZ_OUTPUT_FORMAT', value: '' }, { name: 'DATE_OUTPUT_FORMAT', value: 'YYYY-MM-DD' },
    { name: 'TIME_OUTPUT_FORMAT', value: 'HH24:MI:SS' }, { name: 'BINARY_OUTPUT_FORMAT', value: 'HEX' }, { name: 'CLIENT_RESULT_CHUNK_SIZE', value: 160 },
    { name: 'CLIENT_STAGE_ARRAY_BINDING_THRESHOLD', value: 65280 }, { name: 'CLIENT_SESSION_KEEP_ALIVE', value: false }, { name: 'JS_TREAT_INTEGER_AS_BIGINT', value: false },
    { name: 'QUERY_RESULT_FORMAT', value: 'JSON' }, { name: 'AUTOCOMMIT', value: true },
  ];
  const sessionOf = (req: IncomingMessage): Session | undefined => {
    const m = /Snowflake Token="([^"]*)"/.exec(String(req.headers.authorization ?? ''));
    return m ? sessionMap(m[1]!) : undefined;
  };
  const sessionMap = (token: string) => sessions.get(token) ?? [...sessions.values()].find((s) => s.masterToken === token);
  const decodeBinds = (bindings: Record<string, { type: string; value: unknown }> | undefined): { rows: unknown[][]; recorded?: unknown[] | unknown[][] } => {
    if (!bindings || !Object.keys(bindings).length) return { rows: [] };
    const keys = Object.keys(bindings).sort((a, b) => Number(a) - Number(b));
    const conv = (type: string, v: unknown) => (v === null || v === undefined ? null : type === 'FIXED' || type === 'REAL' ? Number(v) : type === 'BOOLEAN' ? String(v).toLowerCase() === 'true' || v === '1' : v);
    const first = bindings[keys[0]!]!;
    if (Array.isArray(first.value)) {
      const n = first.value.length;
      const rows = Array.from({ length: n }, (_, i) => keys.map((k) => conv(bindings[k]!.type, (bindings[k]!.value as unknown[])[i])));
      return { rows, recorded: rows };
    }
    const row = keys.map((k) => conv(bindings[k]!.type, bindings[k]!.value));
    return { rows: [row], recorded: row };
  };

  const handle = async (req: IncomingMessage, url: URL, raw: Buffer): Promise<unknown> => {
    const body = raw.length ? JSON.parse((req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8')) : {};
    const path = url.pathname;
    if (req.method === 'POST' && path === '/session/v1/login-request') {
      const d = body.data ?? {};
      const authenticator = String(d.AUTHENTICATOR ?? 'SNOWFLAKE');
      const user = String(d.LOGIN_NAME ?? '');
      if (authenticator.toUpperCase() === 'SNOWFLAKE_JWT') {
        const keys = Object.fromEntries(Object.entries(opts.publicKeys ?? {}).map(([k, v]) => [k.toUpperCase(), v]));
        const why = verifySnowflakeJwt(String(d.TOKEN ?? ''), opts.account ?? 'fakeaccount', user, keys[user.toUpperCase()]);
        if (why) { jwtRefusals.push(why); return { success: false, code: '390144', message: 'JWT token is invalid.', data: { nextAction: 'RETRY_LOGIN', authnMethod: 'KEYPAIR', sqlState: '08004' } }; }
      }
      const good = authenticator.toUpperCase() === 'SNOWFLAKE_JWT' || ((opts.username === undefined || opts.username === user) && (opts.password === undefined || opts.password === d.PASSWORD));
      if (!good) return { success: false, code: '390100', message: 'Incorrect username or password was specified.', data: { nextAction: 'RETRY_LOGIN', authnMethod: 'PASSWORD', sqlState: '08004' } };
      const q = (n: string) => url.searchParams.get(n) ?? undefined;
      const up = (x?: string) => (x === undefined ? undefined : /^".*"$/.test(x) ? x.slice(1, -1) : x.toUpperCase());
      const s: Session = {
        id: nextSession++, token: `ST-${randomUUID()}`, masterToken: `MT-${randomUUID()}`, user,
        database: up(q('databaseName')), schema: up(q('schemaName')) ?? 'PUBLIC', warehouse: up(q('warehouse')), role: up(q('roleName')),
        tx: null, temps: new Map(), byRequest: new Map(),
      };
      sessions.set(s.token, s);
      logins.push({ user, authenticator, database: s.database, schema: q('schemaName') ? s.schema : undefined, warehouse: s.warehouse, role: s.role });
      return ok({
        token: s.token, masterToken: s.masterToken, validityInSeconds: 3600, masterValidityInSeconds: 14400, sessionId: s.id,
        displayUserName: user, serverVersion: '9.0.0', firstLogin: false, remMeToken: null, remMeValidityInSeconds: 0, healthCheckInterval: 45,
        newClientForUpgrade: null, idToken: null, idTokenValidityInSeconds: 0, mfaToken: null, mfaTokenValidityInSeconds: 0, responseData: null,
        parameters: params(),
        sessionInfo: { databaseName: s.database ?? null, schemaName: s.schema ?? null, warehouseName: s.warehouse ?? null, roleName: s.role ?? 'PUBLIC' },
      });
    }
    if (path === '/telemetry/send') return ok(null);
    const s = sessionOf(req);
    if (!s) return { success: false, code: '390111', message: 'Session no longer exists.  New login required to access the service.', data: null };
    if (path === '/session' && url.searchParams.get('delete') === 'true') { endSession(s); return ok(null); }
    if (path === '/session/heartbeat') return ok(null);
    if (path === '/session/token-request') {
      sessions.delete(s.token);
      s.token = `ST-${randomUUID()}`;
      sessions.set(s.token, s);
      return ok({ sessionToken: s.token, validityInSecondsST: 3600, masterToken: s.masterToken, validityInSecondsMT: 14400 });
    }
    if (path.endsWith('/abort-request')) return ok(null);
    let m = /^\/queries\/([^/]+)\/result$/.exec(path);
    if (m) {
      const r = results.get(m[1]!);
      if (!r) return failBody(sfErr('000709', '02000', `Statement ${m[1]} not found`));
      return r.body;
    }
    m = /^\/monitoring\/queries\/([^/]+)$/.exec(path);
    if (m) {
      const r = results.get(m[1]!);
      return ok({ queries: r ? [{ id: m[1], status: r.status, errorCode: r.error?.code, errorMessage: r.error?.message }] : [] });
    }
    if (req.method === 'POST' && path === '/queries/v1/query-request') {
      const requestId = url.searchParams.get('requestId');
      if (requestId && s.byRequest.has(requestId)) return s.byRequest.get(requestId);
      const sql = String(body.sqlText ?? '');
      const queryId = randomUUID();
      let answer: unknown;
      const rec: FakeStatement = { sql, session: s.id };
      statements.push(rec);
      try {
        if (body.bindStage) throw compileErr('the fake Snowflake does not support stage binding');
        const { rows, recorded } = decodeBinds(body.bindings);
        if (recorded) rec.binds = recorded;
        const r = await run(s, sql, rows, queryId);
        if (r.kind === 'put') answer = ok({ ...r.data, queryId });
        else {
          answer = ok({
            parameters: params(), rowtype: r.result.rowtype, rowset: r.result.rowset, total: r.result.rowset.length, returned: r.result.rowset.length,
            queryId, databaseProvider: null, finalDatabaseName: s.database ?? null, finalSchemaName: s.schema ?? null, finalWarehouseName: s.warehouse ?? null,
            finalRoleName: s.role ?? 'PUBLIC', numberOfBinds: 0, arrayBindSupported: false, statementTypeId: r.result.statementTypeId, version: 1,
            sendResultTime: Date.now(), queryResultFormat: 'json',
          });
        }
        results.set(queryId, { body: answer, status: 'SUCCESS' });
      } catch (e) {
        const err = e instanceof SfError ? e : sfErr('000603', 'XX000', `SQL execution internal error: ${(e as Error).message}`);
        rec.error = `${err.code}: ${err.message}`;
        answer = failBody(err, queryId);
        results.set(queryId, { body: answer, status: 'FAILED_WITH_ERROR', error: err });
      }
      if (body.asyncExec && (answer as { success: boolean }).success) {
        answer = ok({ queryId, getResultUrl: `/queries/${queryId}/result`, queryAbortsAfterSecs: 300, progressDesc: null }, '333334', 'Asynchronous execution in progress. Use provided query id to perform query monitoring and management.');
      }
      if (requestId) s.byRequest.set(requestId, answer);
      return answer;
    }
    return { success: false, code: '390400', message: `the fake Snowflake has no ${req.method} ${path}`, data: null };
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      handle(req, url, Buffer.concat(chunks))
        .then((out) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(out)); })
        .catch((e: unknown) => { res.writeHead(500, { 'content-type': 'text/plain' }); res.end(String((e as Error)?.stack ?? e)); });
    });
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', () => resolve()); });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    connectionOptions: { account: opts.account ?? 'fakeaccount', accessUrl: url },
    jwtRefusals,
    withheld,
    registerPublicKey(user: string, pem: string) { opts.publicKeys = { ...opts.publicKeys, [user]: pem }; },
    statements,
    tables,
    stagedFiles,
    stageStore: { s3: store.s3, bucket: store.bucket },
    violations: store.violations,
    logins,
    failWhen(match, err = {}, times = 1) {
      failures.push({ match, times, err: sfErr(err.code ?? '100132', err.sqlState ?? 'P0000', err.message ?? 'Injected failure from the fake Snowflake') });
    },
    sessionCount: () => sessions.size,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.stop();
      if (store.violations.length) throw new Error(`fake Snowflake: staged files that were not encrypted as the PUT answer said:\n${store.violations.join('\n')}`);
    },
  };
}
