import type Database from 'better-sqlite3';

/**
 * Running one statement of a fingerprint plan (fingerprint-sql.ts), on this
 * thread's connection or a second thread's (fingerprint-worker.ts, which
 * loads this module alone).
 */

export const MOD48 = 281474976710656;

/** One grouped statement of a fingerprint plan: each window's partial sums over its part of the rows. */
export interface FingerprintStatement {
  sql: string;
  params: unknown[];
  /** Version 1 calls a JS hash, which the connection must have. */
  v1: boolean;
}

/** A window's sums over one part of the rows: parts add up. */
export interface FingerprintPartial { b: number; n: number; c: number; k: number; h: number }

const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);

/**
 * Version 1's 48-bit hash of a row's values: FNV-1a style over each value,
 * type-tagged (NULL, number bits, text code units, blob bytes). Kept to
 * compare windows fingerprinted by an older release.
 */
function rowHashV1(...vals: unknown[]): number {
  let h = 0x811c9dc5;
  let g = 0x9e3779b9;
  for (let j = 0; j < vals.length; j++) {
    const v = vals[j];
    if (v === null || v === undefined) { h = Math.imul(h ^ 0x100, 0x01000193); }
    else if (typeof v === 'number') {
      F64[0] = v;
      h = Math.imul(h ^ U32[0]!, 0x01000193);
      h = Math.imul(h ^ U32[1]!, 0x01000193);
    } else if (typeof v === 'bigint') {
      F64[0] = Number(v);
      h = Math.imul(h ^ U32[0]! ^ 0x55, 0x01000193);
      h = Math.imul(h ^ U32[1]!, 0x01000193);
    } else if (typeof v === 'string') {
      for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v.charCodeAt(i), 0x01000193);
      h = Math.imul(h ^ (v.length + 0x200), 0x01000193);
    } else if (Buffer.isBuffer(v)) {
      for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v[i]!, 0x01000193);
      h = Math.imul(h ^ (v.length + 0x300), 0x01000193);
    }
    g = Math.imul(g ^ h ^ j, 0x5bd1e995);
  }
  return ((g >>> 16) & 0xffff) * 0x100000000 + (h >>> 0);
}

const withV1 = new WeakSet<Database.Database>();

/** One statement of a plan, on a connection to the DB (this thread's, or another's). */
export function runFingerprintStatement(db: Database.Database, st: FingerprintStatement): FingerprintPartial[] {
  if (st.v1 && !withV1.has(db)) { db.function('bl_row_hash', { deterministic: true, varargs: true }, rowHashV1); withV1.add(db); }
  return db.prepare(st.sql).all(...st.params) as FingerprintPartial[];
}

