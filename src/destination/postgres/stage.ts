import { Params } from '../warehouse/dialect.js';
import type { TableLayout, Window } from '../warehouse/layout.js';
import { qualified, quoteIdent, type TableRef } from '../warehouse/pg-wire.js';
import { insertFromStageSql } from '../warehouse/sql.js';
import { POSTGRES_DIALECT } from './dialect.js';

/**
 * The session stage: one jsonb document per NDJSON line, tagged with its
 * part's id, filled by COPY FROM STDIN.
 */
export const STAGE = 'pg_temp.bifrost_logs_stage';
export const CREATE_STAGE_SQL = `CREATE TEMP TABLE IF NOT EXISTS bifrost_logs_stage (part integer, doc jsonb)`;
/**
 * One NDJSON line is one CSV field: quote and delimiter are control bytes
 * JSON never holds unescaped, so backslashes and quotes pass through as they are.
 */
export const COPY_SQL = `COPY ${STAGE} (doc) FROM STDIN WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`;

const EMPTY = Buffer.alloc(0);
const NUL_ESCAPE = Buffer.from('\\u0000');

/**
 * jsonb (and text) cannot hold U+0000: its JSON escape `\u0000` becomes
 * `\ufffd`, the replacement character, so one stray NUL never fails a window.
 * Works on whole lines (a JSON text never holds a raw newline), so an escape
 * split across chunks is still seen; an escaped backslash before `u0000` is left alone.
 */
export function createNulScrubber(): { push(chunk: Buffer): Buffer; end(): Buffer; readonly replaced: number } {
  let carry: Buffer[] = [];
  let replaced = 0;
  const fix = (b: Buffer): Buffer => (b.indexOf(NUL_ESCAPE) < 0 ? b : Buffer.from(b.toString('utf8').replace(/(?<!\\)((?:\\\\)*)\\u0000/g, (_, pre: string) => { replaced++; return `${pre}\\ufffd`; }), 'utf8'));
  return {
    /** U+0000 characters replaced so far. */
    get replaced() { return replaced; },
    push(chunk) {
      const nl = chunk.lastIndexOf(0x0a);
      if (nl < 0) { carry.push(Buffer.from(chunk)); return EMPTY; }
      const head = carry.length ? Buffer.concat([...carry, chunk.subarray(0, nl + 1)]) : chunk.subarray(0, nl + 1);
      carry = nl + 1 < chunk.length ? [Buffer.from(chunk.subarray(nl + 1))] : [];
      return fix(head);
    },
    end() {
      const rest = Buffer.concat(carry);
      carry = [];
      return fix(rest);
    },
  };
}

/**
 * The INSERT … SELECT that moves staged documents into the table: each
 * document becomes a row of the table's own type (so every value is cast by
 * the column it lands in), aggregated rows get the window, late rows skip
 * request_ids already present, a re-delivered record replaces its older copy
 * (the unique index on request_id: the newest load wins).
 */
export function pgInsertSql(t: TableRef, layout: TableLayout, c: { late: boolean; window: Window }, partIds: number[]): { text: string; values: unknown[] } {
  const p = new Params('dollar');
  const from = `${STAGE} s CROSS JOIN LATERAL jsonb_populate_record(NULL::${qualified(t)}, s.doc) r`;
  const ins = insertFromStageSql(POSTGRES_DIALECT, {
    target: t, stage: STAGE, from, layout, window: c.window, late: false, params: p,
    value: (col) => `r.${quoteIdent(col.name)}`,
  });
  let text = ins.text;
  text += ` WHERE s.part = ANY(${p.value(partIds, '::integer[]')})`;
  if (layout.keyed) {
    const rid = quoteIdent('request_id');
    if (c.late) text += ` ON CONFLICT (${rid}) DO NOTHING`;
    else text += ` ON CONFLICT (${rid}) DO UPDATE SET ${layout.recordColumns.map((col) => `${quoteIdent(col.name)} = EXCLUDED.${quoteIdent(col.name)}`).join(', ')}`;
  }
  return { text, values: p.values };
}
