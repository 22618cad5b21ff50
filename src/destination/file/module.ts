import { defineDestination } from '../module.js';
import { fileConfigSchema } from './schema.js';

export default defineDestination({
  type: 'file',
  schema: fileConfigSchema,
  load: async () => (await import('./index.js')).createFileDestination,
  flags: [{ flag: '--out <dir>', key: 'path', help: 'output directory' }],
  init: { questions: [{ key: 'path', message: 'Output directory', initial: './exports', path: true }] },
});
