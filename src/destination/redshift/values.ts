import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { CliError, ExitCode } from '../../errors.js';
import { windowValues, type TableColumn, type TableLayout, type Window } from '../warehouse/layout.js';
import { quoteIdent, type Query } from '../warehouse/pg-wire.js';

/** Bind parameters per statement stay below Redshift's 32767. */
const MAX_PARAMS = 32_766;
/** And a batch's values stay well below Redshift's 16 MB statement limit. */
const MAX_BATCH_BYTES = 8 << 20;

/** Text cannot hold U+0000 (PostgreSQL refuses it): it becomes U+FFFD. JSON text keeps its `\u0000` escape. */
const noNul = (v: string) => (v.includes('\0') ? v.replace(/\0/g, '\uFFFD') : v);

/** Redshift's VARCHAR(65535) counts bytes. */
export const VARCHAR_MAX_BYTES = 65535;
export const TRUNCATION_MARKER = '…[truncated]';
const MARKER_BYTES = Buffer.byteLength(TRUNCATION_MARKER);

/** Text over 65535 UTF-8 bytes, cut on a character boundary and marked, so that it fits VARCHAR(65535). */
export function fitVarchar(v: string, onCut?: () => void): string {
  if (v.length * 3 <= VARCHAR_MAX_BYTES || Buffer.byteLength(v) <= VARCHAR_MAX_BYTES) return v;
  onCut?.();
  const b = Buffer.from(v, 'utf8');
  let end = VARCHAR_MAX_BYTES - MARKER_BYTES;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--; // back to the start of a character
  return b.subarray(0, end).toString('utf8') + TRUNCATION_MARKER;
}

/** What was changed so that values fit their columns: U+0000 characters replaced, values truncated. */
export interface FitCounts { nul: number; truncated: number }

/** The counts as a commit's manifest warnings (only what happened). */
export function fitWarnings(c: FitCounts): { warnings: Record<string, number> } | undefined {
  const w: Record<string, number> = {};
  if (c.nul) w.nul_replaced = c.nul;
  if (c.truncated) w.text_truncated = c.truncated;
  return Object.keys(w).length ? { warnings: w } : undefined;
}

/** How one record value is bound: JSON as its text (parsed back by JSON_PARSE into SUPER columns). */
function encoder(col: TableColumn, superCol: boolean, counts: FitCounts): (v: unknown) => unknown {
  const cut = () => { counts.truncated++; };
  const nul = (v: string) => { if (v.includes('\0')) { counts.nul += v.split('\0').length - 1; return noNul(v); } return v; };
  switch (col.type) {
    case 'json': return (v) => (v === null || v === undefined ? null : superCol ? JSON.stringify(v) : fitVarchar(JSON.stringify(v), cut));
    case 'string': return (v) => (v === null || v === undefined ? null : fitVarchar(typeof v === 'string' ? nul(v) : typeof v === 'object' ? JSON.stringify(v) : String(v), cut));
    case 'bool': return (v) => (v === null || v === undefined ? null : v === true || v === 'true' || v === 1 ? true : v === false || v === 'false' || v === 0 ? false : v);
    default: return (v) => (v === undefined ? null : v === null || typeof v !== 'object' ? v : JSON.stringify(v));
  }
}

/** Rows per INSERT: the configured batch, capped so the parameters stay under the limit. */
export function rowsPerInsert(batchRows: number, recordColumns: number): number {
  return Math.max(1, Math.min(batchRows, Math.floor((MAX_PARAMS - 2) / Math.max(1, recordColumns))));
}

/**
 * A multi-row parameterised INSERT. Aggregated rows share the window as $1
 * and $2; record values follow, row after row. `superColumns` (existing SUPER
 * columns) take their JSON text through JSON_PARSE.
 */
export function insertValuesSql(target: string, layout: TableLayout, rows: number, superColumns: ReadonlySet<string> = new Set()): string {
  const tagged = layout.columns.some((c) => c.window);
  let n = tagged ? 2 : 0;
  const tuples: string[] = [];
  for (let i = 0; i < rows; i++) {
    const vals = layout.columns.map((c) => {
      if (c.window) return c.window === 'start' ? '$1::timestamptz' : '$2::timestamptz';
      n++;
      return superColumns.has(c.name.toLowerCase()) ? `JSON_PARSE($${n})` : `$${n}`;
    });
    tuples.push(`(${vals.join(', ')})`);
  }
  return `INSERT INTO ${target} (${layout.columns.map((c) => quoteIdent(c.name)).join(', ')}) VALUES ${tuples.join(', ')}`;
}

export interface Replay {
  readonly target: string;
  readonly layout: TableLayout;
  readonly window: Window;
  readonly batchRows: number;
  /** Existing SUPER columns (lower-case names). */
  readonly superColumns: ReadonlySet<string>;
  /** Drop repeated request_ids (late rows: the first one is kept). */
  readonly dedupe: boolean;
  readonly where: string;
}

/** Replays spooled NDJSON parts as batched multi-row INSERTs; returns what was adapted to fit. */
export async function replayParts(q: Query, paths: readonly string[], o: Replay): Promise<FitCounts> {
  const rec = o.layout.recordColumns;
  const counts: FitCounts = { nul: 0, truncated: 0 };
  const enc = rec.map((col) => encoder(col, o.superColumns.has(col.name.toLowerCase()), counts));
  const perStmt = rowsPerInsert(o.batchRows, rec.length);
  const head: unknown[] = o.layout.columns.some((col) => col.window) ? windowValues(o.window) : [];
  let values: unknown[] = [...head];
  let rows = 0;
  let bytes = 0;
  let fullSql: string | null = null;
  const seen = o.dedupe ? new Set<string>() : null;
  const flush = async () => {
    if (!rows) return;
    const sql = rows === perStmt ? (fullSql ??= insertValuesSql(o.target, o.layout, rows, o.superColumns)) : insertValuesSql(o.target, o.layout, rows, o.superColumns);
    await q(sql, values);
    values = [...head];
    rows = 0;
    bytes = 0;
  };
  for (const path of paths) {
    const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      if (!line.trim()) continue;
      let r: Record<string, unknown>;
      try {
        r = JSON.parse(line) as Record<string, unknown>;
      } catch (err) {
        lines.close();
        throw new CliError(`load into redshift (${o.where})`, `line ${lineNo} of a staged part is not JSON (${(err as Error).message})`, { exitCode: ExitCode.dataErr, cause: err });
      }
      if (seen) {
        const id = r.request_id;
        if (typeof id === 'string') {
          if (seen.has(id)) continue;
          seen.add(id);
        }
      }
      for (let i = 0; i < rec.length; i++) values.push(enc[i]!(r[rec[i]!.name]));
      rows++;
      bytes += line.length;
      if (rows >= perStmt || bytes >= MAX_BATCH_BYTES) await flush();
    }
  }
  await flush();
  return counts;
}
