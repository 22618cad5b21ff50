import { execFileSync } from 'node:child_process';
import { BIN } from './cli.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the built CLI in a real terminal (a tmux pane of its own server), for
 * what only a TTY shows: prompts, progress bars, Ctrl-C. The pane prints
 * `rc=N` when the command ends.
 */
export function tmuxRun(session: string, cwd: string, args: string[], opts: { env?: Record<string, string>; width?: number } = {}) {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${q(v)} `).join('');
  const cmd = `cd ${q(cwd)} && ${env}${q(process.execPath)} ${q(BIN)} ${args.map(q).join(' ')}; echo "rc=$?"; sleep 30`;
  const t = (...a: string[]) => execFileSync('tmux', ['-L', `bl-${process.pid}-${session}`, ...a], { encoding: 'utf8' });
  t('new-session', '-d', '-s', session, '-x', String(opts.width ?? 120), '-y', '40', cmd);
  const screen = () => t('capture-pane', '-p', '-t', session);
  const keys = (...k: string[]) => t('send-keys', '-t', session, ...k);
  const waitFor = async (re: RegExp) => {
    for (let i = 0; i < 600; i++) { const s = screen(); if (re.test(s)) return s; await sleep(100); }
    throw new Error(`timed out waiting for ${re}:\n${screen()}`);
  };
  return { keys, waitFor, screen, kill: () => t('kill-server') };
}
