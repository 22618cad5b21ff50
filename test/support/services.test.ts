import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startAzurite, startPostgres, startS3 } from './services.js';

const T = 60_000;

const listening = (port: number) => new Promise<boolean>((resolve) => {
  const c = connect(port, '127.0.0.1');
  c.once('connect', () => { c.destroy(); resolve(true); });
  c.once('error', () => resolve(false));
});

async function eventually(check: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

describe('test services start, answer and stop', () => {
  it('embedded PostgreSQL', { timeout: T }, async () => {
    const pg = await startPostgres();
    try {
      const { default: P } = await import('pg');
      const url = await pg.createDatabase('bl_test');
      expect(url).toBe(`postgres://postgres:${pg.password}@127.0.0.1:${pg.port}/bl_test`);
      const c = new P.Client({ connectionString: url });
      await c.connect();
      expect((await c.query('SELECT 1 AS x')).rows[0].x).toBe(1);
      expect((await c.query('SHOW server_encoding')).rows[0].server_encoding).toBe('UTF8');
      expect((await c.query('SELECT current_database() AS d')).rows[0].d).toBe('bl_test');
      await c.end();
    } finally { await pg.stop(); }
    await pg.stop(); // idempotent
    expect(await listening(pg.port)).toBe(false);
    expect(existsSync(pg.dataDir)).toBe(false);
  });

  it('s3rver: object round trip, multipart upload and abort', { timeout: T }, async () => {
    const s3 = await startS3({ buckets: ['bkt'] });
    const {
      S3Client, PutObjectCommand, GetObjectCommand, ListObjectsV2Command, DeleteObjectCommand,
      CreateMultipartUploadCommand, UploadPartCommand, AbortMultipartUploadCommand, ListMultipartUploadsCommand,
    } = await import('@aws-sdk/client-s3');
    const { Upload } = await import('@aws-sdk/lib-storage');
    const c = new S3Client(s3.clientConfig);
    try {
      await c.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'a/k.txt', Body: 'hello' }));
      expect(await (await c.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'a/k.txt' }))).Body!.transformToString()).toBe('hello');
      // A stream body: the case the SDK's default checksums would corrupt.
      await c.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'a/s.txt', Body: Readable.from([Buffer.from('streamed')]), ContentLength: 8 }));
      expect(await (await c.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'a/s.txt' }))).Body!.transformToString()).toBe('streamed');

      const big = Buffer.alloc(11 * 1024 * 1024 + 7);
      for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
      await new Upload({ client: c, params: { Bucket: 'bkt', Key: 'big.bin', Body: Readable.from([big]) }, partSize: 5 * 1024 * 1024, queueSize: 2 }).done();
      const got = Buffer.from(await (await c.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'big.bin' }))).Body!.transformToByteArray());
      expect(got.length).toBe(big.length);
      expect(got.equals(big)).toBe(true);

      const list = await c.send(new ListObjectsV2Command({ Bucket: 'bkt' }));
      expect(list.Contents!.map((o) => `${o.Key}:${o.Size}`).sort()).toEqual(['a/k.txt:5', 'a/s.txt:8', `big.bin:${big.length}`]);
      await c.send(new DeleteObjectCommand({ Bucket: 'bkt', Key: 'a/k.txt' }));
      await expect(c.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'a/k.txt' }))).rejects.toMatchObject({ name: 'NoSuchKey' });

      // AbortMultipartUpload and ListMultipartUploads (added to s3rver by services.ts).
      const mpu = await c.send(new CreateMultipartUploadCommand({ Bucket: 'bkt', Key: 'part.bin' }));
      await c.send(new UploadPartCommand({ Bucket: 'bkt', Key: 'part.bin', UploadId: mpu.UploadId, PartNumber: 1, Body: Buffer.alloc(5 * 1024 * 1024) }));
      expect(s3.pendingUploads('bkt')).toEqual([{ key: 'part.bin', uploadId: mpu.UploadId }]);
      expect((await c.send(new ListMultipartUploadsCommand({ Bucket: 'bkt' }))).Uploads?.map((u) => u.UploadId)).toEqual([mpu.UploadId]);
      await c.send(new AbortMultipartUploadCommand({ Bucket: 'bkt', Key: 'part.bin', UploadId: mpu.UploadId }));
      expect(s3.pendingUploads('bkt')).toEqual([]);
      expect((await c.send(new ListMultipartUploadsCommand({ Bucket: 'bkt' }))).Uploads ?? []).toEqual([]);
      await expect(c.send(new AbortMultipartUploadCommand({ Bucket: 'bkt', Key: 'part.bin', UploadId: mpu.UploadId })))
        .rejects.toMatchObject({ name: 'NoSuchUpload' });

      // lib-storage aborts the multipart upload itself when the body fails.
      const broken = Readable.from((async function* () { yield Buffer.alloc(6 * 1024 * 1024); throw new Error('source broke'); })());
      await expect(new Upload({ client: c, params: { Bucket: 'bkt', Key: 'broken.bin', Body: broken }, partSize: 5 * 1024 * 1024 }).done())
        .rejects.toThrow('source broke');
      expect(await eventually(() => s3.pendingUploads('bkt').length === 0, 5_000)).toBe(true);

      // With the SDK's default checksum settings a stream body is sent aws-chunked with a trailing CRC32:
      // decoded and checked as S3 does, so the bytes stored are the bytes sent, for a PUT and a multipart upload.
      const dflt = new S3Client({ region: s3.region, endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
      await dflt.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'x', Body: Readable.from([Buffer.from('abc')]), ContentLength: 3 }));
      expect(await (await dflt.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'x' }))).Body!.transformToString()).toBe('abc');
      await new Upload({ client: dflt, params: { Bucket: 'bkt', Key: 'big2.bin', Body: Readable.from([big]) }, partSize: 5 * 1024 * 1024, queueSize: 2 }).done();
      const got2 = Buffer.from(await (await dflt.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'big2.bin' }))).Body!.transformToByteArray());
      expect(got2.equals(big)).toBe(true);
      dflt.destroy();
    } finally {
      c.destroy();
      await s3.destroy();
    }
    await s3.destroy(); // idempotent
    expect(await listening(s3.port)).toBe(false);
    expect(existsSync(s3.directory)).toBe(false);
  });

  it('s3rver: dies mid-upload, restarts on the same port with its objects', { timeout: T }, async () => {
    const s3 = await startS3({ buckets: ['bkt'] });
    const { S3Client, PutObjectCommand, GetObjectCommand } = await import('@aws-sdk/client-s3');
    const { Upload } = await import('@aws-sdk/lib-storage');
    const c = new S3Client({ ...s3.clientConfig, maxAttempts: 1 });
    try {
      await c.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'kept', Body: 'still here' }));
      // A slow 15 MiB stream: the server is stopped once the first part is in flight.
      const body = Readable.from((async function* () {
        for (let i = 0; i < 15; i++) { yield Buffer.alloc(1024 * 1024, i); await new Promise((r) => setTimeout(r, 30)); }
      })());
      const up = new Upload({ client: c, params: { Bucket: 'bkt', Key: 'doomed.bin', Body: body }, partSize: 5 * 1024 * 1024, queueSize: 1 });
      const done = up.done();
      expect(await eventually(() => s3.pendingUploads('bkt').length > 0, 10_000)).toBe(true);
      await s3.stop();
      await s3.stop(); // idempotent
      expect(s3.running).toBe(false);
      await expect(done).rejects.toThrow();
      expect(await listening(s3.port)).toBe(false);

      await s3.restart();
      expect(s3.running).toBe(true);
      expect(await (await c.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'kept' }))).Body!.transformToString()).toBe('still here');
      await expect(c.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'doomed.bin' }))).rejects.toMatchObject({ name: 'NoSuchKey' });
    } finally {
      c.destroy();
      await s3.destroy();
    }
  });

  it('Azurite: container, uploadStream, list, download; kill and restart', { timeout: T }, async () => {
    const az = await startAzurite();
    try {
      const { BlobServiceClient } = await import('@azure/storage-blob');
      const svc = BlobServiceClient.fromConnectionString(az.connectionString);
      const cc = svc.getContainerClient('ctr');
      await cc.create();
      const data = Buffer.alloc(3 * 1024 * 1024 + 5, 'x');
      await cc.getBlockBlobClient('dir/x.bin').uploadStream(Readable.from([data]), 1024 * 1024, 2);
      const names: string[] = [];
      for await (const b of cc.listBlobsFlat({ prefix: 'dir/' })) names.push(`${b.name}:${b.properties.contentLength}`);
      expect(names).toEqual([`dir/x.bin:${data.length}`]);
      expect((await cc.getBlockBlobClient('dir/x.bin').downloadToBuffer()).equals(data)).toBe(true);

      await az.kill('SIGTERM'); // SIGKILL would lose the last ~5 s of metadata (LokiJS autosave)
      expect(az.running).toBe(false);
      expect(await listening(az.port)).toBe(false);
      await az.restart();
      expect((await cc.getBlockBlobClient('dir/x.bin').downloadToBuffer()).length).toBe(data.length);
    } finally { await az.stop(); }
    await az.stop(); // idempotent
    expect(await listening(az.port)).toBe(false);
    expect(existsSync(az.location)).toBe(false);
  });

  it('services are cleaned up when the test process is SIGKILLed', { timeout: T }, async () => {
    // Run services.ts (transpiled) in a child that starts all three and is then killed.
    const ts = (await import('typescript')).default;
    const here = dirname(fileURLToPath(import.meta.url));
    const js = ts.transpileModule(readFileSync(join(here, 'services.ts'), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    const mod = join(here, `.services-crash-${process.pid}.mjs`);
    writeFileSync(mod, js);
    try {
      const child = spawn(process.execPath, ['--input-type=module', '-e', `
        const s = await import(${JSON.stringify(mod)});
        const [pg, s3, az] = await Promise.all([s.startPostgres(), s.startS3(), s.startAzurite()]);
        console.log(JSON.stringify({ ports: [pg.port, s3.port, az.port], dirs: [pg.dataDir, s3.directory, az.location] }));
        setInterval(() => {}, 1000);
      `], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { err += d; });
      expect(await eventually(() => out.includes('\n') || child.exitCode !== null, 45_000), err).toBe(true);
      const { ports, dirs } = JSON.parse(out) as { ports: number[]; dirs: string[] };
      for (const p of ports) expect(await listening(p)).toBe(true);
      child.kill('SIGKILL');
      for (const p of ports) expect(await eventually(async () => !(await listening(p)), 15_000), `port ${p} freed`).toBe(true);
      for (const d of dirs) expect(await eventually(() => !existsSync(d), 15_000), `${d} removed`).toBe(true);
    } finally {
      rmSync(mod, { force: true });
    }
  });
});
