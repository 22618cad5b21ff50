/**
 * A small local server speaking the subset of the Cloud Storage JSON API that
 * @google-cloud/storage 7 uses, so the real SDK is tested over HTTP on
 * loopback (no GCS emulator installs here).
 *
 * Pointing the SDK here:
 *   new Storage({ apiEndpoint: fake.apiEndpoint, projectId: 'test' })
 *     a custom endpoint makes the SDK send no credentials at all (customEndpoint
 *     without useAuthWithCustomEndpoint; resumable uploads use plain gaxios);
 *   new Storage({ apiEndpoint, projectId, credentials: fake.credentials, useAuthWithCustomEndpoint: true })
 *     the fake's keys belong to their own universe (`universe_domain`, FAKE_UNIVERSE), as a key of
 *     any universe other than googleapis.com does: google-auth-library then sends a self-signed JWT
 *     (RS256, iss = client_email, scope) instead of exchanging it at Google's token endpoint
 *     (https://oauth2.googleapis.com/token, hard-coded: a key's token_uri is not read), and this
 *     server verifies that JWT. No SDK setting is touched.
 * A request with a bad Authorization header (unknown key, bad signature, expired) gets 401 authError;
 * one without the header is accepted unless `requireAuth` is set.
 *
 * Supported (all under `apiEndpoint`):
 * - GET    /storage/v1/b/:bucket                               bucket metadata
 * - POST   /storage/v1/b?project=                              create a bucket (409 when it exists)
 * - POST   /upload/storage/v1/b/:bucket/o?uploadType=multipart  one-shot upload (multipart/related)
 * - POST   /upload/storage/v1/b/:bucket/o?uploadType=media&name= raw one-shot upload
 * - POST   /upload/storage/v1/b/:bucket/o?uploadType=resumable  → 200 + Location of a session
 * - PUT    <session>  Content-Range `bytes a-b/*` (308 + Range), `bytes a-b/N` (final: 200 + object),
 *          `bytes *\/N` or `bytes *\/*` (status query: 308 + Range, or 200 when complete)
 * - DELETE <session>                                            cancel (499, as GCS answers)
 * - GET    /storage/v1/b/:bucket/o/:name                        object metadata
 * - GET    /storage/v1/b/:bucket/o/:name?alt=media  (also /download/…)  bytes; honours Range,
 *          serves gzip-encoded objects as stored with `Accept-Encoding: gzip`, decompressed otherwise
 * - GET    /storage/v1/b/:bucket/o?prefix=&delimiter=&maxResults=&pageToken=   list
 * - DELETE /storage/v1/b/:bucket/o/:name                        delete (404 when missing)
 * Objects carry size, md5Hash and crc32c (both computed here, independently of the SDK), generation,
 * metageneration, contentType, contentEncoding and custom `metadata`. An upload's X-Goog-Hash header
 * (or the crc32c/md5Hash it sends in the metadata) is checked against the bytes: a mismatch is a 400, as on GCS.
 * `ifGenerationMatch` / `ifGenerationNotMatch` preconditions are honoured on uploads, get and delete (412).
 * An uploaded object becomes visible only when its final chunk arrives; a cancelled or abandoned
 * session leaves nothing.
 *
 * Differences from GCS: no ACLs/IAM, no versioning (one live generation), no compose/copy/rewrite,
 * no signed URLs, no XML API; sessions never expire; `failNext` failures are injected before routing.
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { loadDiscovery, matchMethod, unknownQueryParams, validateValue, type MatchedMethod } from './discovery/validate.js';
import { gunzipSync } from 'node:zlib';

// Without credentials google-auth-library may probe the GCE metadata server (slow offline).
process.env.METADATA_SERVER_DETECTION ??= 'none';

// ---------------------------------------------------------------------------------------------
// Shared with bigquery-server.ts: a fake service account and the check of the bearer token.

/** A service-account key (the JSON a Cloud console key file holds), generated per fake. */
/** Google's discovery document for the Cloud Storage JSON API v1 (origin: discovery/README.md). */
const DISCOVERY = loadDiscovery('storage.v1.json');

/** The universe of the fakes' service-account keys (no Google universe is named so). */
export const FAKE_UNIVERSE = 'bifrost-logs-fake.test';

