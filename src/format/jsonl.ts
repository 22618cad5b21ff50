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
  // JSON.stringify escapes newlines, so every 0x0A ends a record.
  rowEnd(bytes, n) {
    let at = -1;
    for (let i = 0; i < n; i++) {
      at = bytes.indexOf(0x0a, at + 1);
      if (at < 0) throw new Error(`encoded JSONL holds fewer than ${n} records`);
    }
    return at + 1;
  },
};
