import { scaleBand, scaleLinear } from 'd3-scale';
import { line } from 'd3-shape';
import type { ReportData } from './compute.js';

/** Escapes a value for HTML text and attributes. */
export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const num = (v: unknown): number | null => (v === null || v === undefined || v === '' || Number.isNaN(Number(v)) ? null : Number(v));
const fmtInt = (v: unknown) => (num(v) === null ? '–' : Math.round(num(v)!).toLocaleString('en-US'));
const fmtCost = (v: unknown) => (num(v) === null ? '–' : `$${num(v)!.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 4 })}`);
const fmtMs = (v: unknown) => (num(v) === null ? '–' : `${Math.round(num(v)!).toLocaleString('en-US')} ms`);
const fmtPct = (v: unknown) => (num(v) === null ? "–" : `${num(v)!.toFixed(2)}%`); // stats rates are percentages

function change(cur: unknown, prev: unknown): string {
  const c = num(cur), p = num(prev);
  if (c === null || p === null) return '<span class="chg">no previous period</span>';
  if (p === 0) return `<span class="chg">previous: ${c === 0 ? 'same (0)' : '0'}</span>`;
  const d = (c - p) / Math.abs(p);
  return `<span class="chg ${d >= 0 ? 'up' : 'down'}">${d >= 0 ? '▲' : '▼'} ${(Math.abs(d) * 100).toFixed(1)}% vs previous</span>`;
}

const groupLabel = (v: unknown) => (v === null || v === undefined ? '(none)' : v === '' ? '(empty)' : String(v));

const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
const W = 640, H = 200, M = { top: 12, right: 12, bottom: 28, left: 56 };

/** A line chart of one or more series over the buckets; scales, ticks and paths come from d3. */
function lineChart(id: string, title: string, labels: string[], series: { name: string; values: (number | null)[]; cls: string }[], fmt: (v: number) => string): string {
  const x = scaleBand<string>().domain(labels).range([M.left, W - M.right]).padding(0.1);
  const max = Math.max(0, ...series.flatMap((s) => s.values.map((v) => v ?? 0)));
  const y = scaleLinear().domain([0, max || 1]).nice().range([H - M.bottom, M.top]);
  const cx = (l: string) => (x(l) ?? 0) + x.bandwidth() / 2;
  const paths = series.map((s) => {
    const pts = labels.map((l, i) => [cx(l), s.values[i]] as [number, number | null]);
    const d = line<[number, number | null]>().defined((p) => p[1] !== null).x((p) => p[0]).y((p) => y(p[1]!))(pts) ?? '';
    return `<path class="${s.cls}" d="${d}" fill="none" stroke-width="2"/>`;
  });
  const yTicks = y.ticks(4).map((t) => `<g><line x1="${M.left}" x2="${W - M.right}" y1="${y(t)}" y2="${y(t)}" class="grid"/><text x="${M.left - 4}" y="${y(t) + 4}" text-anchor="end">${esc(fmt(t))}</text></g>`);
  const every = Math.max(1, Math.ceil(labels.length / 8));
  const xTicks = labels.filter((_, i) => i % every === 0).map((l) => `<text x="${cx(l)}" y="${H - 8}" text-anchor="middle">${esc(l.length > 10 ? l.slice(5) : l)}</text>`);
  const legend = series.map((s, i) => `<span class="lg ${s.cls}-lg">${esc(s.name)}</span>${i < series.length - 1 ? ' ' : ''}`).join('');
  return `<figure class="chart" id="${esc(id)}"><figcaption>${esc(title)} ${legend}</figcaption><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}" preserveAspectRatio="xMidYMid meet">${yTicks.join('')}${xTicks.join('')}${paths.join('')}</svg></figure>`;
}

