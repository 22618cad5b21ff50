import { readFile } from 'node:fs/promises';
import { configError } from '../errors.js';

export interface ServiceAccountKey { client_email?: string; private_key?: string; project_id?: string; type?: string; universe_domain?: string }

/** Google's own universe (what the SDKs assume). */
export const DEFAULT_UNIVERSE = 'googleapis.com';

/**
 * The SDK credentials of a key: its email and private key, and the universe
 * it belongs to (`universe_domain`, as Google writes into every key). In
 * googleapis.com the SDK exchanges a signed JWT for an OAuth token; in any
 * other universe it sends the self-signed JWT itself, as Google documents.
 */
export function keyCredentials(key: ServiceAccountKey): { client_email?: string; private_key?: string; universe_domain?: string } {
  return { client_email: key.client_email, private_key: key.private_key, ...(key.universe_domain ? { universe_domain: key.universe_domain } : {}) };
}

/** The key's universe when it is not Google's own (the client then talks to that universe). */
export function keyUniverse(key: ServiceAccountKey | undefined): string | undefined {
  const u = key?.universe_domain;
  return u && u !== DEFAULT_UNIVERSE ? u : undefined;
}

/**
 * `credentials.service_account_key` of the Google destinations: the key's JSON
 * text, or the path of a key file. Errors never echo the text (it holds a private key).
 */
export async function readServiceAccountKey(value: string, service: 'GCS' | 'BigQuery'): Promise<ServiceAccountKey> {
  const action = `read the ${service} service account key`;
  const hint = 'service_account_key is the key JSON itself or the path of the key file';
  const text = value.trim();
  let json = text;
  let from = 'credentials.service_account_key';
  if (!text.startsWith('{')) {
    from = text;
    try {
      json = await readFile(text, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw configError(action, `${text}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`, hint);
    }
  }
  let key: ServiceAccountKey;
  try {
    key = JSON.parse(json) as ServiceAccountKey;
  } catch {
    throw configError(action, `${from} is not valid JSON`, hint);
  }
  if (!key || typeof key !== 'object' || !key.client_email || !key.private_key) {
    throw configError(action, `${from} has no client_email/private_key`, 'use a service account key file (JSON) from the Cloud console');
  }
  return key;
}
