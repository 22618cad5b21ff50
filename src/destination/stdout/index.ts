import { once } from 'node:events';
import type { Destination, DestinationFactory } from '../types.js';

/** Streams the data only: no manifest, nothing to commit. */
export const createStdoutDestination: DestinationFactory = async () => {
  const out = process.stdout;
  const d: Destination = {
    type: 'stdout',
    kind: 'stream',
    check: async () => {},
    async openPart() {
      return {
        async write(chunk) {
          if (!out.write(chunk)) await once(out, 'drain');
        },
        finish: async () => {},
        abort: async () => {},
      };
    },
    commit: async () => {},
    close: async () => {},
  };
  return d;
};
