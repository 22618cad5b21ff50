import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { CliError, ConfigProblems, ExitCode } from '../errors.js';
import { configFileSchema, type ConfigFile, type LogExportsConfig } from './schema.js';
import { suggest } from '../util/suggest.js';
import type { SourceBlock } from '../source/locate.js';

export interface LoadedConfig {
  /** The file the config came from. */
  readonly file: string;
  readonly source?: SourceBlock;
  readonly logExports: LogExportsConfig;
  /** Bifrost's log_retention_days, when read from its config.json. */
  readonly retentionDays?: number;
}

/** Every object key the schema knows, for did-you-mean. */
function knownKeys(schema: z.ZodType, out = new Set<string>(), seen = new Set<unknown>()): Set<string> {
  if (seen.has(schema)) return out;
  seen.add(schema);
  const def = (schema as any)._zod?.def;
  if (!def) return out;
  if (def.shape) for (const [k, v] of Object.entries(def.shape)) { out.add(k); knownKeys(v as z.ZodType, out, seen); }
  for (const key of ['innerType', 'element', 'in', 'out', 'valueType', 'schema']) if (def[key]) knownKeys(def[key], out, seen);
  for (const o of def.options ?? []) knownKeys(o, out, seen);
  return out;
}
/** Walked on the first unknown key only: every command validates, few mistype. */
let known: Set<string> | null = null;

function pathText(path: ReadonlyArray<PropertyKey>): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || '(root)';
}

/** zod issues → `path: message` lines, with suggestions for unknown keys. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  const out: string[] = [];
  for (const i of issues) {
    const at = pathText(i.path);
    if (i.code === 'unrecognized_keys') {
      for (const k of i.keys) {
        const s = suggest(k, (known ??= knownKeys(configFileSchema)));
        out.push(`${pathText([...i.path, k])}: unknown key${s ? ` (did you mean "${s}"?)` : ''}`);
      }
    } else if (i.code === 'invalid_value' && 'values' in i) {
      const got = (i as any).input;
      const s = typeof got === 'string' ? suggest(got, (i.values as unknown[]).map(String)) : undefined;
      out.push(`${at}: expected one of ${(i.values as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(got)}${s ? ` (did you mean "${s}"?)` : ''}`);
    } else if (i.code === 'invalid_type') {
      const got = (i as any).input;
      out.push(`${at}: expected ${i.expected}, got ${got === undefined ? 'nothing' : JSON.stringify(got)}`);
    } else out.push(`${at}: ${i.message}`);
  }
  return out;
}

export function validateConfig(raw: unknown, file: string): ConfigFile {
  const r = configFileSchema.safeParse(raw, { reportInput: true });
  if (!r.success) {
    // zod reports a discriminated union's unknown type twice; keep distinct lines.
    throw new ConfigProblems(file, [...new Set(formatIssues(r.error.issues))]);
  }
  return r.data;
}

/** Where cosmiconfig looks, in order (the product's documented file names). */
export const SEARCH_PLACES = [
  'package.json',
  'bifrost-logs.config.json', 'bifrost-logs.config.yaml', 'bifrost-logs.config.yml', 'bifrost-logs.config.js', 'bifrost-logs.config.mjs', 'bifrost-logs.config.cjs',
  '.bifrost-logsrc', '.bifrost-logsrc.json', '.bifrost-logsrc.yaml', '.bifrost-logsrc.yml', '.bifrost-logsrc.js',
  '.config/bifrost-logsrc', '.config/bifrost-logsrc.json', '.config/bifrost-logsrc.yaml',
];

