import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { SqliteSource } from '../../src/source/sqlite/sqlite-source.js';

/**
 * The rows still processing when an export begins, as the positions the
 * export leaves out: every one of them, sorted, and in shared memory, so the
 * encoding threads read the one copy instead of each receiving its own.
 */
let dir: string;
let path: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-proc-'));
  path = join(dir, 'logs.db');
  writeSqlite(path, { rows: 3000, seed: 5, schema: 'newer', start: '2026-09-30T00:00:00Z', days: 2 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('processingRows on SQLite', () => {
  it('lists every processing row, sorted, in one shared copy', async () => {
    // Bifrost's definition: status is `processing` until the request ends.
    const db = new Database(path, { readonly: true });
    const want = db.prepare(`SELECT rowid FROM logs WHERE status = 'processing' ORDER BY rowid`).pluck().all() as number[];
    db.close();
    expect(want.length).toBeGreaterThan(10);
    const source = SqliteSource.open(path, 'logs');
    try {
      const { positions } = await source.processingRows({ completedOnly: false });
      expect([...positions!]).toEqual(want);
      expect(positions!.buffer).toBeInstanceOf(SharedArrayBuffer);
      // What a thread receives is the same memory, not a copy.
      const received = structuredClone(positions!);
      received[0] = -1;
      expect(positions![0]).toBe(-1);
    } finally {
      await source.close();
    }
  });
});
