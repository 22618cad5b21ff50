import { formatCell } from './format-cell.js';
import { humanBytes } from '../util/format.js';

/** A column's unit, from its name: money, percent, milliseconds, bytes, or none. */
function unitOf(name: string): 'usd' | 'pct' | 'ms' | 'bytes' | undefined {
  if (/cost|usd/i.test(name)) return 'usd';
  if (/_rate$|percent|pct/i.test(name)) return 'pct';
  if (/latency|_ms$|duration/i.test(name)) return 'ms';
  if (/^bytes$|_bytes$/i.test(name)) return 'bytes';
  return undefined;
}

/** `toLocaleString('en-US', …)` with one formatter per option set: building one per call costs ~60 µs. */
const formatters = new Map<string, Intl.NumberFormat>();
function fmt(v: number, min: number | undefined, max: number): string {
  const key = `${min}/${max}`;
  let f = formatters.get(key);
  if (!f) formatters.set(key, (f = new Intl.NumberFormat('en-US', { minimumFractionDigits: min, maximumFractionDigits: max })));
  return f.format(v);
}

const group = (n: number) => fmt(n, undefined, 20);

/** A number as a reader wants it: thousands grouped, sensible precision, a unit from the column name. */
export function formatNumber(name: string, v: number): string {
  switch (unitOf(name)) {
    case 'usd': {
      const a = Math.abs(v);
      const digits = a === 0 || a >= 1 ? 2 : Math.min(8, Math.max(4, 1 - Math.floor(Math.log10(a)) + 2));
      return `$${fmt(v, 2, digits)}`;
    }
    case 'pct': return `${fmt(v, undefined, 1)}%`;
    case 'ms': return `${fmt(v, undefined, Math.abs(v) >= 100 ? 0 : 1)} ms`;
    case 'bytes': return humanBytes(v);
    default: return Number.isInteger(v) ? group(v) : fmt(v, undefined, 3);
  }
}

/** Text cells that may wrap: prose and JSON, never ids, times or numbers. */
const unbreakable = (name: string) => /(^|_)id$|^id|time|timestamp|_at$|start|end|date|hour|week|month|status|kind|key/i.test(name);

export interface TableResult { text: string; dropped: string[] }

/** Terminal columns a code point takes: 0 for controls and combining marks, 2 for East Asian wide and emoji. */
function cpWidth(c: number): number {
  if (c < 0x20 || (c >= 0x7f && c < 0xa0) || (c >= 0x300 && c < 0x370) || c === 0x200b || (c >= 0xfe00 && c <= 0xfe0f)) return 0;
  if (c < 0x1100) return 1;
  if ((c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf && c !== 0x303f) || (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
    (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) || (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1faff) || (c >= 0x20000 && c <= 0x3fffd)) return 2;
  return 1;
}

export function displayWidth(s: string): number {
  let w = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x7f) { w += c < 0x20 ? 0 : 1; continue; }
    const cp = s.codePointAt(i)!;
    if (cp > 0xffff) i++;
    w += cpWidth(cp);
  }
  return w;
}

/** A cell's lines of at most `w` columns: its own line breaks, then hard breaks (nothing is cut). */
function wrap(text: string, w: number): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (displayWidth(line) <= w) { out.push(line); continue; }
    let cur = '';
    let cw = 0;
    for (const ch of line) {
      const x = cpWidth(ch.codePointAt(0)!);
      if (cw + x > w && cur) { out.push(cur); cur = ''; cw = 0; }
      cur += ch;
      cw += x;
    }
    out.push(cur);
  }
  return out;
}

interface Layout { keep: number[]; widths: number[]; numeric: boolean[]; dropped: string[] }

const MIN_WRAP = 16;

function cellsOf(names: readonly string[], rows: readonly Record<string, unknown>[], numeric: readonly boolean[]): string[][] {
  return rows.map((r) => names.map((n, i) => {
    const v = r[n];
    return numeric[i] && typeof v === 'number' ? formatNumber(n, v) : formatCell(v, false);
  }));
}

/**
 * The columns that fit `width` and their widths, from a sample of rows:
 * natural widths, long text columns wrapping (down to 16 characters), then
 * columns dropped from the right.
 */
