/**
 * An independent reading of generated rows, for expected values: the tests
 * compare the CLI's SQL against this plain JS, never against itself.
 */
export type TruthRow = Record<string, any> & { __ts_ms: number };

export function derivedStatusCode(r: TruthRow): number | null {
  if (r.status === 'success') return 200;
  if (r.status !== 'error' && r.status !== 'cancelled') return null;
  const fallback = r.status === 'cancelled' ? 499 : 500;
  try {
    const e = JSON.parse(r.error_details);
    const c = e?.status_code;
    if (typeof c === 'number' && c >= 100 && c <= 599) return Math.trunc(c);
  } catch { /* malformed: the fallback */ }
  return fallback;
}

export function percentileCont(values: number[], p: number): number | null {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const pos = p * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

const bool = (v: unknown) => v === 1 || v === true;
/** Bifrost's GetStats: completed = success + error + cancelled. */
export const isCompleted = (r: TruthRow) => r.status === 'success' || r.status === 'error' || r.status === 'cancelled';

export function bifrostStats(rows: TruthRow[]) {
  const done = rows.filter(isCompleted);
  const succ = done.filter((r) => r.status === 'success').length;
  const err = done.filter((r) => r.status === 'error').length;
  const canc = done.filter((r) => r.status === 'cancelled').length;
  const lat = done.map((r) => Number(r.latency));
  return {
    total_requests: rows.length,
    success_rate: done.length ? (100 * succ) / done.length : 0,
    average_latency: done.length ? lat.reduce((a, b) => a + b, 0) / done.length : 0,
    total_tokens: done.reduce((a, r) => a + Number(r.total_tokens ?? 0), 0),
    total_cost: done.reduce((a, r) => a + Number(r.cost ?? 0), 0),
    error_rate: done.length ? (100 * err) / done.length : 0,
    cancelled_rate: done.length ? (100 * canc) / done.length : 0,
    p95_latency: percentileCont(lat, 0.95),
  };
}

export function metadataOf(r: TruthRow): Record<string, unknown> | null {
  try {
    const m = JSON.parse(r.metadata);
    return m && typeof m === 'object' && !Array.isArray(m) ? m : null;
  } catch {
    return null;
  }
}

export { bool };
