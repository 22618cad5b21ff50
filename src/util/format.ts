/** A byte count as people read it: `812 B`, `3.4 MB`. */
export function humanBytes(v: number): string {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let x = v;
  let i = 0;
  while (Math.abs(x) >= 1024 && i < u.length - 1) { x /= 1024; i++; }
  return i === 0 ? `${v} B` : `${x.toFixed(1)} ${u[i]}`;
}

/** `1 file`, `3 files`, with the count grouped (`48,503 rows`). */
export function count(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}
