import Table from 'cli-table3';
import { formatCell } from './format-cell.js';

/** A column's unit, from its name: money, percent, milliseconds, bytes, or none. */
function unitOf(name: string): 'usd' | 'pct' | 'ms' | 'bytes' | undefined {
  if (/cost|usd/i.test(name)) return 'usd';
  if (/_rate$|percent|pct/i.test(name)) return 'pct';
  if (/latency|_ms$|duration/i.test(name)) return 'ms';
  if (/^bytes$|_bytes$/i.test(name)) return 'bytes';
  return undefined;
}

const group = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 20 });

/** A number as a reader wants it: thousands grouped, sensible precision, a unit from the column name. */
export function formatNumber(name: string, v: number): string {
  switch (unitOf(name)) {
    case 'usd': {
      const a = Math.abs(v);
      const digits = a === 0 || a >= 1 ? 2 : Math.min(8, Math.max(4, 1 - Math.floor(Math.log10(a)) + 2));
      return `$${v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: digits })}`;
    }
    case 'pct': return `${v.toLocaleString('en-US', { maximumFractionDigits: 1 })}%`;
    case 'ms': return `${v.toLocaleString('en-US', { maximumFractionDigits: Math.abs(v) >= 100 ? 0 : 1 })} ms`;
    case 'bytes': {
      const u = ['B', 'KB', 'MB', 'GB', 'TB'];
      let x = v;
      let i = 0;
      while (Math.abs(x) >= 1024 && i < u.length - 1) { x /= 1024; i++; }
      return i === 0 ? `${v} B` : `${x.toFixed(1)} ${u[i]}`;
    }
    default: return Number.isInteger(v) ? group(v) : v.toLocaleString('en-US', { maximumFractionDigits: 3 });
  }
}

/** Text cells that may wrap: prose and JSON, never ids, times or numbers. */
const unbreakable = (name: string) => /(^|_)id$|^id|time|timestamp|_at$|start|end|date|hour|week|month|status|kind|key/i.test(name);

const NO_ROW_RULES = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };

export interface TableResult { text: string; dropped: string[] }

/**
 * A table that fits `width`: numbers right-aligned with units, nothing cut. Long
 * text columns wrap (down to 16 characters); when that is not enough, columns
 * are dropped from the right and named in `dropped`.
 */
export function fitTable(names: string[], rows: Record<string, unknown>[], width: number): TableResult {
  const numeric = names.map((n) => rows.length > 0 && rows.every((r) => r[n] === null || r[n] === undefined || typeof r[n] === 'number'));
  const cells = rows.map((r) => names.map((n, i) => {
    const v = r[n];
    if (numeric[i] && typeof v === 'number') return formatNumber(n, v);
    return formatCell(v, false);
  }));
  const natural = names.map((n, i) => Math.max(n.length, ...cells.map((c) => c[i]!.length)) + 2);
  const wrappable = names.map((n, i) => !numeric[i] && !unbreakable(n));
  const MIN_WRAP = 16;
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
  const t = new Table({
    head: keep.map((i) => names[i]!), colWidths: widths, wordWrap: true, wrapOnWordBoundary: false,
    colAligns: keep.map((i) => (numeric[i] ? 'right' : 'left')), chars: NO_ROW_RULES, style: { head: [], border: [] },
  });
  for (const c of cells) t.push(keep.map((i) => c[i]!));
  return { text: t.toString(), dropped };
}
