/** A growable array of doubles: per-group latencies without a boxed number each. */
export class DoubleList {
  private buf = new Float64Array(16);
  length = 0;

  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }

  /** The values in ascending order (sorts in place; the list is read once). */
  sorted(): Float64Array {
    return this.buf.subarray(0, this.length).sort();
  }
}

/**
 * PostgreSQL's `percentile_cont(p)` over ascending values: the value at rank p × (n − 1), interpolated
 * linearly between the closest ranks, in the same floating-point steps. Null for no values.
 */
export function percentileCont(sorted: Float64Array, p: number): number | null {
  const n = sorted.length;
  if (!n) return null;
  const pos = p * (n - 1);
  const lo = Math.floor(pos);
  const a = sorted[lo]!;
  const b = lo + 1 < n ? sorted[lo + 1]! : a;
  return a + (b - a) * (pos - lo);
}

