import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's own directory (where package.json and bin/ are), found by
 * walking up from this module: the same from the compiled tree (dist/util/)
 * and from the bundle (dist/bundle/), whose modules sit at other depths.
 */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'bifrost-logs') return dir;
      } catch { /* not ours: keep walking */ }
    }
    const up = dirname(dir);
    if (up === dir) return dirname(dirname(fileURLToPath(import.meta.url)));
    dir = up;
  }
}

let root: string | null = null;

/** A path inside the package (`packageFile('bin', 'bifrost-logs.js')`). */
export function packageFile(...parts: string[]): string {
  root ??= findRoot();
  return join(root, ...parts);
}
