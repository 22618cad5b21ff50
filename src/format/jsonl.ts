import type { Format } from './types.js';

/** One JSON object per line; JSON columns stay nested. */
export const jsonlFormat: Format = {
  name: 'jsonl',
  extension: 'jsonl',
  contentType: 'application/x-ndjson',
  wrapsGzip: true,
  createEncoder() {
    return {
      push(records) {
        if (!records.length) return null;
        let s = '';
        for (const r of records) s += JSON.stringify(r) + '\n';
        return Buffer.from(s);
      },
      finish: () => null,
    };
  },
};
