import { usageError } from '../errors.js';
import { suggest } from '../util/suggest.js';
import { ALL_FIELD_NAMES, GROUP_NAMES, selectFields, type FieldDef } from './fields.js';

/** Validates --include / --fields and returns the field list. */
export function resolveFields(o: { include?: readonly string[]; fields?: readonly string[] }): FieldDef[] {
  for (const g of o.include ?? []) {
    if (!GROUP_NAMES.includes(g)) {
      const s = suggest(g, GROUP_NAMES);
      throw usageError('parse --include', `unknown group "${g}"${s ? ` (did you mean "${s}"?)` : ''}`, `groups: ${GROUP_NAMES.join(', ')}`);
    }
  }
  for (const f of o.fields ?? []) {
    if (!ALL_FIELD_NAMES.includes(f)) {
      const s = suggest(f, ALL_FIELD_NAMES);
      throw usageError('parse --fields', `unknown field "${f}"${s ? ` (did you mean "${s}"?)` : ''}`, 'see "Export record" in the README for every field');
    }
  }
  return selectFields(o);
}
