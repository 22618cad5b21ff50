import { DateTime } from '../util/luxon.js';
import { configError } from '../errors.js';
import { compactStamp } from '../util/time.js';

const PLACEHOLDER = /\{(year|month|day|hour|date|export)\}/g;

/** Checks a prefix template for unknown `{…}` placeholders. */
export function validatePrefix(template: string, at: string): void {
  const bad = template.match(/\{[^}]*\}/g)?.filter((p) => !/^\{(year|month|day|hour|date|export)\}$/.test(p));
  if (bad?.length) throw configError('render the prefix', `${at}: unknown placeholder ${bad[0]}`, 'placeholders: {year} {month} {day} {hour} {date} {export}');
}

/** Renders `{year}/{month}/{day}/…` from the window start in the export's zone. */
export function renderPrefix(template: string, exportName: string, windowStart: number, zone: string): string {
  const t = DateTime.fromMillis(windowStart, { zone });
  const v: Record<string, string> = {
    year: t.toFormat('yyyy'), month: t.toFormat('LL'), day: t.toFormat('dd'), hour: t.toFormat('HH'),
    date: t.toFormat('yyyy-LL-dd'), export: exportName,
  };
  return template.replace(PLACEHOLDER, (_, k: string) => v[k]!);
}

export interface KeyParts {
  prefix: string;
  exportName: string;
  start: number;
  end: number;
}

/** `{prefix}{export}_{windowStart}_{windowEnd}` — the stem every object of a window shares. */
export function windowStem(k: KeyParts): string {
  return `${k.prefix}${k.exportName}_${compactStamp(k.start)}_${compactStamp(k.end)}`;
}

/** A part's key; revisions after the first carry their number (`…_r0002_part-0001…`), so they never overwrite the current one. */
export function partKey(k: KeyParts, kind: 'part' | 'late', n: number, extension: string, gzip: boolean, revision = 1): string {
  return `${windowStem(k)}${revision > 1 ? `_r${String(revision).padStart(4, '0')}` : ''}_${kind}-${String(n).padStart(4, '0')}.${extension}${gzip ? '.gz' : ''}`;
}

export function manifestKey(k: KeyParts): string {
  return `${windowStem(k)}.manifest.json`;
}
