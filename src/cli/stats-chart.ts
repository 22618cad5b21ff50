import asciichart from 'asciichart';

/** Compact terminal line charts of bucketed stats rows, one per metric (drawn by asciichart). */
export function renderStatsChart(rows: Record<string, unknown>[], bucket: string, metrics: string[], columns = 80): string {
  const labels = rows.map((r) => String(r[bucket] ?? ''));
  const out: string[] = [];
  const width = Math.max(10, Math.min(columns - 14, 120));
  for (const m of metrics) {
    const values = rows.map((r) => (r[m] === null || r[m] === undefined ? NaN : Number(r[m])));
    if (values.every((v) => Number.isNaN(v)) || values.length < 2) continue;
    // Stretch or sample to the terminal's width: each point repeated, or every n-th point.
    const step = values.length > width ? Math.ceil(values.length / width) : 1;
    const sampled = values.filter((_, i) => i % step === 0);
    const rep = Math.max(1, Math.floor(width / sampled.length));
    const series = sampled.flatMap((v) => Array<number>(rep).fill(v));
    out.push(`${m} per ${bucket} (${labels[0]} … ${labels[labels.length - 1]})`);
    out.push(asciichart.plot(series, { height: 6, format: (x: number) => compact(x).padStart(9) }));
    out.push('');
  }
  return out.join('\n');
}

function compact(x: number): string {
  if (Math.abs(x) >= 1e6) return new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 }).format(x);
  return x.toLocaleString('en-US', { maximumFractionDigits: Math.abs(x) < 10 ? 4 : 2 });
}
