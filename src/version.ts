import { readFileSync } from 'node:fs';
import { packageFile } from './util/package-root.js';

/** The package version, read once from the package's package.json. */
export const VERSION: string = (() => {
  try {
    return JSON.parse(readFileSync(packageFile('package.json'), 'utf8')).version as string;
  } catch {
    return '0.0.0';
  }
})();