export interface LoadOptions {
  configPath?: string;
  bifrostConfig?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Two lines of context, the line, and a caret under the column (1-based line and column). */
function caretExcerpt(text: string, line: number, column: number): string {
  const lines = text.split(/\r?\n/);
  const out: string[] = [];
  const w = String(Math.min(lines.length, line + 1)).length;
  for (let i = Math.max(1, line - 2); i <= line; i++) out.push(`  ${String(i).padStart(w)} | ${lines[i - 1] ?? ''}`);
  out.push(`  ${' '.repeat(w)} | ${' '.repeat(Math.max(0, column - 1))}^`);
  return out.join('\n');
}

/** Where jsonc-parser (strict: no comments, no trailing commas) finds the first error; loaded on this error path only. */
function firstJsonErrorOffset(text: string): number | undefined {
  const { parse } = createRequire(import.meta.url)('jsonc-parser') as typeof import('jsonc-parser');
  const errors: import('jsonc-parser').ParseError[] = [];
  parse(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  return errors[0]?.offset;
}

/** The parser's reason with line and column, and an excerpt, for a JSON or YAML syntax error. */
function syntaxProblem(file: string, err: unknown): { why: string; detail: string } | undefined {
  const e = err as { name?: string; reason?: string; mark?: { line: number; column: number } };
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch { return undefined; }
  if (e.name === 'YAMLException' && e.mark) {
    const line = e.mark.line + 1;
    const column = e.mark.column + 1;
    return { why: `${file}:${line}:${column}: ${e.reason ?? 'YAML syntax error'}`, detail: caretExcerpt(text, line, column) };
  }
  if (e.name === 'JSONError' || err instanceof SyntaxError) {
    try {
      JSON.parse(text);
      return undefined;
    } catch (je) {
      const msg = (je as Error).message;
      const m = /^(.*?)(?: in JSON)? at position (\d+)/.exec(msg);
      // V8 gives no position for an unexpected token (a trailing comma in an array, a bare word), only the
      // text around it: the token's reason alone, and its offset from a parser that reports offsets.
      const token = /^(Unexpected token '.*?'),/s.exec(msg);
      const pos = m ? Number(m[2]) : firstJsonErrorOffset(text) ?? text.length;
      // A misspelt word (`tru`) fails at the character after it; the caret is at the word, and so is the reason.
      const word = /^[^\s,:[\]{}"]+/.exec(text.slice(pos))?.[0];
      const reason = m?.[1] ?? (token && word && word.length > 1 ? `Unexpected '${word}'` : token?.[1]) ?? msg.replace(/ in JSON$/, '');
      const before = text.slice(0, pos).split(/\r?\n/);
      const line = before.length;
      const column = before[before.length - 1]!.length + 1;
      return { why: `${file}:${line}:${column}: ${reason}`, detail: caretExcerpt(text, line, column) };
    }
  }
  return undefined;
}

/**
 * JSON config files through JSON.parse: cosmiconfig's own JSON loader brings
 * parse-json and a code-frame highlighter into every command's start, and the
 * syntax error is shown with our own caret excerpt anyway (syntaxProblem).
 */
function loadJsonFile(filepath: string, content: string): unknown {
  try {
    return JSON.parse(content);
  } catch (err) {
    throw Object.assign(err as Error, { filepath });
  }
}

function wrapLoadError(file: string, err: unknown): CliError {
  const e = err as NodeJS.ErrnoException & { filepath?: string };
  if (e.code === 'ENOENT') return new CliError('load the config', `${file}: no such file`, { exitCode: ExitCode.config });
  // cosmiconfig's loaders name the file in the message's first line only.
  const where = e.filepath ?? /^(?:JSON|YAML) Error in (.*):$/m.exec(e.message ?? '')?.[1] ?? file;
  const syntax = syntaxProblem(where, err);
  if (syntax) return new CliError('load the config', syntax.why, { exitCode: ExitCode.config, detail: syntax.detail, hint: 'fix the syntax at the caret', cause: err });
  const msg = (e.message ?? String(err)).split('\n').find((l) => l.trim() && !/^(JSON|YAML) Error in /.test(l)) ?? String(err);
  return new CliError('load the config', `${where}: ${msg.trim()}`, { exitCode: ExitCode.config, cause: err });
}

/** Where a destination's config holds a local path (dotted keys under `config`). */
const DESTINATION_PATHS: Record<string, readonly string[]> = { file: ['path'], snowflake: ['credentials.private_key_path'] };

/** A path as written in a config file: `~/…` from the home directory, a relative one from the file's directory. */
export function configPath(p: string, baseDir: string): string {
  if (/^env\.|\$\{/.test(p)) return p; // resolved from the environment later, as written
  if (p === '~' || p.startsWith('~/')) return join(homedir(), p.slice(1));
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/**
 * Relative paths in a config file mean the same from any working directory (cron
 * starts in $HOME): the state dir and the destinations' local paths are taken
 * from the file's directory. (The source block's are, where it is read: locate.ts.)
 */
function resolveConfigPaths(cfg: ConfigFile, baseDir: string): ConfigFile {
  const le = cfg.log_exports;
  if (!le) return cfg;
  if (le.state_dir) le.state_dir = configPath(le.state_dir, baseDir);
  for (const e of le.exports) {
    const d = e.destination as { type: string; config?: Record<string, unknown> };
    for (const key of DESTINATION_PATHS[d.type] ?? []) {
      const parts = key.split('.');
      let obj: Record<string, unknown> | undefined = d.config;
      for (const part of parts.slice(0, -1)) obj = obj?.[part] as Record<string, unknown> | undefined;
      const last = parts[parts.length - 1]!;
      if (obj && typeof obj[last] === 'string' && obj[last]) obj[last] = configPath(obj[last] as string, baseDir);
    }
  }
  return cfg;
}

/**
 * Loads the config: --config PATH, else the log_exports of --bifrost-config,
 * else a cosmiconfig search (`bifrost-logs.config.*`, `.bifrost-logsrc`, package.json).
 */
export async function loadConfig(o: LoadOptions): Promise<LoadedConfig | null> {
  if (!o.configPath && o.bifrostConfig) {
    const file = resolve(o.bifrostConfig);
    let raw: any;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw wrapLoadError(file, err);
    }
    if (!raw.log_exports) return null;
    const parsed = validateConfig({ log_exports: raw.log_exports }, file);
    const retention = raw.client?.log_retention_days ?? raw.log_retention_days ?? raw.logs_store?.config?.log_retention_days ?? raw.logs_store?.retention_days;
    return { file, logExports: parsed.log_exports!, retentionDays: typeof retention === 'number' ? retention : undefined };
  }
  let result: { filepath: string; config: unknown; isEmpty?: boolean } | null;
  if (o.configPath && /\.json$/i.test(o.configPath) && basename(o.configPath) !== 'package.json') {
    // A named JSON file (what `cron` writes into the crontab line) is read as it is, without cosmiconfig,
    // which would first read its own settings from the working directory.
    const filepath = resolve(o.configPath);
    let text: string;
    try { text = readFileSync(filepath, 'utf8'); } catch (err) { throw wrapLoadError(o.configPath, err); }
    try { result = text.trim() ? { filepath, config: loadJsonFile(filepath, text) } : { filepath, config: undefined, isEmpty: true }; } catch (err) { throw wrapLoadError(o.configPath, err); }
  } else {
    try {
      const { cosmiconfig } = await import('cosmiconfig');
      // Inside the try: making the explorer reads cosmiconfig's own settings from the working directory
      // (package.json, .config/config.*), and a broken one of those is a config problem, said as such.
      const explorer = cosmiconfig('bifrost-logs', { searchStrategy: 'none', searchPlaces: SEARCH_PLACES, loaders: { '.json': loadJsonFile } });
      result = o.configPath ? await explorer.load(resolve(o.configPath)) : await explorer.search(o.cwd ?? process.cwd());
    } catch (err) {
      throw wrapLoadError(o.configPath ?? 'bifrost-logs config', err);
    }
  }
  if (!result || result.isEmpty) {
    if (o.configPath) throw new CliError('load the config', `${o.configPath} is empty`, { exitCode: ExitCode.config });
    return null;
  }
  const parsed = resolveConfigPaths(validateConfig(result.config, result.filepath), dirname(result.filepath));
  return {
    file: result.filepath,
    source: parsed.source,
    logExports: parsed.log_exports ?? { enabled: true, exports: [] },
    retentionDays: parsed.log_exports?.log_retention_days,
  };
}
