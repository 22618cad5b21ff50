/**
 * Helpers of the mcp_tool_logs tests: the raw rows as the store holds them
 * (plain SQL, for independent expected values), equal aggregates, and the
 * NDJSON objects under an S3 prefix.
 */
import { expect } from 'vitest';
import Database from 'better-sqlite3';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { ndjson } from './cli.js';
import type { TruthRow } from './truth.js';

/** Every row of a SQLite store's mcp_tool_logs, with `__ts_ms` from its timestamp text. */
export function mcpRows(sqlitePath: string): TruthRow[] {
  const db = new Database(sqlitePath, { readonly: true });
  try {
    return (db.prepare('SELECT * FROM mcp_tool_logs').all() as Array<Record<string, any>>).map((r) => ({ ...r, __ts_ms: Date.parse(String(r.timestamp).replace(' ', 'T')) }));
  } finally { db.close(); }
}

/** Aggregate rows equal, in order: numbers to 6 decimals, the rest exactly. */
export function expectSameGroups(want: Record<string, unknown>[], got: Record<string, unknown>[], label: string): void {
  expect(got.length, label).toBe(want.length);
  got.forEach((row, i) => {
    for (const [k, v] of Object.entries(want[i]!)) {
      if (typeof v === 'number') expect(row[k] as number, `${label} ${k}`).toBeCloseTo(v, 6);
      else expect(row[k], `${label} ${k}`).toEqual(v);
    }
  });
}

/** The records of every gzipped NDJSON object under a prefix. */
export async function s3Ndjson(config: S3ClientConfig, bucket: string, prefix: string): Promise<Record<string, any>[]> {
  const c = new S3Client(config);
  const out: Record<string, any>[] = [];
  try {
    const list = await c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    for (const o of list.Contents ?? []) {
      if (!o.Key!.endsWith('.jsonl.gz')) continue;
      const g = await c.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
      out.push(...ndjson(gunzipSync(Buffer.from(await g.Body!.transformToByteArray())).toString('utf8')));
    }
  } finally { c.destroy(); }
  return out;
}
