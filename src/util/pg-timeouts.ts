import type pg from 'pg';

/** The default deadline for a network request (connect, or an answer to a statement beyond its own limit). */
export const DEFAULT_REQUEST_TIMEOUT_SECS = 30;

/**
 * Client-side deadlines for a PostgreSQL-protocol connection, so a dead or
 * silent peer never hangs a run: the connect (and login) must finish within
 * `request_timeout_secs`; TCP keepalive probes an idle socket; and every
 * statement gets a client timeout of its longest server-side statement_timeout
 * plus `request_timeout_secs` (the server's own limit normally ends it first).
 */
export function pgDeadlines(requestTimeoutSecs: number | undefined, longestStatementMs: number): Pick<pg.ClientConfig, 'connectionTimeoutMillis' | 'keepAlive' | 'keepAliveInitialDelayMillis' | 'query_timeout'> {
  const ms = Math.round((requestTimeoutSecs ?? DEFAULT_REQUEST_TIMEOUT_SECS) * 1000);
  return { connectionTimeoutMillis: ms, keepAlive: true, keepAliveInitialDelayMillis: Math.min(ms, 10_000), query_timeout: longestStatementMs + ms };
}
