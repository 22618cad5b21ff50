/**
 * Key-pair authentication as Snowflake checks it
 * (https://docs.snowflake.com/en/user-guide/key-pair-auth): the user has an RSA public key
 * registered (`ALTER USER … SET RSA_PUBLIC_KEY`); the client signs a JWT with RS256 whose
 * `iss` is `ACCOUNT.USER.SHA256:<fingerprint>` and `sub` is `ACCOUNT.USER` (account without any
 * region/cloud suffix, both upper case), where the fingerprint is the base64 SHA-256 of the
 * public key's DER (SPKI) encoding, as `DESC USER` shows in RSA_PUBLIC_KEY_FP.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';

export function publicKeyFingerprint(key: string | KeyObject): string {
  const k = typeof key === 'string' ? createPublicKey(key) : key;
  return `SHA256:${createHash('sha256').update(k.export({ type: 'spki', format: 'der' })).digest('base64')}`;
}

/** null when the token is good, else why not. */
export function verifySnowflakeJwt(token: string, account: string, user: string, registered: string | KeyObject | undefined, nowSec = Math.floor(Date.now() / 1000)): string | null {
  if (!registered) return `no RSA public key is registered for user ${user}`;
  const parts = token.split('.');
  if (parts.length !== 3) return 'not a JWT';
  const [h, p, sig] = parts as [string, string, string];
  let header: { alg?: string }; let claims: { iss?: string; sub?: string; exp?: number; iat?: number };
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch { return 'JWT header or claims are not JSON'; }
  if (header.alg !== 'RS256') return `JWT alg ${header.alg} is not RS256`;
  const key = typeof registered === 'string' ? createPublicKey(registered) : registered;
  if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(sig, 'base64url'))) return 'JWT signature does not verify with the registered public key';
  const acct = account.split('.')[0]!.toUpperCase();
  const u = user.toUpperCase();
  if (claims.sub !== `${acct}.${u}`) return `JWT sub ${claims.sub} is not ${acct}.${u}`;
  const iss = `${acct}.${u}.${publicKeyFingerprint(key)}`;
  if (claims.iss !== iss) return `JWT iss ${claims.iss} is not ${iss}`;
  // snowflake-sdk (Node) puts iat/exp in milliseconds, which Snowflake accepts; read either unit.
  const sec = (t: unknown) => (typeof t === 'number' ? (t > 1e11 ? t / 1000 : t) : NaN);
  if (!(sec(claims.exp) >= nowSec)) return 'JWT has expired';
  if (!(sec(claims.iat) <= nowSec + 60)) return 'JWT iat is missing or in the future';
  return null;
}
