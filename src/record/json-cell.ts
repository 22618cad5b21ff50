/** Counts what the record mapper met on the way, reported once at the end of a run. */
export interface RecordWarnings {
  malformedJson: number;
  /** First few (column, id) pairs, for --verbose. */
  samples: string[];
}

export function createWarnings(): RecordWarnings {
  return { malformedJson: 0, samples: [] };
}

/**
 * Parses a JSON cell defensively: '' and NULL are null, valid JSON is the
 * value, and malformed JSON is kept as its raw text and counted, never thrown.
 */
export function parseJsonCell(value: unknown, w: RecordWarnings, where: string): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') return value;
  if (value === '') return null;
  try {
    return JSON.parse(value);
  } catch {
    w.malformedJson++;
    if (w.samples.length < 5) w.samples.push(where);
    return value;
  }
}

/** Same as parseJsonCell but does not count (for cells we only peek into). */
export function tryJson(value: unknown): unknown {
  if (typeof value !== 'string') return value ?? null;
  if (value === '') return null;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

const SECRET_KEY = /^(authorization|proxy-authorization|x-api-key|api[-_]?key|apikey|x-goog-api-key|api-key|secret|client[-_]?secret|password|access[-_]?token|refresh[-_]?token|x-bf-vk|token)$/i;
const SECRET_TEXT = [
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g,
  /\bsk-[A-Za-z0-9_-]{6,}/g,
  /\b(AKIA|ASIA)[A-Z0-9]{12,}/g,
  /\bAIza[0-9A-Za-z_-]{20,}/g,
];

export const REDACTED = '[REDACTED]';

function scrubText(s: string): string {
  let out = s;
  for (const re of SECRET_TEXT) out = out.replace(re, (m) => (m.startsWith('Bearer') || m.startsWith('Basic') ? `${m.split(/\s+/)[0]} ${REDACTED}` : REDACTED));
  return out;
}

/** Removes API keys and Authorization values from a raw request/response payload. */
export function scrubSecrets(value: unknown): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (Array.isArray(value)) return value.map(scrubSecrets);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) && v !== null && v !== '' ? REDACTED : scrubSecrets(v);
    return out;
  }
  return value;
}
