import { defineDestination } from '../module.js';
import { stdoutConfigSchema } from './schema.js';

export default defineDestination({
  type: 'stdout',
  kind: 'stream',
  schema: stdoutConfigSchema,
  load: async () => (await import('./index.js')).createStdoutDestination,
  flags: [],
});
