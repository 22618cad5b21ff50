import type { FieldType, RecordSchema } from '../record/fields.js';
import type { RecordTransform, RunVars } from './types.js';

const VAR = /\{(export_name|run_id|window_start|window_end|exported_at)\}/g;

/**
 * Adds constant fields. Values were resolved from env references when the
 * job was built; `{run_id}`-style variables are filled per window.
 */
export function createEnrich(addFields: Record<string, string | number | boolean | null>, vars: RunVars): RecordTransform {
  const values: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(addFields)) values[k] = typeof v === 'string' ? v.replace(VAR, (_, n: keyof RunVars) => vars[n]) : v;
  const entries = Object.entries(values);
  const typeOf = (v: unknown): FieldType => (typeof v === 'number' ? (Number.isInteger(v) ? 'int64' : 'double') : typeof v === 'boolean' ? 'bool' : 'string');
  return {
    description: { type: 'enrich', add_fields: Object.keys(addFields) },
    schema(input: RecordSchema) {
      const out = input.filter((f) => !(f.name in values));
      return [...out, ...entries.map(([name, v]) => ({ name, type: typeOf(v), nullable: true }))];
    },
    apply(records) {
      for (const r of records) for (const [k, v] of entries) r[k] = v;
      return records;
    },
  };
}
