/**
 * The fake Snowflake's internal stages, kept as Snowflake keeps them for an AWS-hosted account:
 * objects in an S3 bucket (here the S3-compatible test server, over HTTPS), encrypted on the client.
 *
 * What a PUT answer carries (as Snowflake's; the shapes are snowflake-sdk 3.x's
 * lib/file_transfer_agent/file_transfer_agent.js, s3_util.js and encrypt_util.js):
 *   stageInfo: locationType 'S3', location '<bucket>/<stage root>/<path>/', region, creds
 *     (AWS_KEY_ID / AWS_SECRET_KEY / AWS_TOKEN), isClientSideEncrypted true and endPoint
 *     '127.0.0.1:<port>'. s3_util.createClient() turns endPoint into `https://<endPoint>` (there is
 *     no way to ask it for http://), hence the HTTPS server with test/fakes/tls/server.pem; an IP
 *     endpoint makes the AWS SDK address the bucket path-style.
 *   encryptionMaterial: queryStageMasterKey (base64 AES key of the stage, 128 bit), queryId (the
 *     PUT's), smkId (which master key).
 * The SDK then, per file: makes a random file key and IV, encrypts the file with AES-CBC (PKCS#7),
 * wraps the file key with AES-ECB under the master key, and PUTs the object with the metadata
 *   x-amz-meta-x-amz-key     base64 wrapped file key
 *   x-amz-meta-x-amz-iv      base64 IV
 *   x-amz-meta-x-amz-matdesc {"smkId":"…","queryId":"…","keySize":"128"}
 *   x-amz-meta-sfc_digest    base64 SHA-256 of the file before encryption (the SDK writes the
 *                            property name SFC_DIGEST literally; Snowflake's other drivers write
 *                            sfc-digest: either is read)
 * Every read of a staged file (COPY, the `files` view) unwraps the key, decrypts and checks the
 * digest. A file that does not open — not encrypted, another master key, a matdesc no PUT issued,
 * a digest that does not match — fails the COPY and is recorded in `violations`, as is one still
 * staged at stop(); violations make the fake's stop() fail, so a suite that let one through fails.
 */
import { createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, get } from 'node:https';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { startS3, type S3Service } from '../support/services.js';

const TLS = new URL('./tls/', import.meta.url);
const BUCKET = 'sfc-fakeaccount-stage';
const META = 'x-amz-meta-';

export interface StagedObject { name: string; size: number; md5: string; lastModified: Date }
export interface StageStore {
  s3: S3Service;
  bucket: string;
  /** Staged files that did not open (why, per file), in order. */
  violations: string[];
  /** The PUT answer's stageInfo and encryptionMaterial for `prefix` inside the stage `key`. */
  putAnswer(key: string, prefix: string, queryId: string): { stageInfo: Record<string, unknown>; encryptionMaterial: Record<string, unknown> };
  /** The stage's objects, names relative to the stage. */
  list(key: string): Promise<StagedObject[]>;
  /** A staged file's bytes as the client had them: decrypted and checked; an Error saying why not. */
  read(key: string, name: string): Promise<Buffer>;
  remove(key: string, names: string[]): Promise<void>;
  /** Synchronous view of every stage: '<key>/<name>' → decrypted bytes (files that open). */
  view(): Map<string, Buffer>;
  stop(): Promise<void>;
}

/** Lower-cased metadata without the x-amz-meta- prefix (GetObject gives it so, the store on disk with it). */
const normMeta = (m: Record<string, string> | undefined) => Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k.toLowerCase().replace(META, ''), v]));