/** A horizontal bar chart of the top groups by cost. */
function barChart(id: string, title: string, items: { label: string; value: number }[]): string {
  const h = Math.max(60, items.length * 26 + 20);
  const y = scaleBand<string>().domain(items.map((_, i) => String(i))).range([8, h - 8]).padding(0.2);
  const x = scaleLinear().domain([0, Math.max(...items.map((i) => i.value), 0) || 1]).range([0, W - 240]);
  const bars = items.map((it, i) => {
    const yy = y(String(i)) ?? 0;
    return `<g><text x="150" y="${yy + y.bandwidth() / 2 + 4}" text-anchor="end">${esc(it.label.length > 22 ? `${it.label.slice(0, 21)}…` : it.label)}</text><rect class="bar" x="156" y="${yy}" width="${Math.max(1, x(it.value))}" height="${y.bandwidth()}"/><text x="${160 + x(it.value)}" y="${yy + y.bandwidth() / 2 + 4}">${esc(fmtCost(it.value))}</text></g>`;
  });
  return `<figure class="chart" id="${esc(id)}"><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${h}" role="img" aria-label="${esc(title)}">${bars.join('')}</svg></figure>`;
}

const CSS = `
:root{--fg:#1b1f24;--mut:#5b6470;--line:#d8dde3;--a:#2563eb;--b:#d97706;--c:#059669;--e:#dc2626}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0 auto;max-width:1100px;padding:16px}
h1{font-size:1.4em;margin:0 0 4px}h2{font-size:1.1em;margin:24px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
.sub{color:var(--mut);margin:0 0 12px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 10px}.card .k{color:var(--mut);font-size:.85em}.card .v{font-size:1.35em;font-weight:600}
.chg{display:block;font-size:.8em;color:var(--mut)}.chg.up{color:#0b6b3a}.chg.down{color:#9a3412}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px}
figure.chart{margin:0;}
#chart-groups{max-width:680px;margin-bottom:12px}
figure.chart{border:1px solid var(--line);border-radius:6px;padding:6px;break-inside:avoid}
figcaption{font-weight:600;font-size:.9em;margin:0 0 4px}svg{width:100%;height:auto;display:block}
svg text{font-size:11px;fill:var(--mut)}.grid{stroke:var(--line);stroke-width:1}
.s-a{stroke:var(--a)}.s-b{stroke:var(--b)}.s-c{stroke:var(--c)}.s-e{stroke:var(--e)}.bar{fill:var(--a)}
.lg{font-weight:400;font-size:.85em;margin-left:8px}.lg::before{content:"";display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle;background:var(--a)}
.s-b-lg::before{background:var(--b)}.s-c-lg::before{background:var(--c)}.s-e-lg::before{background:var(--e)}
.tw{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9em}th,td{padding:4px 6px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left;white-space:normal}th{color:var(--mut);font-weight:600}
footer{margin-top:24px;color:var(--mut);font-size:.85em;border-top:1px solid var(--line);padding-top:8px}footer code{word-break:break-all}
@media (max-width:480px){body{padding:8px}.card .v{font-size:1.15em}}
@media print{@page{size:A4;margin:12mm}body{max-width:none;padding:0;font-size:11px}.charts{grid-template-columns:1fr 1fr}
figure.chart,.card,tr{break-inside:avoid}h2{break-after:avoid}.tw{overflow:visible}}
`;

