import { readFile } from 'node:fs/promises';
import { configError } from '../errors.js';

export interface ServiceAccountKey { client_email?: string; private_key?: string; project_id?: string; type?: string }

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