export interface FakeServiceAccountKey {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  /** The universe the key belongs to (Google writes `googleapis.com` into its own keys). */
  universe_domain: string;
  token_uri: string;
}

export function createFakeServiceAccount(projectId: string, tokenUri: string): { key: FakeServiceAccountKey; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    key: {
      type: 'service_account', project_id: projectId, private_key_id: randomBytes(20).toString('hex'), private_key: privateKey,
      client_email: `fake-loader@${projectId}.iam.gserviceaccount.com`, client_id: String(100000000000000000000n + BigInt(Date.now())),
      auth_uri: 'https://accounts.google.com/o/oauth2/auth', token_uri: tokenUri, universe_domain: FAKE_UNIVERSE,
    },
    publicKey: createPublicKey(publicKey),
  };
}

/**
 * Checks an Authorization header: no header → 'anonymous'; a self-signed JWT (RS256) by the fake's
 * key, for its client_email, not expired → 'ok'; anything else → the reason it is refused.
 */
export function checkBearer(header: string | undefined, sa: { key: FakeServiceAccountKey; publicKey: KeyObject }): 'ok' | 'anonymous' | string {
  if (!header) return 'anonymous';
  const m = /^Bearer\s+([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(header);
  if (!m) return 'not a JWT bearer token';
  const [, h, p, s] = m as unknown as [string, string, string, string];
  let head: { alg?: string; kid?: string };
  let claims: { iss?: string; exp?: number; scope?: string; aud?: string };
  try {
    head = JSON.parse(Buffer.from(h, 'base64url').toString());
    claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  } catch {
    return 'malformed JWT';
  }
  if (head.alg !== 'RS256') return `unsupported alg ${head.alg}`;
  if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), sa.publicKey, Buffer.from(s, 'base64url'))) return 'bad signature';
  if (claims.iss !== sa.key.client_email) return `unknown issuer ${claims.iss}`;
  if (!claims.exp || claims.exp * 1000 < Date.now() - 60_000) return 'expired';
  if (!claims.scope && !claims.aud) return 'neither scope nor aud';
  return 'ok';
}

