import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = `${ROOT}bin/bifrost-logs.js`;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Collects a child's output until it closes (and kills it after `timeoutMs`). */
function collect(child: ChildProcess, timeoutMs?: number): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    // Decoded as one stream, so a multi-byte character split across two chunks stays whole.
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => { stdout += d; });
    child.stderr!.on('data', (d: string) => { stderr += d; });
    const t = timeoutMs ? setTimeout(() => child.kill('SIGKILL'), timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (code, signal) => { clearTimeout(t); resolve({ code, signal, stdout, stderr }); });
  });
}

/** Runs the real, built binary. Nothing of the parent's BIFROST_/XDG_ environment leaks in. */
export function cli(args: string[], opts: { env?: Record<string, string | undefined>; cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = { ...process.env, BIFROST_LOGS_DB: undefined, XDG_STATE_HOME: undefined, ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  const done = collect(child, opts.timeoutMs ?? 100_000);
  child.stdin!.end(opts.input ?? '');
  return done;
}

/**
 * Runs the built binary as an unprivileged user: as root, as nobody (through setpriv) with only PATH and `env`
 * in its environment; as any other user, like `cli` with `env`.
 */
export function cliUnprivileged(args: string[], env: Record<string, string>): Promise<CliResult> {
  if (process.getuid?.() !== 0) return cli(args, { env });
  return collect(spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

export const ndjson = (s: string) => s.split('\n').filter(Boolean).map((l) => JSON.parse(l));
