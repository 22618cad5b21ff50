import { configError } from '../errors.js';

const ENV_DOT = /^env\.([A-Za-z_][A-Za-z0-9_]*)$/;
const ENV_BRACE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Resolves `env.NAME` (the whole value) and `${NAME}` (anywhere in it) from
 * the environment. A missing variable is a config error naming the key and
 * the variable, never the value.
 */
export function resolveEnvRef(value: string, key: string, env: NodeJS.ProcessEnv = process.env): string {
  const dot = ENV_DOT.exec(value);
  if (dot) {
    const v = env[dot[1]!];
    if (v === undefined) throw configError('resolve secrets', `${key}: environment variable ${dot[1]} is not set`, `export ${dot[1]}=… before running`);
    return v;
  }
  return value.replace(ENV_BRACE, (_, name: string) => {
    const v = env[name];
    if (v === undefined) throw configError('resolve secrets', `${key}: environment variable ${name} is not set`, `export ${name}=… before running`);
    return v;
  });
}

/** Resolves every string in a JSON-like value; `path` names keys in errors. Every unset variable is named at once. */
export function resolveEnvDeep<T>(value: T, path: string, env: NodeJS.ProcessEnv = process.env): T {
  const missing: Array<{ key: string; name: string }> = [];
  const walk = (v: unknown, p: string): unknown => {
    if (typeof v === 'string') {
      const names = [...(ENV_DOT.exec(v)?.slice(1, 2) ?? []), ...[...v.matchAll(ENV_BRACE)].map((m) => m[1]!)];
      const unset = names.filter((n) => env[n] === undefined);
      if (unset.length) { for (const name of unset) missing.push({ key: p, name }); return v; }
      return resolveEnvRef(v, p, env);
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${p}[${i}]`));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x, p ? `${p}.${k}` : k);
      return out;
    }
    return v;
  };
  const out = walk(value, path) as T;
  if (missing.length) {
    const names = [...new Set(missing.map((m) => m.name))];
    throw configError('resolve secrets', missing.map((m) => `${m.key}: environment variable ${m.name} is not set`).join('; '), `export ${names.map((n) => `${n}=…`).join(' ')} before running`);
  }
  return out;
}

/** Every resolved secret value, so output can be scrubbed of them. */
const knownSecrets = new Set<string>();
export function rememberSecret(v: string | undefined): void {
  if (v && v.length >= 4) knownSecrets.add(v);
}
export function scrubKnownSecrets(text: string): string {
  let out = text;
  for (const s of knownSecrets) if (out.includes(s)) out = out.split(s).join('***');
  // The password of any URL (scheme://user:password@host) is never shown.
  return out.replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*):[^\s@/]*@/gi, '$1:***@');
}