function layout(names: readonly string[], rows: readonly Record<string, unknown>[], width: number): Layout & { cells: string[][] } {
  const numeric = names.map((n) => rows.length > 0 && rows.every((r) => r[n] === null || r[n] === undefined || typeof r[n] === 'number'));
  const cells = cellsOf(names, rows, numeric);
  const natural = names.map((n, i) => {
    let m = displayWidth(n);
    for (const c of cells) for (const l of c[i]!.split('\n')) m = Math.max(m, displayWidth(l));
    return m + 2;
  });
  const wrappable = names.map((n, i) => !numeric[i] && !unbreakable(n));
  const need = (idx: number[]) => idx.reduce((a, i) => a + (wrappable[i] ? Math.min(natural[i]!, MIN_WRAP + 2) : natural[i]!), 0) + idx.length + 1;
  let keep = names.map((_, i) => i);
  while (keep.length > 1 && need(keep) > width) keep = keep.slice(0, -1);
  const dropped = names.filter((_, i) => !keep.includes(i));
  // Widths: natural, then the wrappable columns shrink (widest first) to the budget.
  const widths = keep.map((i) => natural[i]!);
  const budget = width - (keep.length + 1);
  let total = widths.reduce((a, b) => a + b, 0);
  while (total > budget) {
    let best = -1;
    keep.forEach((c, j) => { if (wrappable[c] && widths[j]! > MIN_WRAP + 2 && (best < 0 || widths[j]! > widths[best]!)) best = j; });
    if (best < 0) break;
    widths[best]!--;
    total--;
  }
  return { keep, widths, numeric, dropped, cells };
}

const rule = (l: Layout, left: string, mid: string, right: string) => `${left}${l.widths.map((w) => '─'.repeat(w)).join(mid)}${right}\n`;

/** One row's lines: each cell padded by a space each side, numbers to the right. */
function renderRow(l: Layout, cells: readonly string[]): string {
  const parts = l.keep.map((c, j) => wrap(cells[c]!, l.widths[j]! - 2));
  const height = Math.max(1, ...parts.map((p) => p.length));
  let s = '';
  for (let k = 0; k < height; k++) {
    s += '│';
    for (let j = 0; j < parts.length; j++) {
      const t = parts[j]![k] ?? '';
      const pad = ' '.repeat(Math.max(0, l.widths[j]! - 2 - displayWidth(t)));
      s += l.numeric[l.keep[j]!] ? ` ${pad}${t} │` : ` ${t}${pad} │`;
    }
    s += '\n';
  }
  return s;
}

/**
 * A table printed page by page in bounded memory: the first page sets the
 * columns and their widths, which later pages keep (a longer value wraps).
 */
export function createTableWriter(names: readonly string[], width: number): { page(rows: readonly Record<string, unknown>[]): string; end(): string; readonly dropped: string[] } {
  let l: Layout | null = null;
  return {
    get dropped() { return l?.dropped ?? []; },
    page(rows) {
      if (!rows.length) return '';
      let s = '';
      let cells: string[][];
      if (!l) {
        const first = layout(names, rows, width);
        l = first;
        cells = first.cells;
        s = rule(l, '┌', '┬', '┐') + renderRow(l, names as string[]);
      } else cells = cellsOf(names, rows, l.numeric);
      for (const c of cells) s += renderRow(l, c);
      return s;
    },
    end() { return l ? rule(l, '└', '┴', '┘') : ''; },
  };
}

/**
 * A table that fits `width`: numbers right-aligned with units, nothing cut. Long
 * text columns wrap (down to 16 characters); when that is not enough, columns
 * are dropped from the right and named in `dropped`.
 */
export function fitTable(names: string[], rows: Record<string, unknown>[], width: number): TableResult {
  if (!rows.length) {
    const l = layout(names, rows, width);
    return { text: (rule(l, '┌', '┬', '┐') + renderRow(l, names) + rule(l, '└', '┴', '┘')).slice(0, -1), dropped: l.dropped };
  }
  const t = createTableWriter(names, width);
  const text = t.page(rows) + t.end();
  return { text: text.slice(0, -1), dropped: t.dropped };
}