/** One self-contained HTML page: inline CSS and SVG, the data embedded as JSON, no external request. */
export function renderReportHtml(d: ReportData): string {
  const t = d.totals, p = d.previous_totals ?? {};
  const has = (m: string) => d.metrics.includes(m);
  const card = (k: string, key: string, fmt: (v: unknown) => string) =>
    `<div class="card" data-metric="${esc(key)}"><div class="k">${esc(k)}</div><div class="v" data-value="${esc(t[key] ?? '')}">${esc(fmt(t[key]))}</div>${d.previous_totals ? change(t[key], p[key]) : change(null, null)}</div>`;
  const cards = [
    card('Cost', 'total_cost', fmtCost), card('Requests', 'total_requests', fmtInt), card('Tokens', 'total_tokens', fmtInt),
    card('Avg latency', 'average_latency', fmtMs), card('p95 latency', 'p95_latency', fmtMs),
    card('Success rate', 'success_rate', fmtPct), card('Error rate', 'error_rate', fmtPct),
  ];
  if (has('cancelled_count')) cards.push(card('Cancelled', 'cancelled_count', fmtInt));
  if (has('cancelled_rate')) cards.push(card('Cancelled rate', 'cancelled_rate', fmtPct));

  const labels = d.series.map((r) => String(r[d.bucket]));
  const col = (m: string) => d.series.map((r) => num(r[m]));
  const per = d.bucket === 'hour' ? 'hour' : 'day';
  const charts = [
    lineChart('chart-requests', `Requests per ${per}`, labels, [{ name: 'requests', values: col('total_requests'), cls: 's-a' }], (v) => compact.format(v)),
    lineChart('chart-cost', `Cost per ${per}`, labels, [{ name: 'cost', values: col('total_cost'), cls: 's-b' }], (v) => fmtCost(v)),
    lineChart('chart-tokens', `Tokens per ${per}`, labels, [{ name: 'tokens', values: col('total_tokens'), cls: 's-c' }], (v) => compact.format(v)),
    lineChart('chart-latency', 'Latency', labels, [{ name: 'p50', values: col('p50_latency'), cls: 's-a' }, { name: 'p95', values: col('p95_latency'), cls: 's-b' }], (v) => `${compact.format(v)} ms`),
    lineChart('chart-errors', 'Error rate', labels, [{ name: 'error rate', values: col('error_rate'), cls: 's-e' },
      ...(has('cancelled_rate') ? [{ name: 'cancelled rate', values: col('cancelled_rate'), cls: 's-c' }] : [])], (v) => fmtPct(v)),
  ];
  const totalCost = num(t.total_cost) ?? 0;
  const g = d.group_by;
  const head = ['', 'Cost', 'Share', 'Requests', 'Tokens', 'Avg latency', 'p95 latency', 'Error rate', ...(has('cancelled_count') ? ['Cancelled'] : [])];
  const rows = d.groups.map((r) => {
    const share = totalCost > 0 ? (num(r.total_cost) ?? 0) / totalCost : null;
    const cells = [fmtCost(r.total_cost), share === null ? '–' : `${(share * 100).toFixed(1)}%`, fmtInt(r.total_requests), fmtInt(r.total_tokens),
      fmtMs(r.average_latency), fmtMs(r.p95_latency), fmtPct(r.error_rate), ...(has('cancelled_count') ? [fmtInt(r.cancelled_count)] : [])];
    return `<tr data-group="${esc(r[g])}"><td>${r[g] === null || r[g] === undefined || r[g] === '' ? `<em>${esc(groupLabel(r[g]))}</em>` : esc(r[g])}</td>${cells.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`;
  });
  const top = d.groups.slice(0, 10).map((r) => ({ label: groupLabel(r[g]), value: num(r.total_cost) ?? 0 }));
  const period = `${d.period.start ?? 'the beginning'} – ${d.period.end ?? d.generated_at}`;
  const json = JSON.stringify(d).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  const filters = Object.entries(d.filters).filter(([, v]) => v !== undefined);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Bifrost usage report ${esc(period)}</title><style>${CSS}</style></head><body>
<header><h1>Bifrost usage report</h1><p class="sub">${esc(period)} (${esc(d.timezone)})${d.previous_period ? ` · compared with ${esc(d.previous_period.start)} – ${esc(d.previous_period.end)}` : ''}</p></header>
<section><h2>Headline</h2><div class="cards" id="totals">${cards.join('')}</div></section>
<section><h2>Over time</h2><div class="charts">${charts.join('')}</div></section>
<section><h2>By ${esc(g)}</h2>${top.length ? barChart('chart-groups', `Top ${top.length} by cost`, top) : ''}
<div class="tw"><table id="groups"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div></section>
<footer><div>Source: <code>${esc(d.source)}</code> · Time zone: ${esc(d.timezone)} · bifrost-logs ${esc(d.version)} · generated ${esc(d.generated_at)}</div>
<div>Filters: ${filters.length ? filters.map(([k, v]) => `<code>${esc(k)}=${esc(typeof v === 'string' ? v : JSON.stringify(v))}</code>`).join(' ') : 'none'}</div></footer>
<script type="application/json" id="report-data">${json}</script>
</body></html>
`;
}
