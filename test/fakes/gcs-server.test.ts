import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRC32C, IdempotencyStrategy, Storage, type StorageOptions } from '@google-cloud/storage';
import { FAKE_UNIVERSE, crc32c, startFakeGcs, type FakeGcs } from './gcs-server.js';

/** The real SDK against the fake, over HTTP. */

const RETRY: StorageOptions['retryOptions'] = { idempotencyStrategy: IdempotencyStrategy.RetryAlways, retryDelayMultiplier: 1, totalTimeout: 30, maxRetryDelay: 1 };

let gcs: FakeGcs;
let storage: Storage;
beforeAll(async () => {
  gcs = await startFakeGcs();
  storage = new Storage({ apiEndpoint: gcs.apiEndpoint, projectId: 'test', retryOptions: RETRY });
});
afterAll(async () => { await gcs.stop(); });

/** A > 10 MiB source fed in uneven pieces. */
function pieces(data: Buffer): Readable {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += 3_000_001) out.push(data.subarray(i, i + 3_000_001));
  return Readable.from(out);
}

describe('the fake GCS server with the real @google-cloud/storage', () => {
  it('computes crc32c as the SDK does', () => {
    for (const b of [Buffer.alloc(0), Buffer.from('hello'), randomBytes(100_003)]) {
      const c = new CRC32C();
      c.update(b);
      expect(crc32c(b)).toBe(c.toString());
    }
  });

  it('resumable upload of > 10 MiB in 8 MiB chunks: exact bytes, metadata, visible only at the end', async () => {
    const raw = randomBytes(11 << 20);
    const gz = gzipSync(raw, { level: 1 });
    expect(gz.length).toBeGreaterThan(10 << 20);
    const file = storage.bucket('bkt').file('dir/big.jsonl.gz');
    const from = gcs.requests.length;
    const ws = file.createWriteStream({
      resumable: true, chunkSize: 8 << 20, validation: 'crc32c',
      contentType: 'application/x-ndjson', metadata: { contentEncoding: 'gzip', metadata: { run: 'r1' } },
    });
    let uri = '';
    ws.on('uri', (u: string) => { uri = u; });
    // Not visible while the chunks are in flight.
    let seenEarly = false;
    const watch = setInterval(() => { if (uri && gcs.objects.has('bkt/dir/big.jsonl.gz') && gcs.openSessions() > 0) seenEarly = true; }, 1);
    await pipeline(pieces(gz), ws).finally(() => clearInterval(watch));
    expect(seenEarly).toBe(false);
    expect(uri).toContain('upload_id=');
    const o = gcs.objects.get('bkt/dir/big.jsonl.gz')!;
    expect(o.data.equals(gz)).toBe(true);
    expect(o.metadata).toMatchObject({ contentType: 'application/x-ndjson', contentEncoding: 'gzip', metadata: { run: 'r1' } });
    const puts = gcs.requests.slice(from).filter((r) => r.method === 'PUT');
    expect(puts.length).toBeGreaterThanOrEqual(2);
    expect(puts.map((r) => r.headers['content-range'])[0]).toBe(`bytes 0-${(8 << 20) - 1}/*`);

    const [meta] = await file.getMetadata();
    expect(meta).toMatchObject({ size: String(gz.length), contentEncoding: 'gzip', contentType: 'application/x-ndjson' });
    expect(meta.crc32c).toBe(crc32c(gz));
    // The stored bytes (validated), and the decompressed content.
    const [stored] = await file.download({ decompress: false, validation: 'crc32c' });
    expect(stored.equals(gz)).toBe(true);
    const [plain] = await file.download();
    expect(plain.equals(raw)).toBe(true);
  });

  it('an identity object is downloaded with crc32c validation; ranges work', async () => {
    const data = randomBytes(3 << 20);
    const file = storage.bucket('bkt').file('plain.bin');
    await pipeline(Readable.from([data]), file.createWriteStream({ resumable: true, chunkSize: 1 << 20, validation: 'crc32c' }));
    const [back] = await file.download({ validation: 'crc32c' });
    expect(back.equals(data)).toBe(true);
    const [part] = await file.download({ start: 10, end: 19 });
    expect(part.equals(data.subarray(10, 20))).toBe(true);
    // A stored object whose bytes no longer match its hashes fails the SDK's validation.
    gcs.objects.get('bkt/plain.bin')!.data = Buffer.from(data).fill(0, 0, 1);
    await expect(file.download({ validation: 'crc32c' })).rejects.toThrow(/did not match/i);
  });

  it('an interrupted resumable upload leaves no object', async () => {
    const ws = storage.bucket('bkt').file('cut.bin').createWriteStream({ resumable: true, chunkSize: 256 * 1024 });
    ws.on('error', () => {});
    const from = gcs.requests.length;
    ws.write(Buffer.alloc(600 * 1024, 1));
    await new Promise((r) => setTimeout(r, 300));
    expect(gcs.requests.slice(from).some((r) => r.method === 'PUT')).toBe(true);
    ws.destroy(new Error('stop'));
    await new Promise((r) => setTimeout(r, 200));
    expect(gcs.objects.has('bkt/cut.bin')).toBe(false);
  });

  it('a chunk that is not a multiple of 256 KiB, other than the last, is refused as GCS refuses it', async () => {
    const start = await fetch(`${gcs.apiEndpoint}/upload/storage/v1/b/bkt/o?uploadType=resumable&name=misaligned.bin`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}',
    });
    const session = start.headers.get('location')!;
    expect(session).toBeTruthy();
    const odd = await fetch(session, { method: 'PUT', headers: { 'content-range': 'bytes 0-99999/*' }, body: Buffer.alloc(100_000) });
    expect(odd.status).toBe(400);
    expect(await odd.text()).toContain('not a multiple of 262144');
    const aligned = await fetch(session, { method: 'PUT', headers: { 'content-range': 'bytes 0-262143/*' }, body: Buffer.alloc(262_144) });
    expect(aligned.status).toBe(308);
    const last = await fetch(session, { method: 'PUT', headers: { 'content-range': 'bytes 262144-262243/262244' }, body: Buffer.alloc(100) });
    expect(last.status).toBe(200);
    expect(gcs.objects.get('bkt/misaligned.bin')?.data.length ?? -1).toBe(262_244);
  });

  it('save, exists, download, getFiles (prefix, delimiter, pages), delete', async () => {
    const b = storage.bucket('bkt2');
    await b.file('a/1.txt').save('one', { resumable: false, contentType: 'text/plain' });
    await b.file('a/2.txt').save(Buffer.from('two'), { resumable: false });
    await b.file('a/sub/3.txt').save('three', { resumable: false });
    await b.file('b.txt').save('bee', { resumable: false });
    expect(gcs.objects.get('bkt2/a/1.txt')!.metadata.contentType).toBe('text/plain');
    expect((await b.file('a/1.txt').download())[0].toString()).toBe('one');
    expect((await b.file('a/1.txt').exists())[0]).toBe(true);
    expect((await b.file('nope').exists())[0]).toBe(false);
    const [files] = await b.getFiles({ prefix: 'a/' });
    expect(files.map((f) => f.name)).toEqual(['a/1.txt', 'a/2.txt', 'a/sub/3.txt']);
    const [paged] = await b.getFiles({ prefix: 'a/', maxResults: 2, autoPaginate: true });
    expect(paged.map((f) => f.name)).toHaveLength(2);
    const [all] = await b.getFiles({ prefix: 'a/', autoPaginate: true, maxApiCalls: 10 });
    expect(all).toHaveLength(3);
    const [, , resp] = await b.getFiles({ prefix: 'a/', delimiter: '/', autoPaginate: false });
    expect((resp as { prefixes?: string[] }).prefixes).toEqual(['a/sub/']);
    await b.file('a/1.txt').delete();
    expect(gcs.objects.has('bkt2/a/1.txt')).toBe(false);
    await expect(b.file('a/1.txt').delete()).rejects.toMatchObject({ code: 404 });
    await b.file('a/1.txt').delete({ ignoreNotFound: true });
  });

  it('preconditions: ifGenerationMatch 0 refuses to overwrite', async () => {
    const f = storage.bucket('bkt').file('once.txt');
    await f.save('first', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    await expect(f.save('second', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } })).rejects.toMatchObject({ code: 412 });
    expect(gcs.objects.get('bkt/once.txt')!.data.toString()).toBe('first');
  });

  it('503s are retried by the SDK (a simple upload, a session start, a chunk)', async () => {
    gcs.failNext(1, 503);
    await storage.bucket('bkt').file('retry.txt').save('x', { resumable: false });
    expect(gcs.objects.get('bkt/retry.txt')!.data.toString()).toBe('x');

    gcs.failNext(1, 503, { retryAfter: 0, match: /^POST \/upload\/.*uploadType=resumable/ });
    const data = randomBytes(700 * 1024);
    await pipeline(Readable.from([data]), storage.bucket('bkt').file('retry.bin').createWriteStream({ resumable: true, chunkSize: 256 * 1024 }));
    expect(gcs.objects.get('bkt/retry.bin')!.data.equals(data)).toBe(true);

    const from = gcs.requests.length;
    gcs.failNext(1, 503, { match: /^PUT .*upload_id=/ });
    await pipeline(Readable.from([data]), storage.bucket('bkt').file('retry2.bin').createWriteStream({ resumable: true, chunkSize: 256 * 1024 }));
    expect(gcs.objects.get('bkt/retry2.bin')!.data.equals(data)).toBe(true);
    expect(gcs.requests.slice(from).filter((r) => r.method === 'PUT').length).toBeGreaterThan(3);
  });

  it('a hash that does not match the bytes is refused (400)', async () => {
    const r = await fetch(`${gcs.apiEndpoint}/upload/storage/v1/b/bkt/o?uploadType=media&name=bad.txt`, {
      method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain', 'x-goog-hash': `crc32c=${crc32c(Buffer.from('hellO'))}` },
    });
    expect(r.status).toBe(400);
    expect(gcs.objects.has('bkt/bad.txt')).toBe(false);
  });

  it('only the configured buckets exist when `buckets` is given', async () => {
    const g = await startFakeGcs({ buckets: ['real'] });
    try {
      const s = new Storage({ apiEndpoint: g.apiEndpoint, projectId: 'test', retryOptions: { autoRetry: false } });
      expect((await s.bucket('real').exists())[0]).toBe(true);
      expect((await s.bucket('other').exists())[0]).toBe(false);
      await expect(s.bucket('other').file('x').save('x', { resumable: false })).rejects.toMatchObject({ code: 404 });
      await s.bucket('real').file('x').save('x', { resumable: false });
      expect(g.objects.has('real/x')).toBe(true);
    } finally {
      await g.stop();
    }
  });

  it('with credentials: self-signed JWTs are verified; a wrong key gets 401', async () => {
    const g = await startFakeGcs();
    try {
      const make = (key: { client_email: string; private_key: string }) => {
        const s = new Storage({
          apiEndpoint: g.apiEndpoint, projectId: 'test', useAuthWithCustomEndpoint: true, retryOptions: { autoRetry: false },
          // Self-signed JWTs (the key's own universe) instead of an OAuth token from oauth2.googleapis.com.
          credentials: { client_email: key.client_email, private_key: key.private_key, universe_domain: FAKE_UNIVERSE },
        });
        return s;
      };
      const s = make(g.credentials);
      await s.bucket('b').file('small.txt').save('hi', { resumable: false });
      expect((await s.bucket('b').file('small.txt').download())[0].toString()).toBe('hi');
      const [uri] = await s.bucket('b').file('probe').createResumableUpload();
      expect(uri).toContain('upload_id=');
      const authed = g.requests.slice();
      expect(authed.length).toBe(3);
      for (const r of authed) expect(String(r.headers.authorization)).toMatch(/^Bearer ey/);
      // SDK quirk (storage 7.22): createWriteStream({ resumable: true }) does not pass
      // useAuthWithCustomEndpoint on, so against a non-googleapis.com endpoint its session
      // request (and the chunks) go out without credentials. The fake accepts anonymous requests
      // unless requireAuth is set.
      const big = randomBytes(600 * 1024);
      await pipeline(Readable.from([big]), s.bucket('b').file('big.bin').createWriteStream({ resumable: true, chunkSize: 256 * 1024 }));
      expect(g.objects.get('b/big.bin')!.data.equals(big)).toBe(true);
      const session = g.requests.find((r) => r.method === 'POST' && r.url.includes('name=big.bin'))!;
      expect(session.headers.authorization).toBeUndefined();

      const other = await startFakeGcs();
      await other.stop();
      const wrong = make({ client_email: g.credentials.client_email, private_key: other.credentials.private_key });
      await expect(wrong.bucket('b').file('small.txt').download()).rejects.toMatchObject({ code: 401 });
      await expect(wrong.bucket('b').file('w.txt').save('x', { resumable: false })).rejects.toMatchObject({ code: 401 });
      await expect(wrong.bucket('b').file('w.txt').createResumableUpload()).rejects.toMatchObject({ code: 401 });
    } finally {
      await g.stop();
    }
  });

  it('requireAuth refuses requests without credentials', async () => {
    const g = await startFakeGcs({ requireAuth: true });
    try {
      const anon = new Storage({ apiEndpoint: g.apiEndpoint, projectId: 'test', retryOptions: { autoRetry: false } });
      await expect(anon.bucket('b').file('small.txt').getMetadata()).rejects.toMatchObject({ code: 401 });
    } finally {
      await g.stop();
    }
  });

  it('requests and responses are checked against Google\'s discovery document: a wrong field name or type is refused (400) and recorded', async () => {
    const g = await startFakeGcs({ buckets: ['b'] });
    try {
      const s = new Storage({ apiEndpoint: g.apiEndpoint, projectId: 'test', retryOptions: { autoRetry: false } });
      await s.bucket('b').file('ok.txt').save('fine', { resumable: false });
      expect(g.violations).toEqual([]);
      // A misspelt property of the object resource (GCS's is contentType).
      const e1 = await s.bucket('b').file('a.txt').save('x', { resumable: false, metadata: { contentTyp: 'text/plain' } }).then(() => null, (e: unknown) => e);
      expect(e1).toMatchObject({ code: 400 });
      expect(String((e1 as Error).message)).toMatch(/unknown property "contentTyp"/);
      // A property of the wrong type (temporaryHold is a boolean).
      const e2 = await s.bucket('b').file('c.txt').save('x', { resumable: false, metadata: { temporaryHold: 'yes' } }).then(() => null, (e: unknown) => e);
      expect(e2).toMatchObject({ code: 400 });
      expect(String((e2 as Error).message)).toMatch(/temporaryHold: expected a boolean/);
      expect(g.violations).toHaveLength(2);
      expect(g.objects.has('b/a.txt') || g.objects.has('b/c.txt')).toBe(false);
      await expect(g.stop()).rejects.toThrow(/do not match the published API schema/);
    } finally {
      g.violations.length = 0;
      await g.stop().catch(() => undefined);
    }
  });
});
