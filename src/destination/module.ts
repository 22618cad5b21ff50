import type { z } from 'zod';
import type { DestinationFactory } from './types.js';

/** A command-line flag of `export`: it sets one key of the destination's config. */
export interface DestinationFlag {
  /** As the command line spells it: `--bucket <name>`, `--port <port>`, `--force-path-style [bool]`. */
  readonly flag: string;
  /** The config key it sets (snake_case, as in the config file). */
  readonly key: string;
  readonly help: string;
  /** How the value is read: text (the default), a positive integer, or a boolean. */
  readonly value?: 'text' | 'int' | 'bool';
}

/** A question of the `init` wizard: its answer sets one key of the destination's config. */
export interface InitQuestion {
  readonly key: string;
  readonly message: string;
  readonly initial?: string;
  /** A local path: written absolute, so the config means the same place from any directory. */
  readonly path?: boolean;
}

/** Everything the CLI knows of a destination type. The registry (index.ts) lists one per type. */
export interface DestinationModule<T extends string = string> {
  readonly type: T;
  /** Object stores and files hold parts as objects; warehouses load them into tables; stdout streams. */
  readonly kind: 'object' | 'table' | 'stream';
  /** The config's zod schema (loads no SDK). */
  readonly schema: z.ZodType;
  /** The factory; its module (and SDK) is imported only now. */
  load(): Promise<DestinationFactory>;
  /** Its flags on `export`; a flag several types share is declared by each, with the same spelling. */
  readonly flags: readonly DestinationFlag[];
  /** Its `init` questions, and keys written as they are (env references for secrets); without them `init` does not offer it. */
  readonly init?: { readonly questions: readonly InitQuestion[]; readonly fixed?: Readonly<Record<string, unknown>> };
  /** Where it delivers, for the summary line (without it: the type, and the table when there is one). */
  location?(config: Record<string, unknown>): string;
}

/** Declares a destination module, keeping its type name as a literal type. */
export function defineDestination<T extends string>(m: DestinationModule<T>): DestinationModule<T> {
  return m;
}
