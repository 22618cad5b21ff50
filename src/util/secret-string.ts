import { z } from 'zod';

/** A config string that may be a secret reference (`env.NAME`, `${NAME}`), resolved at run time. */
export const secretString = z.string().min(1);
