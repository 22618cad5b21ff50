/** Renders a record value as text: JSON for objects, '' for null. */
export function formatCell(v: unknown, csv: boolean): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  if (typeof v === 'number' && !csv && !Number.isInteger(v)) return String(Math.round(v * 1e6) / 1e6);
  return String(v);
}
