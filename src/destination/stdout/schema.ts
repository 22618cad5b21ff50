import { z } from 'zod';

export const stdoutConfigSchema = z.strictObject({});
