import { setTimeout as sleep } from 'node:timers/promises';
import { isTransient } from '../errors.js';

export interface RetryOptions {
  attempts?: number;
  baseMs?: number;
  maxMs?: number;
  signal?: AbortSignal;
  onRetry?(err: unknown, attempt: number, delayMs: number): void;
}

/** Seconds from a Retry-After header (delta or HTTP date), if the error carries one. */
export function retryAfterMs(err: unknown): number | undefined {
  const e = err as { $response?: { headers?: Record<string, string> }; response?: { headers?: Record<string, string> | { get?(k: string): string | null } }; headers?: Record<string, string> };
  const h = e?.$response?.headers ?? e?.response?.headers ?? e?.headers;
  let v: string | null | undefined;
  if (h && typeof (h as { get?: unknown }).get === 'function') v = (h as { get(k: string): string | null }).get('retry-after');
  else if (h) v = (h as Record<string, string>)['retry-after'] ?? (h as Record<string, string>)['Retry-After'];
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return secs * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * Retries transient failures (network errors, 429, 5xx) with exponential
 * backoff and full jitter, honouring Retry-After; other errors fail at once.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const attempts = o.attempts ?? 5;
  const base = o.baseMs ?? 500;
  const max = o.maxMs ?? 30_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !isTransient(err) || o.signal?.aborted) throw err;
      const delay = Math.min(max, retryAfterMs(err) ?? Math.random() * base * 2 ** (attempt - 1));
      o.onRetry?.(err, attempt, delay);
      await sleep(delay, undefined, { signal: o.signal });
    }
  }
}
