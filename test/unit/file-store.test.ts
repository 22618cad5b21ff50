import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileDestination } from '../../src/destination/file/index.js';
import type { PartInfo } from '../../src/destination/types.js';

const part = (key: string): PartInfo => ({ key, kind: 'part', format: 'jsonl', contentType: 'application/x-ndjson', schema: [] });
const env = { log: { info() {}, warn() {}, verbose() {}, isVerbose: false, isQuiet: true }, tmpDir: tmpdir() };

describe('file destination atomicity', () => {
  it('a completed part appears under its final name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bl-fs-'));
    const d = await createFileDestination({ path: dir }, env);
    const up = await d.openPart(part('a/b/x.jsonl'));
    await up.write(Buffer.from('{"a":1}\n'));
    await up.finish();
    expect(readFileSync(join(dir, 'a/b/x.jsonl'), 'utf8')).toBe('{"a":1}\n');
    expect(readdirSync(join(dir, 'a/b'))).toEqual(['x.jsonl']);
  });
  it('an aborted part leaves neither the final name nor a temp file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bl-fs-'));
    const d = await createFileDestination({ path: dir }, env);
    const up = await d.openPart(part('x.jsonl'));
    await up.write(Buffer.alloc(3 << 20, 120));
    await up.abort();
    await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(dir)).toEqual([]);
  });
  it('a part that fails mid-write never overwrites the previous complete file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bl-fs-'));
    const d = await createFileDestination({ path: dir }, env);
    const ok = await d.openPart(part('x.jsonl'));
    await ok.write(Buffer.from('old\n'));
    await ok.finish();
    const bad = await d.openPart(part('x.jsonl'));
    await bad.write(Buffer.from('new partial'));
    await bad.abort();
    expect(readFileSync(join(dir, 'x.jsonl'), 'utf8')).toBe('old\n');
    expect(readdirSync(dir)).toEqual(['x.jsonl']);
  });
  it('check() leaves nothing behind and refuses an unwritable place', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bl-fs-'));
    await (await createFileDestination({ path: dir }, env)).check();
    expect(readdirSync(dir)).toEqual([]);
    // A path below a regular file cannot be created, even by root.
    const blocker = join(dir, 'blocker');
    writeFileSync(blocker, '');
    // A directory below a regular file cannot be created: 73 (it was 69, "unreachable", which was wrong).
    await expect((await createFileDestination({ path: join(blocker, 'out') }, env)).check()).rejects.toMatchObject({ exitCode: 73 });
  });
});
