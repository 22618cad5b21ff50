import { createHash, createHmac } from 'node:crypto';
import { configError } from '../errors.js';
import { REDACTED } from '../record/json-cell.js';
import type { RecordSchema } from '../record/fields.js';
import type { RecordTransform } from './types.js';

export type AnonymizeMethod = 'hash' | 'sha256' | 'redact' | 'drop';

const text = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v));

/**
 * `hash` is keyed HMAC-SHA256 (hex) so ids stay joinable across runs and
 * destinations but cannot be reversed by guessing; `sha256` is the plain,
 * guessable digest, available only by name.
 */
export function createAnonymize(fields: readonly string[], method: AnonymizeMethod, key: string | undefined, at: string): RecordTransform {
  if (method === 'hash' && !key) {
    throw configError('set up anonymize', `${at}: method "hash" needs a key`, 'set BIFROST_LOGS_HASH_KEY, or key: "env.NAME" in the config, or pass --hash-key-env NAME');
  }
  let fn: (v: unknown) => unknown;
  switch (method) {
    case 'hash': fn = (v) => (v === null || v === undefined ? null : createHmac('sha256', key!).update(text(v), 'utf8').digest('hex')); break;
    case 'sha256': fn = (v) => (v === null || v === undefined ? null : createHash('sha256').update(text(v), 'utf8').digest('hex')); break;
    case 'redact': fn = (v) => (v === null || v === undefined ? null : REDACTED); break;
    case 'drop': fn = () => undefined; break;
  }
  return {
    description: { type: 'anonymize', fields: [...fields], method },
    schema(input: RecordSchema) {
      const names = new Set(input.map((f) => f.name));
      for (const f of fields) if (!names.has(f)) throw configError('set up anonymize', `${at}: field "${f}" is not in the exported record`, `fields: ${[...names].join(', ')}`);
      if (method === 'drop') return input.filter((f) => !fields.includes(f.name));
      return input.map((f) => (fields.includes(f.name) ? { name: f.name, type: 'string', nullable: true } : f));
    },
    apply(records) {
      for (const r of records) {
        for (const f of fields) {
          if (method === 'drop') delete r[f];
          else if (f in r) r[f] = fn(r[f]);
        }
      }
      return records;
    },
  };
}
