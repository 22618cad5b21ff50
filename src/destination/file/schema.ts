import { z } from 'zod';

export const fileConfigSchema = z.strictObject({
  path: z.string().min(1),
  prefix: z.string().optional(),
});
export type FileConfig = z.infer<typeof fileConfigSchema>;
