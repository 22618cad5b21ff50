import type { FieldType } from '../../record/fields.js';
import { isoMs } from '../../util/time.js';

/**
 * What differs between warehouses, and nothing else: the statements built
 * over it (sql.ts) are the same on every one.
 */
export interface WarehouseDialect<Ref> {
  readonly name: 'bigquery' | 'snowflake' | 'redshift' | 'postgres';
  /** A column name as SQL (quoted, and cased as the warehouse stores it). */
  ident(name: string): string;
  /** A table as SQL. */
  table(ref: Ref): string;
  /** The column type of a field type in the target. */
  columnType(t: FieldType): string;
  /** How a timestamp parameter is written. */
  readonly params: ParamStyle;
  /** `expr AS alias` (BigQuery) or `expr alias`. */
  readonly aliasWithAs: boolean;
  /** New columns: one ALTER for all of them, and whether ADD COLUMN takes IF NOT EXISTS. */
  readonly addColumns: { readonly combined: boolean; readonly ifNotExists: boolean };
  /**
   * JSON text as a JSON value that never fails: parsed when it is JSON, kept
   * as a JSON string when it is not (a malformed cell is exported as its text).
   */
  jsonFromText(expr: string): string;
  /** How the catalog spells a name (lower-, upper- or as-is). */
  catalogName(name: string): string;
}

/**
 * `dollar`: `$1::timestamptz` (PostgreSQL wire; a name used twice is bound once);
 * `question`: `TO_TIMESTAMP_TZ(?)`, one bind per use (Snowflake);
 * `named`: `@window_start` (BigQuery, bound by the caller as TIMESTAMPs).
 */
export type ParamStyle = 'dollar' | 'question' | 'named';

export type WindowParam = 'window_start' | 'window_end';

/** The bind values of one statement, in the dialect's parameter style. */
export class Params {
  readonly values: unknown[] = [];
  private readonly slots = new Map<string, number>();
  constructor(readonly style: ParamStyle, first: unknown[] = []) {
    this.values.push(...first);
  }

  /** A timestamp parameter holding `ms`. */
  ts(name: WindowParam, ms: number): string {
    if (this.style === 'named') return `@${name}`;
    if (this.style === 'question') {
      this.values.push(isoMs(ms));
      return 'TO_TIMESTAMP_TZ(?)';
    }
    let n = this.slots.get(name);
    if (n === undefined) {
      this.values.push(isoMs(ms));
      n = this.values.length;
      this.slots.set(name, n);
    }
    return `$${n}::timestamptz`;
  }

  /** Any other value (dollar style only). */
  value(v: unknown, cast = ''): string {
    this.values.push(v);
    return `$${this.values.length}${cast}`;
  }
}

/** One statement and its binds. */
export interface Statement {
  readonly text: string;
  readonly values: unknown[];
}
