import { destinationModule } from '../destination/index.js';
import type { ExportJob } from './job.js';

/** Where the export went, in the words of its destination. */
export function destLocation(job: ExportJob): string {
  const c = job.destConfig as Record<string, unknown>;
  const m = destinationModule(job.destType);
  if (m.location) return m.location(c);
  return `${job.destType}${c.table ? ` table ${[c.dataset ?? c.schema, c.table].filter(Boolean).join('.')}` : ''}`;
}