export async function startStageStore(): Promise<StageStore> {
  const ca = readFileSync(new URL('ca.pem', TLS));
  const s3 = await startS3({ tls: { key: readFileSync(new URL('server-key.pem', TLS)), cert: readFileSync(new URL('server.pem', TLS)) }, buckets: [] }).catch((e: unknown) => {
    throw new Error(`the fake Snowflake's stage server did not start: ${(e as Error).message}; the test process must trust test/fakes/tls/ca.pem (NODE_EXTRA_CA_CERTS, set by test/support/global-setup.ts)`);
  });
  // The SDK uploads with the process's default trust store: say at once when it lacks the test CA.
  await new Promise<void>((resolve, reject) => {
    get(`${s3.endpoint}/`, (res) => { res.resume(); resolve(); }).on('error', (e) => {
      void s3.destroy();
      reject(new Error(`the fake Snowflake's stage is HTTPS with test/fakes/tls/server.pem, which this process does not trust (${e.message}): start it with NODE_EXTRA_CA_CERTS naming test/fakes/tls/ca.pem (test/support/global-setup.ts does)`));
    });
  });
  await s3.createBucket(BUCKET);
  const client = new S3Client({ ...s3.clientConfig, requestHandler: { httpsAgent: new Agent({ ca }) } });
  const roots = new Map<string, string>(); // stage key → object prefix
  const masters = new Map<string, { id: number; key: Buffer }>(); // stage key → its master key
  const issued = new Map<string, string>(); // queryId of a PUT → its stage key
  let nextSmk = 4200;
  const violations: string[] = [];

  const rootOf = (key: string) => {
    let r = roots.get(key);
    if (!r) {
      r = `stages/${key.replace(/[^A-Za-z0-9_.-]/g, '_')}-${createHash('sha1').update(key).digest('hex').slice(0, 8)}/`;
      roots.set(key, r);
      masters.set(key, { id: nextSmk++, key: randomBytes(16) });
    }
    return r;
  };

  /** null and the bytes, or why the object does not open. */
  const open = (key: string, body: Buffer, metadata: Record<string, string>): { plain: Buffer } | { why: string } => {
    const m = normMeta(metadata);
    const [wrapped, iv, matdesc] = [m['x-amz-key'], m['x-amz-iv'], m['x-amz-matdesc']];
    if (!wrapped || !iv || !matdesc) return { why: 'it is not client-side encrypted (no x-amz-key / x-amz-iv / x-amz-matdesc metadata)' };
    let desc: { smkId?: unknown; queryId?: unknown; keySize?: unknown };
    try { desc = JSON.parse(matdesc); } catch { return { why: `x-amz-matdesc is not JSON: ${matdesc}` }; }
    const smk = masters.get(key)!;
    if (String(desc.smkId) !== String(smk.id)) return { why: `it is encrypted for master key ${String(desc.smkId)}, not the stage's (${smk.id})` };
    if (issued.get(String(desc.queryId)) !== key) return { why: `x-amz-matdesc names query ${String(desc.queryId)}, which is no PUT to this stage` };
    if (String(desc.keySize) !== String(smk.key.length * 8)) return { why: `x-amz-matdesc keySize ${String(desc.keySize)} is not ${smk.key.length * 8}` };
    let plain: Buffer;
    try {
      const ecb = createDecipheriv(`aes-${smk.key.length * 8}-ecb`, smk.key, null);
      const fileKey = Buffer.concat([ecb.update(Buffer.from(wrapped, 'base64')), ecb.final()]);
      const cbc = createDecipheriv(`aes-${fileKey.length * 8}-cbc`, fileKey, Buffer.from(iv, 'base64'));
      plain = Buffer.concat([cbc.update(body), cbc.final()]);
    } catch (e) {
      return { why: `it does not decrypt with the stage's master key (${(e as Error).message})` };
    }
    const digest = m['sfc-digest'] ?? m['sfc_digest'];
    if (!digest) return { why: 'it has no sfc-digest metadata' };
    if (createHash('sha256').update(plain).digest('base64') !== digest) return { why: 'its decrypted bytes do not match its sfc-digest' };
    return { plain };
  };

  return {
    s3,
    bucket: BUCKET,
    violations,
    putAnswer(key, prefix, queryId) {
      const root = rootOf(key);
      issued.set(queryId, key);
      const path = `${root}${prefix}`.replace(/\/*$/, '/');
      const smk = masters.get(key)!;
      return {
        stageInfo: {
          locationType: 'S3', location: `${BUCKET}/${path}`, path, region: s3.region, storageAccount: null, isClientSideEncrypted: true,
          creds: { AWS_KEY_ID: s3.accessKeyId, AWS_SECRET_KEY: s3.secretAccessKey, AWS_TOKEN: `fake-session-token-${queryId}`, AWS_ID: s3.accessKeyId, AWS_KEY: s3.secretAccessKey },
          presignedUrl: null, endPoint: s3.endpoint.replace(/^https:\/\//, ''), useS3RegionalUrl: false,
        },
        encryptionMaterial: { queryStageMasterKey: smk.key.toString('base64'), queryId, smkId: smk.id },
      };
    },
    async list(key) {
      const root = rootOf(key);
      const out: StagedObject[] = [];
      let token: string | undefined;
      do {
        const r = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: root, ContinuationToken: token }));
        for (const o of r.Contents ?? []) out.push({ name: o.Key!.slice(root.length), size: o.Size ?? 0, md5: String(o.ETag ?? '').replace(/"/g, ''), lastModified: o.LastModified ?? new Date(0) });
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    async read(key, name) {
      const r = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${rootOf(key)}${name}` }));
      const body = Buffer.from(await r.Body!.transformToByteArray());
      const o = open(key, body, r.Metadata ?? {});
      if ('why' in o) {
        violations.push(`staged file ${key}/${name}: ${o.why}`);
        throw new Error(`${key}/${name}: ${o.why}`);
      }
      return o.plain;
    },
    async remove(key, names) {
      for (const n of names) await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${rootOf(key)}${n}` }));
    },
    view() {
      const out = new Map<string, Buffer>();
      for (const o of s3.storedObjects(BUCKET)) {
        const hit = [...roots].find(([, r]) => o.key.startsWith(r));
        if (!hit) continue;
        const opened = open(hit[0], o.body, o.metadata);
        if ('plain' in opened) out.set(`${hit[0]}/${o.key.slice(hit[1].length)}`, opened.plain);
      }
      return out;
    },
    async stop() {
      // Files still staged must open too: an unencrypted upload fails the suite even if nothing COPYs it.
      for (const o of s3.storedObjects(BUCKET)) {
        const hit = [...roots].find(([, r]) => o.key.startsWith(r));
        const opened = hit ? open(hit[0], o.body, o.metadata) : { why: 'it is in no stage' };
        if ('why' in opened) violations.push(`staged file ${hit ? `${hit[0]}/${o.key.slice(hit[1].length)}` : o.key} (left at stop): ${opened.why}`);
      }
      client.destroy();
      await s3.destroy();
    },
  };
}
