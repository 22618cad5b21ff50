import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JS module
import { writeSqlite } from '../../fixtures/generator.mjs';
import { BIN, cli } from '../support/cli.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bl-init-'));
  writeSqlite(join(dir, 'logs.db'), { rows: 100, seed: 2, schema: 'v1.5' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('init', () => {
  it('refuses without a terminal, with a hint', async () => {
    const r = await cli(['init', '--out', join(dir, 'x.json')]);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/could not start the wizard: it needs an interactive terminal\nhint: /);
    expect(existsSync(join(dir, 'x.json'))).toBe(false);
  });

  it('asks in a real terminal (tmux) and writes a config that passes check', async () => {
    const session = `bl-init-${process.pid}`;
    const out = join(dir, 'wizard.json');
    const tmux = (...a: string[]) => execFileSync('tmux', a, { encoding: 'utf8' });
    try {
      tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '50', `${process.execPath} ${BIN} init --out ${out}; sleep 30`);
    } catch (err) {
      throw new Error(`this test drives the wizard through tmux, which failed to start: ${(err as Error).message}`);
    }
    try {
      // Each answer is typed only once its prompt is the active one (clack marks it ◆), however slow the machine.
      const steps: Array<[string, string[]]> = [
        ['Where are the gateway logs?', ['Enter']], // SQLite
        ['Path to logs.db', ['C-u', join(dir, 'logs.db'), 'Enter']],
        ['Export name', ['Enter']],
        ['Destination', ['Enter']], // file
        ['Output directory', ['C-u', join(dir, 'exports'), 'Enter']],
        ['Format', ['Enter']], // parquet
        ['Schedule', ['Enter']], // daily
        ['Time (HH:MM)', ['Enter']], // 02:00
        ['Timezone (IANA)', ['Enter']], // UTC
        ['Only these providers', ['openai', 'Enter']],
      ];
      const activePrompt = () => {
        const lines = tmux('capture-pane', '-t', session, '-p').split('\n').filter((l) => /^\s*[◆▲*]\s/.test(l));
        return lines[lines.length - 1] ?? '';
      };
      for (const [prompt, k] of steps) {
        for (let i = 0; !activePrompt().includes(prompt); i++) {
          if (i > 600) throw new Error(`the wizard never asked "${prompt}"; the screen:\n${tmux('capture-pane', '-t', session, '-p')}`);
          await sleep(100);
        }
        tmux('send-keys', '-t', session, ...k);
      }
      for (let i = 0; i < 600 && !existsSync(out); i++) await sleep(100);
      expect(tmux('capture-pane', '-t', session, '-p')).toContain('wrote');
    } finally {
      try { tmux('kill-session', '-t', session); } catch { /* gone */ }
    }
    const cfg = JSON.parse(readFileSync(out, 'utf8'));
    expect(cfg.log_exports.exports[0]).toMatchObject({ name: 'daily_export', destination: { type: 'file' }, data: { format: 'parquet', filters: { providers: ['openai'] } } });
    const check = await cli(['check', '--config', out, '--state-dir', join(dir, 'st')]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/ok {3}destination daily_export/);
  });
});
