import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface PackageRoot { dir: string; manifest: { name?: string; version?: string } }

/**
 * The package's own directory (where package.json and bin/ are) and its
 * parsed package.json, found by walking up from this module: the same from
 * the compiled tree (dist/util/) and from the bundle (dist/bundle/), whose
 * modules sit at other depths.
 */
function findRoot(): PackageRoot {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const manifest = JSON.parse(readFileSync(pkg, 'utf8')) as PackageRoot['manifest'];
        if (manifest.name === 'bifrost-logs') return { dir, manifest };
      } catch { /* not ours: keep walking */ }
    }
    const up = dirname(dir);
    if (up === dir) return { dir: dirname(dirname(fileURLToPath(import.meta.url))), manifest: {} };
    dir = up;
  }
}

let root: PackageRoot | null = null;

/** A path inside the package (`packageFile('bin', 'bifrost-logs.js')`). */
export function packageFile(...parts: string[]): string {
  root ??= findRoot();
  return join(root.dir, ...parts);
}

/** The package's version from its package.json ('0.0.0' when none is found). */
export function packageVersion(): string {
  root ??= findRoot();
  return root.manifest.version ?? '0.0.0';
}
