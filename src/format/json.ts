import type { Format } from './types.js';

/** One JSON array, streamed: `[` … `]`, one record per line. */
export const jsonFormat: Format = {
  name: 'json',
  extension: 'json',
  contentType: 'application/json',
  wrapsGzip: true,
  createEncoder() {
    let first = true;
    return {
      push(records) {
        if (!records.length) return null;
        let s = '';
        for (const r of records) {
          s += (first ? '[\n' : ',\n') + JSON.stringify(r);
          first = false;
        }
        return Buffer.from(s);
      },
      finish: () => Buffer.from(first ? '[]\n' : '\n]\n'),
    };
  },
};
