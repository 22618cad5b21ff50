const DAYS_IN = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Epoch ms of a stored `timestamp` text, in JS, equal to what SQLITE_TS_MS
 * computes in SQL, for the strict forms Bifrost writes:
 * `YYYY-MM-DD[ T]HH:MM:SS[.digits][Z|±HH:MM]`, with valid calendar fields.
 * The migrated `…T…​.5Z` form reads its unpadded digits as milliseconds (at
 * most 999); every other form truncates its fraction to milliseconds.
 * Anything else returns undefined, and the caller asks SQLite, so an odd text
 * gets exactly the instant it got before. (Reading the text and parsing it
 * here costs a fraction of evaluating the expression on every row.)
 */
export function storeMs(text: string): number | undefined {
  const n = text.length;
  if (n < 19) return undefined;
  if (text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) return undefined;
  const sep = text.charCodeAt(10);
  if (sep !== 32 && sep !== 84) return undefined;
  // A non-digit makes its field negative, and the range checks turn it away.
  const d = (i: number): number => {
    const c = text.charCodeAt(i) - 48;
    return c >= 0 && c <= 9 ? c : -1000;
  };
  const y = d(0) * 1000 + d(1) * 100 + d(2) * 10 + d(3);
  const mo = d(5) * 10 + d(6);
  const day = d(8) * 10 + d(9);
  const h = d(11) * 10 + d(12);
  const mi = d(14) * 10 + d(15);
  const s = d(17) * 10 + d(18);
  if (y < 1000 || mo < 1 || mo > 12 || day < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59) return undefined;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  if (day > (mo === 2 && leap ? 29 : DAYS_IN[mo - 1]!)) return undefined;
  let i = 19;
  // The fraction: its first three digits (truncated, right-padded) and, for the migrated form, all of them.
  let first3 = 0;
  let all = 0;
  let digits = 0;
  if (i < n && text.charCodeAt(i) === 46) {
    for (i++; i < n; i++) {
      const c = d(i);
      if (c < 0) break;
      if (digits < 3) first3 = first3 * 10 + c;
      all = all * 10 + c;
      digits++;
    }
    if (digits === 0 || digits > 15) return undefined;
    for (let k = digits; k < 3; k++) first3 *= 10;
  }
  let offsetMin = 0;
  let z = false;
  if (i < n) {
    const c = text.charCodeAt(i);
    if (c === 90 && i === n - 1) z = true;
    else if ((c === 43 || c === 45) && n - i === 6 && text.charCodeAt(i + 3) === 58) {
      const oh = d(i + 1) * 10 + d(i + 2);
      const om = d(i + 4) * 10 + d(i + 5);
      if (oh < 0 || oh > 14 || om < 0 || om > 59) return undefined;
      offsetMin = (c === 45 ? -1 : 1) * (oh * 60 + om);
    } else return undefined;
  }
  // Migrated `…T…Z` texts: the digits are milliseconds, unpadded.
  const ms = digits === 0 ? 0 : sep === 84 && z ? Math.min(999, all) : first3;
  return ((daysFromCivil(y, mo, day) * 24 + h) * 60 + mi - offsetMin) * 60_000 + s * 1000 + ms;
}
