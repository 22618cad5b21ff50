import { Option, type Command } from 'commander';
import { DESTINATION_MODULES, DESTINATION_TYPES } from '../destination/index.js';
import type { DestinationFlag } from '../destination/module.js';
import { parseBool, parsePositiveInt } from './options.js';

interface SharedFlag {
  readonly flag: DestinationFlag;
  /** The option's attribute on the parsed options (`--api-endpoint` → apiEndpoint). */
  readonly attribute: string;
  /** Help per type; types with the same help are listed together. */
  readonly helps: Array<{ type: string; help: string }>;
}

/** Every destination's flags, once each: a flag several types declare is one option. */
function sharedFlags(): SharedFlag[] {
  const byName = new Map<string, SharedFlag>();
  for (const m of DESTINATION_MODULES) {
    for (const f of m.flags) {
      const attribute = new Option(f.flag).attributeName();
      const seen = byName.get(attribute);
      if (!seen) { byName.set(attribute, { flag: f, attribute, helps: [{ type: m.type, help: f.help }] }); continue; }
      if (seen.flag.flag !== f.flag || seen.flag.key !== f.key || (seen.flag.value ?? 'text') !== (f.value ?? 'text')) {
        throw new Error(`destination ${m.type}: ${f.flag} is declared differently by ${seen.helps[0]!.type}`);
      }
      seen.helps.push({ type: m.type, help: f.help });
    }
  }
  return [...byName.values()];
}

function helpOf(s: SharedFlag): string {
  const groups = new Map<string, string[]>();
  for (const { type, help } of s.helps) groups.set(help, [...(groups.get(help) ?? []), type]);
  return [...groups].map(([help, types]) => `${types.join('/')}: ${help}`).join('; ');
}

/** Adds `--dest`'s list of types and every destination's flags to `export`. */
export function addDestinationOptions(cmd: Command): void {
  const dest = cmd.options.find((o) => o.long === '--dest');
  if (dest) dest.description = DESTINATION_TYPES.join(', ');
  for (const s of sharedFlags()) {
    const o = new Option(s.flag.flag, helpOf(s));
    if (s.flag.value === 'int') o.argParser(parsePositiveInt);
    else if (s.flag.value === 'bool') o.argParser(parseBool);
    cmd.addOption(o);
  }
}

/** The destination config the flags given set, in the config's words. */
export function destinationConfigFromFlags(opts: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of sharedFlags()) if (opts[s.attribute] !== undefined) out[s.flag.key] = opts[s.attribute];
  return out;
}