// ---------------------------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C (Castagnoli) of the bytes, base64 of its big-endian form, as GCS reports it. */
export function crc32c(data: Buffer): string {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((c ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

/** Splits a multipart/related body into its parts' bodies (bytes exact). */
export function splitMultipart(data: Buffer, contentType: string | undefined): Buffer[] | null {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType ?? '')?.[1];
  if (!boundary) return null;
  const delim = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let at = data.indexOf(delim);
  while (at >= 0) {
    const start = at + delim.length;
    if (data.subarray(start, start + 2).toString() === '--') break;
    const next = data.indexOf(delim, start);
    if (next < 0) break;
    const part = data.subarray(start, next);
    const headEnd = part.indexOf('\r\n\r\n');
    let content = part.subarray(headEnd + 4);
    if (content.subarray(-2).toString() === '\r\n') content = content.subarray(0, -2);
    parts.push(content);
    at = next;
  }
  return parts;
}

export interface StoredObject { data: Buffer; metadata: Record<string, any> }

export interface FakeGcsOptions {
  /** Buckets that exist; others answer 404. Default: every bucket exists. */
  buckets?: string[];
  /** Refuse requests without an Authorization header (401). Default false. */
  requireAuth?: boolean;
}

export interface FakeGcs {
  apiEndpoint: string;
  /** `bucket/name` → the object's bytes and its resource (metadata). */
  objects: Map<string, StoredObject>;
  /** Every request received, in order (failed ones too). */
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }>;
  /**
   * Requests and responses that do not match Google's discovery document for the JSON API
   * (discovery/storage.v1.json), one line each. A request that does not match is answered 400 as
   * GCS does; `stop()` fails while this list is not empty.
   */
  violations: string[];
  /** Resumable sessions not finished yet (neither final chunk nor cancel). */
  openSessions(): number;
  /** A service-account key this server accepts (self-signed JWTs only, see the header comment). */
  credentials: FakeServiceAccountKey;
  /**
   * The next n requests (only those whose `METHOD url` matches `match`, when given) fail with
   * this status (and Retry-After when given), before anything else happens.
   */
  failNext(n: number, status: number, opts?: { retryAfter?: number; match?: RegExp }): void;
  stop(): Promise<void>;
}

interface Session { bucket: string; name: string; metadata: Record<string, any>; chunks: Buffer[]; size: number; done?: Record<string, unknown>; query: URLSearchParams }

export async function startFakeGcs(opts: FakeGcsOptions = {}): Promise<FakeGcs> {
  const objects = new Map<string, StoredObject>();
  const buckets = new Set(opts.buckets ?? []);
  const anyBucket = !opts.buckets;
  const sessions = new Map<string, Session>();
  const requests: FakeGcs['requests'] = [];
  const violations: string[] = [];
  const methodOf = new WeakMap<ServerResponse, MatchedMethod>();
  let failures = { n: 0, status: 503, retryAfter: undefined as number | undefined, match: undefined as RegExp | undefined };
  let generation = 1_700_000_000_000_000;
  let base = '';
  // Generated on first use (an RSA key takes a moment).
  let saCache: ReturnType<typeof createFakeServiceAccount> | undefined;
  const sa = () => (saCache ??= createFakeServiceAccount('test', 'https://oauth2.googleapis.com/token'));

  const bodies = new WeakMap<IncomingMessage, Promise<Buffer>>();
  const body = (req: IncomingMessage) => {
    let p = bodies.get(req);
    if (!p) {
      p = new Promise<Buffer>((resolve, reject) => {
        const c: Buffer[] = [];
        req.on('data', (d: Buffer) => c.push(d));
        req.on('end', () => resolve(Buffer.concat(c)));
        req.on('error', reject);
      });
      bodies.set(req, p);
    }
    return p;
  };
  const json = (res: ServerResponse, status: number, v: unknown) => {
    const dm = methodOf.get(res);
    if (dm?.method.response && status >= 200 && status < 300) violations.push(...validateValue(DISCOVERY, dm.method.response, v, `response of ${dm.method.id}`));
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify(v));
  };
  const error = (res: ServerResponse, code: number, reason: string, message: string, extra: Record<string, string> = {}) => {
    res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8', ...extra });
    res.end(JSON.stringify({ error: { code, message, errors: [{ message, domain: 'global', reason }] } }));
  };
  const noBucket = (res: ServerResponse) => error(res, 404, 'notFound', 'The specified bucket does not exist.');
  const noObject = (res: ServerResponse, bucket: string, name: string) => error(res, 404, 'notFound', `No such object: ${bucket}/${name}`);
  const bucketExists = (b: string) => anyBucket || buckets.has(b);

  const resource = (bucket: string, name: string, o: StoredObject) => ({
    kind: 'storage#object', id: `${bucket}/${name}/${o.metadata.generation}`,
    selfLink: `${base}/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}`,
    mediaLink: `${base}/download/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}?generation=${o.metadata.generation}&alt=media`,
    name, bucket, storageClass: 'STANDARD', ...o.metadata, size: String(o.data.length),
  });
  /** 412 when a precondition in the query fails. */
  const precondition = (q: URLSearchParams, bucket: string, name: string): boolean => {
    const cur = objects.get(`${bucket}/${name}`);
    const gen = cur ? String(cur.metadata.generation) : '0';
    const match = q.get('ifGenerationMatch');
    const notMatch = q.get('ifGenerationNotMatch');
    return (match === null || match === gen) && (notMatch === null || notMatch !== gen);
  };
  /** Checks the client's hashes (X-Goog-Hash or metadata crc32c/md5Hash) against the bytes. */
  const hashMismatch = (data: Buffer, header: string | undefined, meta: Record<string, any>): string | null => {
    const want: Record<string, string> = {};
    for (const part of String(header ?? '').split(',')) {
      const i = part.indexOf('=');
      if (i > 0) want[part.slice(0, i).trim()] = part.slice(i + 1).trim();
    }
    if (meta.crc32c) want.crc32c ??= meta.crc32c;
    if (meta.md5Hash) want.md5 ??= meta.md5Hash;
    if (want.crc32c && want.crc32c !== crc32c(data)) return `Provided CRC32C "${want.crc32c}" doesn't match calculated CRC32C "${crc32c(data)}".`;
    const md5 = createHash('md5').update(data).digest('base64');
    if (want.md5 && want.md5 !== md5) return `Provided MD5 hash "${want.md5}" doesn't match calculated MD5 hash "${md5}".`;
    return null;
  };
  const store = (bucket: string, name: string, data: Buffer, meta: Record<string, any>) => {
    const now = new Date().toISOString();
    const { name: _n, bucket: _b, size: _s, crc32c: _c, md5Hash: _m, generation: _g, ...rest } = meta;
    const o: StoredObject = {
      data,
      metadata: {
        contentType: 'application/octet-stream', ...rest,
        generation: String(generation++), metageneration: '1', timeCreated: now, updated: now,
        md5Hash: createHash('md5').update(data).digest('base64'), crc32c: crc32c(data),
        etag: randomBytes(8).toString('base64'),
      },
    };
    objects.set(`${bucket}/${name}`, o);
    return resource(bucket, name, o);
  };

  const server = createServer(async (req, res) => {
    requests.push({ method: req.method!, url: req.url!, headers: req.headers });
    const url = new URL(req.url!, 'http://x');
    const q = url.searchParams;
    try {
      if (failures.n > 0 && (!failures.match || failures.match.test(`${req.method} ${req.url}`))) {
        failures.n--;
        await body(req);
        return error(res, failures.status, failures.status === 429 ? 'rateLimitExceeded' : 'backendError', 'injected failure',
          failures.retryAfter !== undefined ? { 'retry-after': String(failures.retryAfter) } : {});
      }
      const sid = q.get('upload_id');
      // Session URIs are capabilities: GCS does not ask for credentials on them.
      if (!sid) {
        const auth = req.headers.authorization ? checkBearer(req.headers.authorization, sa()) : 'anonymous';
        if (auth !== 'ok' && (auth !== 'anonymous' || opts.requireAuth)) {
          await body(req);
          return error(res, 401, 'authError', `Invalid Credentials (${auth === 'anonymous' ? 'no Authorization header' : auth})`);
        }
      }
      let m: RegExpMatchArray | null;

      // The published schema: the method addressed, its query parameters, its JSON request body.
      const dm = matchMethod(DISCOVERY, req.method!, url.pathname);
      if (dm) {
        methodOf.set(res, dm);
        const errs = unknownQueryParams(DISCOVERY, dm, q);
        const type = q.get('uploadType');
        if (dm.method.request && !sid && (!dm.upload || type === 'multipart' || type === 'resumable')) {
          const data = await body(req);
          let meta: unknown;
          if (dm.upload && type === 'multipart') { const parts = splitMultipart(data, req.headers['content-type']); meta = parts?.[0] ? JSON.parse(parts[0].toString('utf8')) : undefined; }
          else meta = data.length ? JSON.parse(data.toString('utf8')) : undefined;
          errs.push(...validateValue(DISCOVERY, dm.method.request, meta, `request of ${dm.method.id}`));
        }
        if (errs.length) {
          violations.push(...errs);
          await body(req);
          return error(res, 400, 'invalid', `Invalid JSON payload received. ${errs.join('; ')}`);
        }
      }

      if (sid && url.pathname.startsWith('/upload/')) {
        const s = sessions.get(sid);
        if (!s) { await body(req); return error(res, 404, 'notFound', 'No such upload session.'); }
        if (req.method === 'DELETE') { sessions.delete(sid); await body(req); res.writeHead(499); res.end(); return; }
        const data = await body(req);
        if (s.done) return json(res, 200, s.done);
        const range = req.headers['content-range'] ?? `bytes 0-${data.length - 1}/${data.length}`;
        const r = /^bytes (\*|(\d+)-(\d+))\/(\*|\d+)$/.exec(String(range));
        if (!r) return error(res, 400, 'invalid', `bad Content-Range ${range}`);
        if (r[1] !== '*') {
          const start = Number(r[2]);
          if (Number(r[3]) - start + 1 !== data.length) return error(res, 400, 'invalid', `Content-Range ${range} does not match ${data.length} bytes`);
          if (start > s.size) return error(res, 400, 'invalid', `gap in upload: have ${s.size} bytes, got a chunk at ${start}`);
          // GCS: every chunk but the last must be a multiple of 256 KiB (https://cloud.google.com/storage/docs/performing-resumable-uploads#chunked-upload).
          const last = r[4] !== '*' && Number(r[3]) + 1 >= Number(r[4]);
          if (!last && data.length % (256 * 1024) !== 0) return error(res, 400, 'invalid', `chunk of ${data.length} bytes is not a multiple of 262144 bytes and is not the last chunk`);
          // A chunk re-sent after a lost answer overlaps what is stored: keep only the new tail.
          const fresh = data.subarray(s.size - start);
          if (fresh.length) { s.chunks.push(fresh); s.size += fresh.length; }
        }
        if (r[4] !== '*' && s.size >= Number(r[4])) {
          const all = Buffer.concat(s.chunks);
          if (all.length !== Number(r[4])) return error(res, 400, 'invalid', `upload has ${all.length} bytes, expected ${r[4]}`);
          const bad = hashMismatch(all, req.headers['x-goog-hash'] as string | undefined, s.metadata);
          if (bad) { sessions.delete(sid); return error(res, 400, 'invalid', bad); }
          if (!precondition(s.query, s.bucket, s.name)) { sessions.delete(sid); return error(res, 412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.'); }
          s.done = store(s.bucket, s.name, all, s.metadata);
          return json(res, 200, s.done);
        }
        res.writeHead(308, s.size ? { range: `bytes=0-${s.size - 1}` } : {});
        res.end();
        return;
      }

      if ((m = url.pathname.match(/^\/upload\/storage\/v1\/b\/([^/]+)\/o$/)) && req.method === 'POST') {
        const bucket = decodeURIComponent(m[1]!);
        const type = q.get('uploadType');
        const data = await body(req);
        if (!bucketExists(bucket)) return noBucket(res);
        if (type === 'resumable') {
          const meta = data.length ? JSON.parse(data.toString()) : {};
          const name = q.get('name') ?? meta.name;
          if (!name) return error(res, 400, 'required', 'Required object name');
          if (!precondition(q, bucket, name)) return error(res, 412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
          if (req.headers['x-upload-content-type'] && !meta.contentType) meta.contentType = req.headers['x-upload-content-type'];
          const id = randomBytes(12).toString('hex');
          sessions.set(id, { bucket, name, metadata: meta, chunks: [], size: 0, query: q });
          res.writeHead(200, { location: `${base}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}` });
          res.end();
          return;
        }
        let meta: Record<string, any>;
        let media: Buffer;
        if (type === 'multipart') {
          const parts = splitMultipart(data, req.headers['content-type']);
          if (!parts || parts.length < 2) return error(res, 400, 'invalid', 'multipart body needs a metadata and a media part');
          meta = JSON.parse(parts[0]!.toString('utf8'));
          media = parts[1]!;
        } else if (type === 'media') {
          meta = { contentType: req.headers['content-type'] };
          media = data;
        } else {
          return error(res, 400, 'invalid', `uploadType ${type} is not supported by the fake`);
        }
        const name = meta.name ?? q.get('name');
        if (!name) return error(res, 400, 'required', 'Required object name');
        const bad = hashMismatch(media, req.headers['x-goog-hash'] as string | undefined, meta);
        if (bad) return error(res, 400, 'invalid', bad);
        if (!precondition(q, bucket, name)) return error(res, 412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
        return json(res, 200, store(bucket, name, media, meta));
      }

      if (url.pathname === '/storage/v1/b' && req.method === 'POST') {
        const meta = JSON.parse((await body(req)).toString() || '{}');
        if (buckets.has(meta.name)) return error(res, 409, 'conflict', 'Your previous request to create the named bucket succeeded and you already own it.');
        buckets.add(meta.name);
        return json(res, 200, { kind: 'storage#bucket', id: meta.name, name: meta.name, location: 'US', storageClass: 'STANDARD' });
      }
      if ((m = url.pathname.match(/^\/storage\/v1\/b\/([^/]+)$/)) && req.method === 'GET') {
        const bucket = decodeURIComponent(m[1]!);
        if (!bucketExists(bucket)) return noBucket(res);
        return json(res, 200, { kind: 'storage#bucket', id: bucket, name: bucket, location: 'US', storageClass: 'STANDARD', metageneration: '1' });
      }
      if ((m = url.pathname.match(/^\/storage\/v1\/b\/([^/]+)\/o$/)) && req.method === 'GET') {
        const bucket = decodeURIComponent(m[1]!);
        if (!bucketExists(bucket)) return noBucket(res);
        const prefix = q.get('prefix') ?? '';
        const delimiter = q.get('delimiter');
        const items: ReturnType<typeof resource>[] = [];
        const prefixes = new Set<string>();
        const keys = [...objects.keys()].filter((k) => k.startsWith(`${bucket}/${prefix}`)).sort();
        for (const k of keys) {
          const name = k.slice(bucket.length + 1);
          const cut = delimiter ? name.indexOf(delimiter, prefix.length) : -1;
          if (cut >= 0) prefixes.add(name.slice(0, cut + delimiter!.length));
          else items.push(resource(bucket, name, objects.get(k)!));
        }
        const from = Number(q.get('pageToken') ?? 0);
        const max = Number(q.get('maxResults') ?? 1000);
        const page = items.slice(from, from + max);
        return json(res, 200, {
          kind: 'storage#objects', items: page, ...(prefixes.size ? { prefixes: [...prefixes] } : {}),
          ...(from + max < items.length ? { nextPageToken: String(from + max) } : {}),
        });
      }
      if ((m = url.pathname.match(/^\/(?:download\/)?storage\/v1\/b\/([^/]+)\/o\/(.+)$/))) {
        const bucket = decodeURIComponent(m[1]!);
        const name = decodeURIComponent(m[2]!);
        await body(req);
        if (!bucketExists(bucket)) return noBucket(res);
        const o = objects.get(`${bucket}/${name}`);
        if (!o) return noObject(res, bucket, name);
        if (!precondition(q, bucket, name)) return error(res, 412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
        if (req.method === 'DELETE') {
          objects.delete(`${bucket}/${name}`);
          res.writeHead(204);
          res.end();
          return;
        }
        if (req.method !== 'GET') return error(res, 405, 'methodNotAllowed', `${req.method} on an object is not supported by the fake`);
        if (q.get('alt') !== 'media') return json(res, 200, resource(bucket, name, o));
        const stored = String(o.metadata.contentEncoding ?? 'identity');
        const headers: Record<string, string | number> = {
          'content-type': String(o.metadata.contentType ?? 'application/octet-stream'),
          'x-goog-hash': `crc32c=${o.metadata.crc32c},md5=${o.metadata.md5Hash}`,
          'x-goog-stored-content-length': o.data.length, 'x-goog-stored-content-encoding': stored,
          'x-goog-generation': String(o.metadata.generation), etag: String(o.metadata.etag),
        };
        let data = o.data;
        if (stored === 'gzip') {
          // Decompressive transcoding unless the client accepts gzip (then the stored bytes, as GCS does).
          if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) headers['content-encoding'] = 'gzip';
          else { data = gunzipSync(o.data); delete headers['x-goog-hash']; }
        }
        const range = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ''));
        if (range && (range[1] || range[2])) {
          const start = range[1] ? Number(range[1]) : Math.max(0, data.length - Number(range[2]));
          const end = range[1] && range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
          if (start >= data.length) return error(res, 416, 'requestedRangeNotSatisfiable', 'The requested range cannot be satisfied.');
          headers['content-range'] = `bytes ${start}-${end}/${data.length}`;
          data = data.subarray(start, end + 1);
          res.writeHead(206, { ...headers, 'content-length': data.length });
        } else {
          res.writeHead(200, { ...headers, 'content-length': data.length });
        }
        res.end(data);
        return;
      }
      await body(req);
      error(res, 404, 'notFound', `not supported by the fake: ${req.method} ${url.pathname}`);
    } catch (err) {
      if (!res.headersSent) error(res, 500, 'backendError', (err as Error).message);
      else res.destroy();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    apiEndpoint: base, objects, requests, violations,
    get credentials() { return sa().key; },
    openSessions: () => [...sessions.values()].filter((s) => !s.done).length,
    failNext(n, status, o = {}) { failures = { n, status, retryAfter: o.retryAfter, match: o.match }; },
    stop: () => new Promise((r, j) => {
      server.closeAllConnections();
      server.close(() => (violations.length ? j(new Error(`fake GCS: requests or responses that do not match the published API schema:\n${violations.join('\n')}`)) : r()));
    }),
  };
}
