// The CLI's start-up bundle: after tsc, the compiled modules that every command loads (ours, zod, commander,
// luxon) are joined into a few files under dist/bundle/, so a command reads and compiles a handful of files
// instead of ~190. Every other dependency stays external and loads from node_modules as before; the modules
// loaded on demand (SDKs, destinations, formats) stay separate chunks, loaded when needed. The worker threads
// are entries of the same bundle: code that starts `./fingerprint-worker.js` or `./encode-worker.js` next to
// itself finds them in dist/bundle/ as in the compiled tree.
import { readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
// Pure ESM (or CJS without dynamic requires) that every command loads: bundled.
const BUNDLED = new Set(['zod', 'commander', 'luxon']);
const externalDeps = Object.keys(pkg.dependencies).filter((d) => !BUNDLED.has(d));
const builtins = new Set(builtinModules);
const external = (id) => id.startsWith('node:') || builtins.has(id) || externalDeps.some((d) => id === d || id.startsWith(`${d}/`));

const out = join(root, 'dist', 'bundle');
rmSync(out, { recursive: true, force: true });
const bundle = await rolldown({
  input: {
    main: join(root, 'dist/cli/main.js'),
    'fingerprint-worker': join(root, 'dist/source/sqlite/fingerprint-worker.js'),
    'encode-worker': join(root, 'dist/run/encode-worker.js'),
  },
  external,
  platform: 'node',
  logLevel: 'warn',
});
// Not minified: a full minification parsed a fifth faster but raised the large exports' peak RSS, and dropping
// comments and whitespace alone measured no faster start (README, Decisions).
await bundle.write({ dir: out, format: 'esm', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js', sourcemap: true });
await bundle.close();
