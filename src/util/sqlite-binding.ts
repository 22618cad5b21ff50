import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

let binding: string | undefined | null = null;

/**
 * better-sqlite3's compiled addon, named outright (its documented
 * `nativeBinding` option): otherwise the first connection of each process
 * and thread has the `bindings` package look for it along a dozen paths
 * (~5 ms of every command's start). Undefined where the addon was built
 * elsewhere: the package finds it then, as it always did.
 */
export function sqliteNativeBinding(): string | undefined {
  if (binding === null) {
    try {
      const p = join(dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json')), 'build', 'Release', 'better_sqlite3.node');
      binding = existsSync(p) ? p : undefined;
    } catch {
      binding = undefined;
    }
  }
  return binding;
}
