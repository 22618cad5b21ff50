import { resolve } from 'node:path';
import { defineDestination } from '../module.js';
import { fileConfigSchema } from './schema.js';

export default defineDestination({
  type: 'file',
  kind: 'object',
  schema: fileConfigSchema,
  load: async () => (await import('./index.js')).createFileDestination,
  flags: [{ flag: '--out <dir>', key: 'path', help: 'output directory' }],
  location: (c) => resolve(String(c.path ?? '.')),
  init: { questions: [{ key: 'path', message: 'Output directory', initial: './exports', path: true }] },
});
