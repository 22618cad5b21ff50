import type { Format } from './types.js';

/**
 * `format: report`: one self-contained HTML report per window. It is computed from the window's aggregate
 * (src/report), never from streamed rows, so it has no record encoder.
 */
export const reportFormat: Format = {
  name: 'report',
  extension: 'html',
  contentType: 'text/html; charset=utf-8',
  wrapsGzip: false,
  createEncoder() {
    throw new Error('a report is computed from the window\'s aggregate, not encoded from records');
  },
};
