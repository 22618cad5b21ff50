import { z } from 'zod';
import { configFileSchema } from '../../config/schema.js';
import type { Ctx } from '../context.js';

/** `config schema`: the JSON Schema of the config file, for editors. */
export async function configSchemaCommand(ctx: Ctx): Promise<number> {
  const schema = z.toJSONSchema(configFileSchema, { io: 'input', unrepresentable: 'any' });
  await ctx.out.write(JSON.stringify({ ...schema, title: 'bifrost-logs configuration' }, null, 2) + '\n');
  return 0;
}
