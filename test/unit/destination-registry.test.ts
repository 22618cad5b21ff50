import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { DESTINATION_MODULES, DESTINATION_SCHEMAS, DESTINATION_TYPES, DESTINATIONS } from '../../src/destination/index.js';

/** The keys a destination's config schema accepts (every schema is a strict object). */
const keysOf = (schema: z.ZodType) => Object.keys((schema as unknown as { shape: Record<string, unknown> }).shape);

describe('the destination registry', () => {
  it('lists every type once, in the order help and init show them', () => {
    expect(DESTINATION_TYPES).toEqual(['file', 'stdout', 's3', 'gcs', 'azure_blob', 'bigquery', 'snowflake', 'redshift', 'postgres']);
    expect(Object.keys(DESTINATION_SCHEMAS)).toEqual(DESTINATION_TYPES);
    expect(Object.keys(DESTINATIONS)).toEqual(DESTINATION_TYPES);
  });

  it.each(DESTINATION_MODULES.map((m) => [m.type, m] as const))('%s: every flag and init question sets a key its schema accepts', (_type, m) => {
    const keys = keysOf(m.schema);
    for (const f of m.flags) expect(keys, f.flag).toContain(f.key);
    for (const q of m.init?.questions ?? []) expect(keys, q.key).toContain(q.key);
    for (const k of Object.keys(m.init?.fixed ?? {})) expect(keys, k).toContain(k);
  });

  it('the kinds: object stores and files, warehouses, stdout', () => {
    const of = (k: string) => DESTINATION_MODULES.filter((m) => m.kind === k).map((m) => m.type);
    expect(of('object')).toEqual(['file', 's3', 'gcs', 'azure_blob']);
    expect(of('table')).toEqual(['bigquery', 'snowflake', 'redshift', 'postgres']);
    expect(of('stream')).toEqual(['stdout']);
  });

  it('a flag several types share is spelled the same by each', () => {
    const seen = new Map<string, string>();
    for (const m of DESTINATION_MODULES) {
      for (const f of m.flags) {
        const long = f.flag.split(' ')[0]!;
        const spec = `${f.flag}|${f.key}|${f.value ?? 'text'}`;
        expect(seen.get(long) ?? spec, `${m.type} ${long}`).toBe(spec);
        seen.set(long, spec);
      }
    }
  });

  it('an init answer set, with the fixed keys, passes the schema', () => {
    for (const m of DESTINATION_MODULES.filter((x) => x.init)) {
      const config: Record<string, unknown> = { ...m.init!.fixed };
      for (const q of m.init!.questions) config[q.key] = q.initial ?? (q.key === 'table' ? 'request_logs' : 'x');
      const r = m.schema.safeParse(config);
      expect(r.success, `${m.type}: ${JSON.stringify(r.error?.issues)}`).toBe(true);
    }
  });
});
