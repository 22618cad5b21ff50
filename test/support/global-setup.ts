import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Every test process gets its own HOME and XDG_STATE_HOME, and the suite fails
 * if anything was written under the real user's state dir while it ran.
 */
const realStateDir = join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'bifrost-logs');

function snapshot(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  let names: string[] = [];
  try { names = readdirSync(dir, { recursive: true }).map(String); } catch { return m; }
  for (const n of names) {
    try { const st = statSync(join(dir, n)); m.set(n, st.isDirectory() ? 'dir' : `${st.size}:${st.mtimeMs}`); } catch { /* gone meanwhile */ }
  }
  return m;
}

export default function setup(): () => void {
  const before = snapshot(realStateDir);
  const existed = (() => { try { return statSync(realStateDir).isDirectory(); } catch { return false; } })();
  const home = mkdtempSync(join(tmpdir(), 'bl-test-home-'));
  process.env.HOME = home;
  process.env.XDG_STATE_HOME = join(home, '.local', 'state');
  delete process.env.XDG_CONFIG_HOME;
  return () => {
    rmSync(home, { recursive: true, force: true });
    const after = snapshot(realStateDir);
    const changed = [...after].filter(([k, v]) => before.get(k) !== v).map(([k]) => k);
    const nowExists = (() => { try { return statSync(realStateDir).isDirectory(); } catch { return false; } })();
    if (changed.length || (!existed && nowExists)) {
      process.exitCode = 1;
      throw new Error(`the tests wrote under the real state dir ${realStateDir}: ${changed.slice(0, 10).join(', ') || '(created it)'}; every test must use its own HOME/XDG_STATE_HOME or --state-dir`);
    }
  };
}
