import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The test CA (test/fakes/tls/ca.pem, name-constrained to 127.0.0.1; its key was not kept). */
export const TEST_CA = fileURLToPath(new URL('../fakes/tls/ca.pem', import.meta.url));

/**
 * Every test process trusts the test CA (NODE_EXTRA_CA_CERTS is read when a process starts, so it
 * is set here, before the workers and the CLI processes they spawn): the fake Snowflake's stage is
 * an HTTPS S3 endpoint, as snowflake-sdk only uploads over HTTPS.
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
  const cas = join(home, 'test-ca.pem');
  const prior = process.env.NODE_EXTRA_CA_CERTS;
  writeFileSync(cas, `${prior ? `${readFileSync(prior, 'utf8').trim()}\n` : ''}${readFileSync(TEST_CA, 'utf8')}`);
  process.env.NODE_EXTRA_CA_CERTS = cas;
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
