import { z } from 'zod';

/** A string that may be a secret reference (`env.NAME`, `${NAME}`). */
export const secretString = z.string().min(1);
/** Numbers may also be given as env references, resolved at run time. */
export const numberish = z.union([z.number(), z.string().regex(/^(env\.[A-Za-z_]\w*|\$\{[A-Za-z_]\w*\}|\d+)$/, 'expected a number or an env reference')]);
export const prefix = z.string().optional();
