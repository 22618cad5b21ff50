import { configError } from '../errors.js';

const ENV_DOT = /^env\.([A-Za-z_][A-Za-z0-9_]*)$/;
const ENV_BRACE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** True when a string is (or contains) a secret reference. */
export function isEnvRef(value: string): boolean {
  return ENV_DOT.test(value) || /\$\{[A-Za-z_][A-Za-z0-9_]*\}/.test(value);
}

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

/** Resolves every string in a JSON-like value; `path` names keys in errors. */
export function resolveEnvDeep<T>(value: T, path: string, env: NodeJS.ProcessEnv = process.env): T {
  if (typeof value === 'string') return resolveEnvRef(value, path, env) as T;
  if (Array.isArray(value)) return value.map((v, i) => resolveEnvDeep(v, `${path}[${i}]`, env)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveEnvDeep(v, path ? `${path}.${k}` : k, env);
    return out as T;
  }
  return value;
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
